"""The evaluation loop: one run per item, results appended to a JSONL file as each item finishes, items
already in the file skipped on ``resume``; running metrics for a progress display."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Optional

from .datasets import Item
from .metrics import exact_match, f1, gsm8k_gold, numeric_match
from .report import means, read_rows


@dataclass
class Tally:
    """The finished items' results, for running means (as the summary table computes them)."""

    rows: list = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.rows)

    def add(self, result: dict) -> None:
        self.rows.append(result)

    def means(self) -> dict:
        return means(self.rows)


def done_ids(path: Path) -> set[str]:
    """Ids of the items already in a results file (a torn last line is ignored)."""
    return {row["id"] for row in read_rows(path) if "id" in row}


def score(task: str, item: Item, prediction: str) -> dict:
    """The task's metrics for one prediction."""
    if task == "gsm8k":
        return {"accuracy": numeric_match(prediction, gsm8k_gold(item.answer))}
    return {"em": exact_match(prediction, item.answer), "f1": f1(prediction, item.answer)}


def grader(task: str):
    """``grade(answer, gold) -> bool`` for tools that grade answers (Reflexion's evaluator): the task's
    own metric, GSM8K numeric match or HotpotQA exact match."""
    if task == "gsm8k":
        return lambda answer, gold: numeric_match(answer, gsm8k_gold(gold)) == 1.0
    return lambda answer, gold: exact_match(answer, gold) == 1.0


def answer_segments(spec) -> tuple[str, ...]:
    """The spec's segments named like a final answer (``answer``, not ``proposed_answer``)."""
    return tuple(s.name for s in spec.segments if "answer" in s.name and "proposed" not in s.name)


def final_answer(segments, names: tuple[str, ...] = ()) -> str:
    """The text of the last segment among ``names``; "" when the run wrote none. With no ``names`` (a
    spec without an answer segment), the last model segment's text."""
    if names:
        return next((r.text for r in reversed(segments) if r.name in names), "")
    return next((r.text for r in reversed(segments) if r.by == "model"), "")


def evaluate(items: Iterable[Item], task: str, run_item: Callable[[Item], dict], out: Path,
             resume: bool = False, on_result: Optional[Callable[[dict, Tally], None]] = None) -> Tally:
    """Run every item not yet in ``out`` (all of them unless ``resume``), appending one JSON line per
    item as it finishes; ``run_item`` returns the run's fields (prediction, satisfied, …). A run that
    raises is recorded with its error and counted as wrong. Results of other items already in ``out`` are
    kept but not tallied."""
    items = list(items)
    wanted = {item.id for item in items}
    previous = read_rows(out) if resume else []
    skip = {row["id"] for row in previous if "id" in row}
    if not resume and out.exists():
        out.unlink()
    out.parent.mkdir(parents=True, exist_ok=True)
    tally = Tally([row for row in previous if row.get("id") in wanted])
    with open(out, "a", encoding="utf-8") as stream:
        for item in items:
            if item.id in skip:
                continue
            result = _one(item, task, run_item)
            stream.write(json.dumps(result, ensure_ascii=False) + "\n")
            stream.flush()
            tally.add(result)
            if on_result is not None:
                on_result(result, tally)
    return tally


def _one(item: Item, task: str, run_item) -> dict:
    started = time.perf_counter()
    base = {"id": item.id, "question": item.question, "gold": item.answer}
    try:
        fields = run_item(item)
    except Exception as err:  # a failed item is a result too; the evaluation goes on
        fields = {"prediction": "", "satisfied": False, "error": f"{type(err).__name__}: {err}"}
    fields.setdefault("seconds", round(time.perf_counter() - started, 3))
    return {**base, **fields, **score(task, item, fields.get("prediction", ""))}

"""Evaluation items from JSONL files: HotpotQA (question, answer, context paragraphs) and GSM8K
(question, answer ending in ``#### n``)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from .metrics import gsm8k_gold


class DatasetError(ValueError):
    """A data file that cannot be read as the requested task (``path:line: message``)."""


@dataclass(frozen=True)
class Item:
    """One evaluation item: ``id``, the task text, the gold answer, and (HotpotQA) its paragraphs."""

    id: str
    question: str
    answer: str
    context: Optional[list] = field(default=None, compare=False)


def load_items(path: Path, task: str, limit: Optional[int] = None) -> list[Item]:
    """The first ``limit`` items of a JSONL file for ``task`` (hotpotqa or gsm8k). Raises DatasetError."""
    items = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if limit is not None and len(items) >= limit:
                break
            if line.strip():
                items.append(_item(json.loads(line) if _is_json(line) else None, task, path, number))
    return items


def _is_json(line: str) -> bool:
    try:
        json.loads(line)
    except json.JSONDecodeError:
        return False
    return True


def _item(data, task: str, path: Path, number: int) -> Item:
    where = f"{path}:{number}"
    if not isinstance(data, dict) or "question" not in data or "answer" not in data:
        raise DatasetError(f"{where}: expected a JSON object with 'question' and 'answer'")
    if task == "hotpotqa":
        if "####" in str(data["answer"]):
            raise DatasetError(f"{where}: this looks like GSM8K data (an answer with '####'); use --task gsm8k")
        return Item(str(data.get("_id", number)), data["question"], data["answer"], data.get("context"))
    if task == "gsm8k":
        try:
            gsm8k_gold(data["answer"])
        except ValueError as err:
            raise DatasetError(f"{where}: {err}") from None
        return Item(str(data.get("id", number)), data["question"], data["answer"])
    raise DatasetError(f"unknown task {task!r} (hotpotqa or gsm8k)")

"""The evaluation loop: episodes of the items (``samples`` per item), ``concurrency`` at a time, each item's
result row appended to a JSONL file as soon as its episodes are done, items already in the file skipped on
``resume``; running metrics for a progress display.

Only the calling thread writes the file, one whole line per item, flushed: an interruption (Ctrl-C, a
kill) loses no finished item, and a line torn by a kill mid-write is cut off when the file is next
opened, so a resume never reads it nor appends onto it (a last line that lacks only its newline is kept).
"""
from __future__ import annotations

import json
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional, Union

from .datasets import Item
from .report import means, read_rows
from .rows import item_row
from .tasks import Task, make_task


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


def score(task: Union[Task, str], item: Item, prediction: str) -> dict:
    """The task's metrics for one prediction."""
    task = make_task(task) if isinstance(task, str) else task
    return task.metric.score(prediction, item.answer)


def grader(task: Union[Task, str]):
    """``grade(answer, gold) -> bool`` for tools that grade answers (Reflexion's evaluator): the task's
    own metric's pass mark (HotpotQA exact match, GSM8K numeric match, FEVER the label)."""
    return (make_task(task) if isinstance(task, str) else task).metric.grade


def answer_segments(spec) -> tuple[str, ...]:
    """The spec's segments named like a final answer (``answer``, not ``proposed_answer``)."""
    return tuple(s.name for s in spec.segments if "answer" in s.name and "proposed" not in s.name)


def final_answer(segments, names: tuple[str, ...] = ()) -> str:
    """The text of the last segment among ``names`` (a choice segment's text is its option); "" when the
    run wrote none. With no ``names`` (a spec without an answer segment), the last model segment's text."""
    if names:
        return next((r.text for r in reversed(segments) if r.name in names), "")
    return next((r.text for r in reversed(segments) if r.by == "model"), "")


class ResultsFile:
    """A JSONL results file appended one whole, flushed line per row (under a lock)."""

    def __init__(self, path: Path, resume: bool):
        """Open ``path`` for appending: afresh unless ``resume``; a torn last line (a kill mid-write) is
        cut off first."""
        self.path, self._lock = path, threading.Lock()
        if not resume and path.exists():
            path.unlink()
        path.parent.mkdir(parents=True, exist_ok=True)
        cut_torn_line(path)
        self._stream = open(path, "a", encoding="utf-8")

    def append(self, row: dict) -> None:
        line = json.dumps(row, ensure_ascii=False) + "\n"
        with self._lock:
            self._stream.write(line)
            self._stream.flush()

    def close(self) -> None:
        self._stream.close()


def cut_torn_line(path: Path) -> None:
    """Make ``path`` end in a newline: an unfinished last line (a kill mid-write) is cut off, unless it is
    a whole JSON object that only lacks its newline (``read_rows`` counts it, so it is kept)."""
    if not path.exists():
        return
    with open(path, "rb+") as handle:
        data = handle.read()
        if not data or data.endswith(b"\n"):
            return
        start = data.rfind(b"\n") + 1
        try:
            whole = isinstance(json.loads(data[start:]), dict)
        except ValueError:  # not JSON, or not UTF-8
            whole = False
        if whole:
            handle.write(b"\n")
        else:
            handle.truncate(start)


def evaluate(items: Iterable[Item], task: Union[Task, str], run_item: Callable[[Item, int], dict], out: Path,
             resume: bool = False, on_result: Optional[Callable[[dict, Tally], None]] = None,
             concurrency: int = 1, samples: int = 1) -> Tally:
    """Run every item not yet in ``out`` (all of them unless ``resume``): ``run_item(item, k)`` is its
    episode ``k`` of ``samples`` and returns the episode's fields (prediction, satisfied, …; see
    ``rows``); up to ``concurrency`` episodes run at once, in worker threads when more than one. Each
    item's row is appended to ``out`` when its last episode finishes, whatever the order. An episode that
    raises an Exception is recorded with its error and counted as wrong; a BaseException (Ctrl-C) stops
    the evaluation: no new episode starts, episodes in flight are abandoned, every finished row is on
    disk. Raises MetricError when a user metric fails. Results of other items in ``out`` are kept but
    not tallied."""
    task = make_task(task) if isinstance(task, str) else task
    items = list(items)
    wanted = {item.id for item in items}
    previous = read_rows(out) if resume else []
    skip = {row["id"] for row in previous if "id" in row}
    tally = Tally([row for row in previous if row.get("id") in wanted])
    jobs = [(item, k) for item in items if item.id not in skip for k in range(samples)]
    pending: dict[str, list] = {}
    results = ResultsFile(out, resume)
    try:
        for (item, k), fields in run_jobs(jobs, lambda job: _episode(run_item, *job), concurrency):
            done = pending.setdefault(item.id, [None] * samples)
            done[k] = fields
            if all(f is not None for f in done):
                row = item_row(item, task, pending.pop(item.id))
                results.append(row)
                tally.add(row)
                if on_result is not None:
                    on_result(row, tally)
    finally:
        results.close()
    return tally


def _episode(run_item, item: Item, k: int) -> dict:
    """Episode ``k`` of ``item``: its fields, or (when it raises an Exception) the error as a wrong run."""
    started = time.perf_counter()
    try:
        fields = run_item(item, k)
    except Exception as err:  # a failed episode is a result too; the evaluation goes on
        fields = {"prediction": "", "satisfied": False, "error": f"{type(err).__name__}: {err}"}
    fields.setdefault("seconds", round(time.perf_counter() - started, 3))
    return fields


def run_jobs(jobs: list, work: Callable, concurrency: int = 1) -> Iterator[tuple]:
    """Yield ``(job, work(job))`` for every job, in the order they finish, at most ``concurrency`` running
    at once: in this thread when 1, else in as many daemon worker threads, taking jobs in order. A
    BaseException raised by ``work`` in a worker is re-raised here. When the consumer stops early (an
    exception, Ctrl-C, closing the generator) no further job starts; jobs in flight finish in the
    background and their results are dropped (daemon threads never keep the process alive)."""
    if concurrency <= 1:
        for job in jobs:
            yield job, work(job)
        return
    todo, finished, stop = queue.SimpleQueue(), queue.SimpleQueue(), threading.Event()
    for job in jobs:
        todo.put(job)

    def worker() -> None:
        while not stop.is_set():
            try:
                job = todo.get_nowait()
            except queue.Empty:
                return
            try:
                finished.put((job, work(job), None))
            except BaseException as err:  # noqa: BLE001 - handed to the consumer, which re-raises it
                finished.put((job, None, err))
                return

    for i in range(min(concurrency, len(jobs))):
        threading.Thread(target=worker, name=f"ltlagent-eval-{i}", daemon=True).start()
    try:
        for _ in jobs:
            job, result, err = _next(finished)
            if err is not None:
                raise err
            yield job, result
    finally:
        stop.set()


def _next(finished: queue.SimpleQueue):
    """The next finished job, waiting in short slices so that Ctrl-C is seen at once."""
    while True:
        try:
            return finished.get(timeout=0.2)
        except queue.Empty:
            continue

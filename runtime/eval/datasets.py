"""Evaluation items from JSONL files, read by a task's fields (see ``tasks``): HotpotQA (question, answer,
context paragraphs), GSM8K (question, answer ending in ``#### n``), FEVER (claim, label), or any JSONL file
whose fields ``--fields`` names."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

from .tasks import Task, make_task


class DatasetError(ValueError):
    """A data file that cannot be read as the requested task (``path:line: message``)."""


@dataclass(frozen=True)
class Item:
    """One evaluation item: ``id``, the task text, the gold answer, and (HotpotQA) its paragraphs."""

    id: str
    question: str
    answer: str
    context: Optional[list] = field(default=None, compare=False)


def load_items(path: Path, task: Union[Task, str], limit: Optional[int] = None) -> list[Item]:
    """The first ``limit`` items of a JSONL file for ``task`` (a Task, or a built-in task's name). Blank
    lines are skipped. Raises DatasetError (``path:line: message``) for a line that is not a JSON object,
    a missing field or one of the wrong type, documents that are not ``[[title, [sentence, ...]], ...]``,
    a reference answer the task or metric cannot score, an id used twice, and a file that is not UTF-8."""
    task = make_task(task) if isinstance(task, str) else task
    items, seen = [], {}
    try:
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if limit is not None and len(items) >= limit:
                    break
                if line.strip():
                    item = _item(_object(line, f"{path}:{number}"), task, number, f"{path}:{number}")
                    if item.id in seen:
                        raise DatasetError(f"{path}:{number}: id {item.id!r} was already used on line "
                                           f"{seen[item.id]}; ids must be unique (results are kept by id)")
                    seen[item.id] = number
                    items.append(item)
    except UnicodeDecodeError as err:
        raise DatasetError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    return items


def _object(line: str, where: str) -> dict:
    try:
        data = json.loads(line)
    except json.JSONDecodeError as err:
        raise DatasetError(f"{where}: not JSON: {err.msg} (column {err.colno})") from None
    if not isinstance(data, dict):
        raise DatasetError(f"{where}: expected a JSON object, got {_kind(data)}")
    return data


def _item(data: dict, task: Task, number: int, where: str) -> Item:
    fields = task.fields
    question = _text(data, fields.question, "the question", where)
    answer = _text(data, fields.answer, "the answer", where, numbers=True)
    for check in (task.gold_problem, task.metric.gold_problem):
        if (problem := check(answer)) is not None:
            raise DatasetError(f"{where}: {problem}")
    return Item(_id(data, fields, number, where), question, answer, _context(data, fields, where))


def _text(data: dict, name: str, role: str, where: str, numbers: bool = False) -> str:
    """The string field ``name`` (numbers too, as text, when ``numbers``)."""
    if name not in data:
        raise DatasetError(f"{where}: no field {name!r} ({role}; name another with --fields)")
    value = data[name]
    if isinstance(value, str) or (numbers and isinstance(value, (int, float)) and not isinstance(value, bool)):
        return str(value)
    expected = "a string or a number" if numbers else "a string"
    raise DatasetError(f"{where}: field {name!r} ({role}) is {_kind(value)}; expected {expected}")


def _id(data: dict, fields, number: int, where: str) -> str:
    """The item's id: its id field (a string or an integer), else its line number."""
    if fields.id is None or (fields.id not in data and "id" not in fields.required):
        return str(number)
    if fields.id not in data:
        raise DatasetError(f"{where}: no field {fields.id!r} (the id; name another with --fields)")
    value = data[fields.id]
    if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
        return str(value)
    raise DatasetError(f"{where}: field {fields.id!r} (the id) is {_kind(value)}; expected a string or an integer")


def _context(data: dict, fields, where: str) -> Optional[list]:
    """The item's documents, checked to be ``[[title, [sentence, ...]], ...]``; None without a field."""
    from ..tools.docstore import DocStore, DocStoreError

    if fields.context is None or (fields.context not in data and "context" not in fields.required):
        return None
    if fields.context not in data:
        raise DatasetError(f"{where}: no field {fields.context!r} (the documents; name another with --fields)")
    try:
        DocStore.from_context(data[fields.context], f"{where}: field {fields.context!r}")
    except DocStoreError as err:
        raise DatasetError(str(err)) from None
    return data[fields.context]


def _kind(value) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)

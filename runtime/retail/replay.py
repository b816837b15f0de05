"""Tasks, the replay of a task's ground-truth actions, and database comparison.

A task solved by an agent leaves the database equal to the one its ground-truth ``actions`` leave
(τ-bench's criterion): ``expected(task, world)`` replays them on a fresh episode, ``db_equal(a, b)``
compares two episodes' databases and ``db_diff(a, b)`` says where they differ.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Union

from .world import Episode, World, WorldError

TASKS_FILE = "tasks_dev80.json"


@dataclass(frozen=True)
class Action:
    """One ground-truth tool call: ``name`` and its keyword arguments ``kwargs``."""

    name: str
    kwargs: dict


@dataclass(frozen=True)
class Task:
    """A task record: the customer's ``user_id``, the ``instruction`` the simulated customer follows,
    the ground-truth ``actions`` in order, the ``outputs`` the agent must say, and its ``index``."""

    index: int
    user_id: str
    instruction: str
    actions: tuple
    outputs: tuple


def load_tasks(path) -> list[Task]:
    """The tasks of a JSON file (a list of τ-bench task records), or of ``tasks_dev80.json`` in a
    folder. Raises WorldError naming the file and the first malformed record."""
    path = Path(path)
    path = path / TASKS_FILE if path.is_dir() else path
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise WorldError(f"{path}: cannot read tasks: {err}") from None
    if not isinstance(records, list):
        raise WorldError(f"{path}: expected a JSON list of tasks")
    return [_task(path, n, record) for n, record in enumerate(records)]


def _task(path: Path, n: int, record) -> Task:
    try:
        actions = tuple(Action(str(a["name"]), dict(a["kwargs"])) for a in record["actions"])
        return Task(int(record.get("index", n)), str(record["user_id"]), str(record["instruction"]), actions,
                    tuple(str(o) for o in record.get("outputs", ())))
    except (KeyError, TypeError, ValueError) as err:
        raise WorldError(f"{path}: task {n}: malformed record ({type(err).__name__}: {err})") from None


def replay(actions, world: World) -> tuple[Episode, list]:
    """A fresh episode with ``actions`` (Actions, or ``{"name", "kwargs"}`` dicts) run in order, and
    their results. A refused action (an ``"Error: ..."`` result) changes nothing and the replay goes on,
    as in τ-bench (some ground truths contain an attempt the tools refuse)."""
    episode = world.episode()
    results = []
    for action in actions:
        name, kwargs = (action.name, action.kwargs) if isinstance(action, Action) else (action["name"], action["kwargs"])
        results.append(episode.call(name, kwargs))
    return episode, results


def expected(task: Task, world: World) -> Episode:
    """The episode the task's ground-truth actions leave."""
    return replay(task.actions, world)[0]


Database = Union[Episode, dict]


def db_diff(a: Database, b: Database) -> list[str]:
    """Where two databases differ, as ``table/id[/key...]`` paths (sorted; empty when equal). Each is an
    Episode or a snapshot ``{"users", "orders", "products"}``; two episodes of one World are compared
    on the records either changed only."""
    left, right = _tables(a, b)
    paths: list[str] = []
    for table in sorted(set(left) | set(right)):
        l_rows, r_rows = left.get(table, {}), right.get(table, {})
        for key in sorted(set(l_rows) | set(r_rows)):
            _diff(l_rows.get(key, _MISSING), r_rows.get(key, _MISSING), f"{table}/{key}", paths)
    return paths


def db_equal(a: Database, b: Database) -> bool:
    """True when the two databases hold the same records (see ``db_diff``)."""
    return not db_diff(a, b)


_MISSING = object()


def _tables(a: Database, b: Database) -> tuple[dict, dict]:
    if isinstance(a, Episode) and isinstance(b, Episode) and a.world is b.world:
        keys = {t: set(getattr(a, t)) | set(getattr(b, t)) for t in ("users", "orders")}
        pick = lambda ep, t: {k: getattr(ep, f"read_{t[:-1]}")(k) for k in keys[t]}  # noqa: E731
        return ({t: pick(a, t) for t in keys}, {t: pick(b, t) for t in keys})
    return tuple(x.snapshot() if isinstance(x, Episode) else x for x in (a, b))


def _diff(x, y, path: str, out: list) -> None:
    if isinstance(x, dict) and isinstance(y, dict):
        for key in sorted(set(x) | set(y), key=str):
            _diff(x.get(key, _MISSING), y.get(key, _MISSING), f"{path}/{key}", out)
    elif x != y or type(x) is not type(y) and not _same_number(x, y):
        out.append(path)


def _same_number(x, y) -> bool:
    numbers = (int, float)
    return isinstance(x, numbers) and isinstance(y, numbers) and not isinstance(x, bool) and x == y

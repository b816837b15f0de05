"""``ltlagent eval --task retail``: the τ-bench retail tasks as multi-turn conversations with scripted users.

Each task of ``tasks_dev80.json`` is one episode: a fresh copy of the database, the task's user (benign,
or an adversarial script), the spec's agent constrained or free (``--unconstrained``), the tools running
on the copy (so harm in the ablation is real, on the copy). Per episode the independent monitor and the
database give ``violations``, ``conformant`` (no violation), ``harm`` (a database change a rule forbids)
and, for benign users, ``utility`` (the final database equals the replay of the task's ground-truth
actions and every ``outputs`` string was said). Rows are appended as episodes finish; ``--resume`` skips
finished ones.

Users (``--users``): ``benign``; ``adversarial``: task ``i`` meets adversary ``ADVERSARY_ORDER[i % 6]``
(the next one in that order when the task's user lacks what the script needs, e.g. a delivered order),
so the 80 tasks give each of the 6 scripts 13 or 14 episodes; or one adversary's name for all tasks
(built for the task's user, else for the first user of the database it can be built for).

Results files: ``<spec>-retail[-USERS][-unconstrained].jsonl`` (``USERS`` left out for benign).
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from ..retail.users import ADVERSARIES

TASK = "retail"
USERS = ("benign", "adversarial") + tuple(ADVERSARIES)
ADVERSARY_ORDER = tuple(ADVERSARIES)


class RetailError(ValueError):
    """Retail data or a spec the harness cannot use (a located message, no traceback)."""


def users_problem(users: str) -> Optional[str]:
    """Why ``--users`` is not usable (None when it is)."""
    if users not in USERS:
        return f"unknown users {users!r}; use {', '.join(USERS)}"
    return None


def task_label(users: str) -> str:
    """The task part of the results file's name: ``retail`` or ``retail-USERS``."""
    return TASK if users == "benign" else f"{TASK}-{users}"


@dataclass(frozen=True)
class Conversation:
    """One episode to run: the result row's ``id``, the retail task, and its adversary (None: benign)."""

    id: str
    task: object          # replay.Task
    adversary: Optional[str] = None
    single: bool = False  # one adversary for every task (--users NAME), not the pairing


def data_folder(data: Optional[Path]) -> Path:
    """The retail data: ``data`` (a folder with db/ and tasks_dev80.json, or a tasks file beside db/),
    else the default folder (``$LTLAGENT_RETAIL_DATA`` or ../shared/data/tau_retail)."""
    from ..retail.world import default_folder

    if data is None:
        folder = default_folder()
        if folder is None:
            raise RetailError("no retail data: give --data FOLDER (with db/ and tasks_dev80.json) or set "
                              "LTLAGENT_RETAIL_DATA")
        return folder
    return data


def conversations(data: Optional[Path], users: str, limit: Optional[int] = None):
    """``(world, [Conversation])`` for the first ``limit`` tasks under ``users``. Raises RetailError."""
    from ..retail.replay import load_tasks
    from ..retail.world import World, WorldError

    source = data_folder(data)
    try:
        tasks = load_tasks(source)
        world = World.load(source if source.is_dir() else source.parent)
    except WorldError as err:
        raise RetailError(str(err)) from None
    tasks = tasks[:limit] if limit is not None else tasks
    if users == "benign":
        return world, [Conversation(str(t.index), t) for t in tasks]
    result = []
    for position, task in enumerate(tasks):
        name = users if users in ADVERSARIES else pair(position)
        result.append(Conversation(f"{task.index}-{name}", task, name, users in ADVERSARIES))
    return world, result


def pair(position: int) -> str:
    """The adversary of the task at ``position`` under ``--users adversarial`` (before fallbacks)."""
    return ADVERSARY_ORDER[position % len(ADVERSARY_ORDER)]


def make_user(conversation: Conversation, world):
    """The scripted user of a conversation: ``(user, adversary, user id)`` as run. A benign user is the
    task's. Under ``adversarial`` pairing an adversary the task's user cannot play (it lacks a delivered
    order, say) is replaced by the next one in ``ADVERSARY_ORDER``; a single named adversary
    (``single``) is played instead by the first user of the database who can."""
    from ..retail.replay import replay
    from ..retail.users import BenignUser, adversary, task_identity

    if conversation.adversary is None:
        user = BenignUser(conversation.task, world)
        return user, None, user.user_id
    user_id, _ = task_identity(conversation.task, replay(conversation.task.actions, world)[1])
    start = ADVERSARY_ORDER.index(conversation.adversary)
    if conversation.single:
        tries = [(conversation.adversary, u) for u in [user_id] + list(world.users)]
    else:
        tries = [(ADVERSARY_ORDER[(start + j) % len(ADVERSARY_ORDER)], user_id) for j in range(len(ADVERSARY_ORDER))]
    for name, who in tries:
        try:
            return adversary(name, world, who), name, who
        except LookupError:
            continue
    raise RetailError(f"task {conversation.task.index}: no adversary can be built for user {user_id}")


# -- one episode -------------------------------------------------------------------------------------

def episode_row(agent, world, conversation: Conversation, users: str, unconstrained: bool, sampling,
                free_runner=None) -> dict:
    """Run one conversation and build its result row (see ``row_fields``). An exception inside the run
    is recorded as ``error``; the monitor still judges what the log holds."""
    from ..retail.session import play

    started = time.perf_counter()
    user, name, user_id = make_user(conversation, world)
    episode = world.episode()
    result, failure, error = None, None, None
    try:
        result, failure = play(agent, episode, user, unconstrained, sampling, free_runner)
    except Exception as err:  # noqa: BLE001 - a failed episode is a result; the log so far is judged
        error = f"{type(err).__name__}: {err}"
    row = row_fields(episode, conversation, users, name, user_id, agent.compiled, result, failure,
                     agent.prompt("").text)
    if error is not None:
        row["error"] = error
        row["satisfied"] = False
    row["seconds"] = round(time.perf_counter() - started, 3)
    return row


def judge(episode, task, benign: bool) -> dict:
    """The monitor's and the database's verdict on a finished episode: ``violations`` (dicts),
    ``conformant``, ``harm``, ``harmful_changes``, and for benign users ``utility``, ``db_diff`` (where
    the database differs from the ground truth's) and ``outputs_said``; ``utility`` None otherwise."""
    from ..retail.monitor import metrics, said
    from ..retail.replay import db_diff, expected

    m = metrics(episode, task)
    verdict = {"violations": [{"rule": v.rule, "event": v.index, "detail": v.detail} for v in m["violations"]],
               "conformant": m["conformant"], "harm": m["harm"], "harmful_changes": m["harmful_changes"],
               "utility": m["utility"] if benign else None}
    if benign:
        verdict["db_diff"] = db_diff(episode, expected(task, episode.world))[:20]
        verdict["outputs_said"] = [said(episode.log, o) for o in task.outputs]
    return verdict


def row_fields(episode, conversation: Conversation, users: str, adversary: Optional[str], user_id: str,
               compiled, result, failure, prompt: str = "") -> dict:
    """The result row of one episode: ids, the verdict (``judge``), the spec's ``satisfied`` on the run,
    costs, the episode's event ``log``, ``trace`` and ``transcript``."""
    from ..trace import verdict
    from .rows import episode_text, segment_summary

    row = {"id": conversation.id, "task": conversation.task.index, "users": users, "adversary": adversary,
           "user_id": user_id}
    row.update(judge(episode, conversation.task, conversation.adversary is None))
    calls = [e for e in episode.log if e.get("kind") == "tool_call"]
    row.update({"tool_calls": len(calls), "user_turns": sum(e.get("kind") == "user" for e in episode.log)})
    if result is not None:
        satisfied = failure is None and verdict(compiled, result)["satisfied"]
        row.update({"satisfied": satisfied, "parse_failed": failure is not None, "parse_failure": failure,
                    "stopped_by": result.stopped_by, "segments": len(result.segments),
                    "model_tokens": result.model_tokens, "forward_passes": result.forward_passes,
                    "letters": result.letters, "trace": [segment_summary(r) for r in result.segments],
                    "transcript": episode_text(result.transcript, prompt)})
    row["log"] = episode.log
    return row


# -- the loop and the report ------------------------------------------------------------------------

def run_all(conversations_: list, run_one: Callable, out: Path, resume: bool, concurrency: int = 1,
            on_row: Optional[Callable[[dict, list], None]] = None) -> list:
    """Run every conversation not yet in ``out`` (``resume``), appending each row as it finishes;
    returns the rows of these conversations (earlier ones included)."""
    from .loop import ResultsFile, run_jobs
    from .report import read_rows

    wanted = {c.id for c in conversations_}
    previous = [r for r in read_rows(out) if r.get("id") in wanted] if resume else []
    done = {r["id"] for r in previous}
    rows = list(previous)
    results = ResultsFile(out, resume)
    try:
        todo = [c for c in conversations_ if c.id not in done]
        for conversation, row in run_jobs(todo, run_one, concurrency):
            results.append(row)
            rows.append(row)
            if on_row is not None:
                on_row(row, rows)
    finally:
        results.close()
    return rows


def summary(rows: list) -> dict:
    """Means over episodes: ``conformance``, ``harm``, ``utility`` (benign rows only), ``satisfied``,
    ``errors``; costs (``seconds``, ``model_tokens``, ``tool_calls``) over the episodes that finished;
    ``episodes``."""
    n = len(rows)
    result = {"episodes": n}
    if not n:
        return result
    result["conformance"] = sum(bool(r.get("conformant")) for r in rows) / n
    result["harm"] = sum(bool(r.get("harm")) for r in rows) / n
    useful = [r for r in rows if r.get("utility") is not None]
    if useful:
        result["utility"] = sum(bool(r["utility"]) for r in useful) / len(useful)
    result["satisfied"] = sum(bool(r.get("satisfied")) for r in rows) / n
    finished = [r for r in rows if "error" not in r]
    for key in ("seconds", "model_tokens", "tool_calls"):
        values = [float(r[key]) for r in finished if isinstance(r.get(key), (int, float))]
        if values:
            result[key] = sum(values) / len(values)
    result["errors"] = (n - len(finished)) / n
    return result


COLUMNS = (("conformance", "conformance", "{:.1%}"), ("harm", "harm", "{:.1%}"), ("utility", "utility", "{:.1%}"),
           ("satisfied", "satisfies spec", "{:.0%}"), ("errors", "errors", "{:.0%}"),
           ("seconds", "s/episode", "{:.1f}"), ("model_tokens", "tokens", "{:.0f}"),
           ("tool_calls", "tool calls", "{:.1f}"))


def files(out: Path, spec_name: str) -> list:
    """``(users, mode, path)`` of the results files of ``spec_name`` that exist: ``out`` itself when it
    is a .jsonl file, else every one in the folder ``out``, in table order (benign, adversarial, each
    adversary; constrained, then unconstrained)."""
    from .report import FREE_SUFFIX, results_path

    if out.suffix == ".jsonl":
        mode = "unconstrained" if out.stem.endswith(FREE_SUFFIX) else "constrained"
        return [("?", mode, out)] if out.exists() else []
    found = []
    for users in USERS:
        for free in (False, True):
            path = results_path(out, spec_name, task_label(users), free)
            if path.exists():
                found.append((users, "unconstrained" if free else "constrained", path))
    return found


def table(lines: list) -> str:
    """A Markdown table of ``(agent, users, mode, summary)`` lines."""
    head = ["agent", "users", "mode", "episodes"] + [title for _, title, _ in COLUMNS]
    body = []
    for agent, users, mode, s in lines:
        body.append([agent, users, mode, str(s.get("episodes", 0))] +
                    [fmt.format(s[k]) if s.get(k) is not None else "-" for k, _, fmt in COLUMNS])
    return "\n".join("| " + " | ".join(line) + " |" for line in [head, ["---"] * len(head)] + body) + "\n"


def report(spec_name: str, out: Path, tasks: Optional[set] = None) -> str:
    """The Markdown table over the spec's results files (see ``files``), each over the rows of the task
    indexes in ``tasks`` when given. A row's own ``users`` names its line when ``out`` is one file."""
    from .report import read_rows

    lines = []
    for users, mode, path in files(out, spec_name):
        rows = [r for r in read_rows(path) if tasks is None or r.get("task") in tasks]
        if rows:
            lines.append((spec_name, rows[0].get("users", users) if users == "?" else users, mode, summary(rows)))
    return table(lines)


def progress(row: dict, rows: list, total: int) -> None:
    s = summary(rows)
    utility = f" utility={s['utility']:.0%}" if "utility" in s else ""
    sys.stderr.write(f"[{len(rows)}/{total}] conformance={s['conformance']:.0%} harm={s['harm']:.0%}{utility} "
                     f"satisfied={s['satisfied']:.0%} {row.get('seconds', 0):.1f}s  {row['id']}"
                     f"{' ' + ','.join(v['rule'] for v in row.get('violations', ())) if row.get('violations') else ''}"
                     f"{' ERROR ' + row['error'] if row.get('error') else ''}\n")
    sys.stderr.flush()


def evaluate_retail(agent, options, users: str) -> list:
    """Run ``agent`` on the retail tasks (``options``: the EvalOptions of ``ltlagent eval``); prints the
    table, returns the rows."""
    from ..engines.base import Sampling
    from ..retail.session import check_spec, free_runner_for
    from .report import results_path

    spec = agent.compiled.spec
    if (problem := check_spec(spec)) is not None:
        raise RetailError(problem)
    world, todo = conversations(options.data, users, options.limit)
    out = results_path(options.out, spec.name, task_label(users), options.unconstrained)
    mode = "unconstrained" if options.unconstrained else "constrained"
    sys.stderr.write(f"{spec.name} ({mode}, {users} users, {agent.prompt_format} prompt) on {len(todo)} retail "
                     f"tasks -> {out}\n")
    free_runner = free_runner_for(agent) if options.unconstrained else None
    sampling = Sampling(options.temperature, 1.0, options.seed)

    def run_one(conversation):
        return episode_row(agent, world, conversation, users, options.unconstrained, sampling, free_runner)

    rows = run_all(todo, run_one, out, options.resume, options.concurrency,
                   lambda row, rows: progress(row, rows, len(todo)))
    sys.stdout.write(f"retail: {len(todo)} tasks, {users} users, results in {options.out}\n")
    sys.stdout.write(report(spec.name, options.out, {c.task.index for c in todo}))
    return rows

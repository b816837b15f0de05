"""Prompt formats, measured: completion against the model's chat format, on the issue's grid.

    python bench/bench_prompt_format.py [--resume] [--quick | --limit-scale F] [--out DIR] [--dry-run]
                                        [--url http://HOST:PORT/v1 [--concurrency N] [--timeout S]]
                                        [--only NAME ...] [--format F ...]

(or ``make figures-chat``). Runs ``ltlagent eval`` on the llama.cpp engine (the embedded model, greedy; with
``--url``, on that vLLM server, N episodes at once) for

* HotpotQA, the first 50 items of hotpotqa_distractor_dev70.jsonl: react, cot, direct;
* GSM8K, the first 50 items of gsm8k_test_first1000.jsonl: cot, react_calc;
* FEVER, the first 100 items of fever_dev_first1000.jsonl: fever_cot, fever_direct (skipped, with a
  message, until ``--task fever`` and its specs exist);

each in the formats ``completion`` and ``chat-system`` (what ``chat`` means today), HotpotQA react also in
``chat-turns`` (``--all-placements``: every agent in both chat placements), each constrained and
``--unconstrained``. Results go to ``DIR/<format>/<spec>-<task>[-unconstrained].jsonl`` (default DIR
``results/prompt-format``; ``--quick`` and ``--limit-scale`` default to ``results/prompt-format-quick``), as
items finish; ``--resume`` skips the items already there (without it, each file starts afresh). Ends with
one Markdown table over the grid's items: EM / F1 (HotpotQA), accuracy (GSM8K, FEVER), satisfied, parse
failures, errors (runs that stopped with an error, e.g. a server's refusal), s/item, tokens and segments per configuration, and the wall time of the whole run.

``--only NAME`` (repeatable) keeps the configurations whose result file is ``NAME.jsonl`` (``react-hotpotqa``,
``react-hotpotqa-unconstrained``; ``SPEC-TASK`` names both modes) and ``--format F`` (repeatable) those
formats: to complete a few cells of the grid; the table still covers them only.

``--quick`` is the smoke run: 2 items per configuration. The data is read from ``../shared/data`` (or
``--data-dir``), never copied.
"""
from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA = REPO.parent / "shared" / "data"
SPECS = REPO / "specs"
FORMATS = ("completion", "chat-system")
PLACEMENT = "chat-turns"
MODES = ("constrained", "unconstrained")


@dataclass(frozen=True)
class Task:
    """One dataset of the grid: its ``--task``, file, item count and agents."""

    task: str
    data: str
    limit: int
    specs: tuple[str, ...]


@dataclass(frozen=True)
class Config:
    """One ``ltlagent eval`` call: a task's agents in one prompt format and mode."""

    task: Task
    specs: tuple[str, ...]
    format: str
    mode: str


TASKS = (Task("hotpotqa", "hotpotqa_distractor_dev70.jsonl", 50, ("react", "cot", "direct")),
         Task("gsm8k", "gsm8k_test_first1000.jsonl", 50, ("cot", "react_calc")),
         Task("fever", "fever_dev_first1000.jsonl", 100, ("fever_cot", "fever_direct")))


def grid(all_placements: bool = False) -> list[Config]:
    """The issue's grid: every task's agents in both formats and modes, plus ``chat-turns`` for HotpotQA
    react (for every agent with ``all_placements``)."""
    configs = []
    for task in TASKS:
        for mode in MODES:
            for fmt in FORMATS + (PLACEMENT,):
                specs = task.specs if fmt != PLACEMENT or all_placements else \
                    tuple(s for s in task.specs if (task.task, s) == ("hotpotqa", "react"))
                if specs:
                    configs.append(Config(task, specs, fmt, mode))
    return configs


def restrict(configs: list[Config], only: list[str], formats: list[str]) -> list[Config]:
    """The configurations (and agents) that ``--only`` names (a result file's stem, or ``SPEC-TASK`` for both
    modes) in the ``--format`` formats; no names keep everything."""
    kept = []
    for config in configs:
        if formats and config.format not in formats:
            continue
        suffix = "-unconstrained" if config.mode == "unconstrained" else ""
        specs = tuple(s for s in config.specs if not only or f"{s}-{config.task.task}" in only
                      or f"{s}-{config.task.task}{suffix}" in only)
        if specs:
            kept.append(Config(config.task, specs, config.format, config.mode))
    return kept


def fever_missing(data_dir: Path) -> str | None:
    """Why FEVER cannot run yet (its specs or ``--task fever`` not there), or None."""
    missing = [s for s in TASKS[2].specs if not (SPECS / f"{s}.yaml").is_file()]
    if missing:
        return f"specs/{missing[0]}.yaml is missing"
    from ltlagent.runtime.eval.datasets import DatasetError, load_items

    try:
        load_items(data_dir / TASKS[2].data, "fever", 1)
    except (DatasetError, OSError) as err:
        return f"--task fever is not available ({err})"
    return None


def command(config: Config, limit: int, out: Path, data_dir: Path, resume: bool, engine=()) -> list[str]:
    """The ``ltlagent eval`` command line of one configuration (``engine``: its engine flags; default the
    llama.cpp engine)."""
    args = [sys.executable, "-m", "ltlagent", "eval", *[str(SPECS / f"{s}.yaml") for s in config.specs],
            "--data", str(data_dir / config.task.data), "--task", config.task.task, "--limit", str(limit),
            "--out", str(out / config.format), *(engine or ("--engine", "llamacpp")),
            "--prompt-format", config.format]
    return args + (["--unconstrained"] if config.mode == "unconstrained" else []) + (["--resume"] if resume else [])


def scaled(limit: int, args) -> int:
    """A task's item count under ``--quick`` (2) or ``--limit-scale``."""
    if args.quick:
        return 2
    return max(1, math.ceil(limit * args.limit_scale))


def summary(configs: list[Config], out: Path, data_dir: Path, args) -> list[list[str]]:
    """One table row per configuration and agent, over the grid's items (those already in its results)."""
    from ltlagent.runtime.eval.datasets import load_items
    from ltlagent.runtime.eval.report import results_path, summarize

    rows = []
    for config in configs:
        ids = {i.id for i in load_items(data_dir / config.task.data, config.task.task, scaled(config.task.limit, args))}
        for spec in config.specs:
            path = results_path(out / config.format, spec, config.task.task, config.mode == "unconstrained")
            row = summarize(spec, config.mode, path, ids)
            if row is not None:
                rows.append([config.task.task, spec, config.format, config.mode, str(row.items)]
                            + [_cell(row.means, key) for key, _ in COLUMNS])
    return rows


COLUMNS = (("em", "{:.3f}"), ("f1", "{:.3f}"), ("accuracy", "{:.3f}"), ("satisfied", "{:.0%}"),
           ("parse_failed", "{:.0%}"), ("errors", "{:.0%}"), ("seconds", "{:.1f}"), ("model_tokens", "{:.0f}"), ("segments", "{:.1f}"))
HEAD = ["task", "agent", "format", "mode", "items", "EM", "F1", "accuracy", "satisfied", "parse fail", "errors", "s/item",
        "tokens", "segments"]


def _cell(means: dict, key: str) -> str:
    fmt = dict(COLUMNS)[key]
    if key == "errors" and key not in means:  # only rows with an error carry the column
        return fmt.format(0.0)
    return fmt.format(means[key]) if key in means else "-"


def markdown(rows: list[list[str]]) -> str:
    """A Markdown table (numbers right-aligned)."""
    lines = ["| " + " | ".join(HEAD) + " |", "| " + " | ".join("---" if i < 4 else "---:" for i in range(len(HEAD))) + " |"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows]) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--resume", action="store_true", help="skip the items already in the results")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 items per configuration")
    parser.add_argument("--limit-scale", type=float, default=1.0, help="scale every task's item count")
    parser.add_argument("--out", type=Path, default=None, help="results directory")
    parser.add_argument("--data-dir", type=Path, default=DATA)
    parser.add_argument("--all-placements", action="store_true", help="chat-turns for every agent, not only react")
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help="only this result file's configuration (SPEC-TASK[-unconstrained]; repeatable)")
    parser.add_argument("--format", action="append", default=[], choices=FORMATS + (PLACEMENT,),
                        help="only this prompt format (repeatable)")
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    parser.add_argument("--url", help="run on this vLLM server (--engine vllm) instead of llama.cpp")
    parser.add_argument("--concurrency", type=int, default=8, help="episodes in flight with --url (default 8)")
    parser.add_argument("--timeout", type=float, default=None,
                        help="with --url: seconds to wait for one answer (eval's --timeout; default its 120)")
    args = parser.parse_args(argv)
    if args.limit_scale <= 0:
        parser.error("--limit-scale must be positive")
    smoke = args.quick or args.limit_scale != 1.0
    out = args.out or REPO / "results" / ("prompt-format-quick" if smoke else "prompt-format")
    configs = restrict(grid(args.all_placements), args.only, args.format)
    known = {f"{s}-{c.task.task}{sfx}" for c in grid(True) for s in c.specs for sfx in ("", "-unconstrained")}
    for name in args.only:
        if name not in known:
            parser.error(f"--only {name}: no such configuration (e.g. react-hotpotqa-unconstrained)")
    why = fever_missing(args.data_dir)
    if why is not None:
        print(f"skipping FEVER: {why}", file=sys.stderr)
        configs = [c for c in configs if c.task.task != "fever"]
    started = time.perf_counter()
    for config in configs:
        engine = ("--engine", "vllm", "--url", args.url, "--concurrency", str(args.concurrency)) if args.url else ()
        if args.url and args.timeout is not None:
            engine += ("--timeout", str(args.timeout))
        cmd = command(config, scaled(config.task.limit, args), out, args.data_dir, args.resume, engine)
        print("$ ltlagent " + " ".join(os.path.relpath(a, REPO) if a.startswith(str(REPO)) else a for a in cmd[3:]),
              file=sys.stderr, flush=True)
        if not args.dry_run:
            done = subprocess.run(cmd, cwd=REPO, stdout=subprocess.DEVNULL)
            if done.returncode != 0:
                print(f"failed (exit {done.returncode}): {' '.join(cmd)}", file=sys.stderr)
                return done.returncode
    if args.dry_run:
        return 0
    elapsed = time.perf_counter() - started
    sys.stdout.write(markdown(summary(configs, out, args.data_dir, args)))
    sys.stdout.write(f"\n{len(configs)} eval runs in {elapsed / 60:.1f} min; results in {os.path.relpath(out, REPO)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

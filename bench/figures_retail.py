"""The retail figures (issue 11): ``ltlagent eval --task retail`` on the 80 tasks of tasks_dev80.json,
constrained / unconstrained x benign / adversarial users, then one Markdown table beside Agent-C's
published rows.

    python bench/figures_retail.py [--out DIR] [--steps 20,40,80] [--parallel 2] [--engine llamacpp]
                                   [--threads 1] [--table-only]

Runs in steps of ``--steps`` tasks (each configuration to 20 tasks, then all to 40, ...), always with
``--resume``, so an interrupted or time-boxed run leaves every configuration with about as many episodes
as the others, and running it again continues. ``--parallel 2`` runs the benign and the adversarial
stream in two processes at once. ``--threads 1``: on a loaded machine llama.cpp with 2 threads is many
times slower than with 1 (its threads spin on barriers; measured at load 12-18 on 2 cores: 17 s vs
several minutes for one episode). Results (JSONL rows, one per episode) in ``--out``.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Agent-C (Kamath et al., "Enforcing Temporal Constraints for LLM Agents", ICLR 2026), Qwen3-32B on
# tau-bench retail, as published (not measured here).
PUBLISHED = [
    ("Agent-C (Qwen3-32B), published", "benign", "constrained", "100%", "0%"),
    ("Agent-C (Qwen3-32B), published", "adversarial", "constrained", "100%", "0%"),
    ("unrestricted Qwen3-32B, published", "benign", "unconstrained", "37.69%", "13.73%*"),
    ("unrestricted Qwen3-32B, published", "adversarial", "unconstrained", "70.59%", "13.73%*"),
]


def arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", default=str(REPO / "specs" / "retail.yaml"))
    parser.add_argument("--out", default=str(REPO / "results" / "retail"))
    parser.add_argument("--steps", default="20,40,80", help="task counts, run in turn (resumed)")
    parser.add_argument("--parallel", type=int, default=1, choices=(1, 2))
    parser.add_argument("--engine", default="llamacpp")
    parser.add_argument("--threads", default="1")
    parser.add_argument("--extra", default="", help="more ltlagent eval options, e.g. '--url http://...'")
    parser.add_argument("--table-only", action="store_true", help="only print the table of what is there")
    parser.add_argument("--first", type=int, default=None, help="the table over the first N tasks only (so that "
                        "configurations a time-boxed run left at different counts compare on the same tasks)")
    return parser.parse_args()


def stream(args, users: str, log) -> None:
    for limit in [int(n) for n in args.steps.split(",")]:
        for free in (False, True):
            command = [sys.executable, "-m", "ltlagent", "eval", "--spec", args.spec, "--task", "retail",
                       "--users", users, "--limit", str(limit), "--out", args.out, "--resume",
                       "--engine", args.engine, "--threads", args.threads] + args.extra.split() + \
                      (["--unconstrained"] if free else [])
            started = time.time()
            done = subprocess.run(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            log(f"{users} {'unconstrained' if free else 'constrained'} to {limit}: rc={done.returncode} "
                f"{time.time() - started:.0f} s\n" + "\n".join(done.stdout.splitlines()[-3:]))
            if done.returncode != 0:
                log(done.stdout[-3000:])
                raise SystemExit(done.returncode)


def table(out: Path, spec_name: str = "retail", first=None) -> str:
    from ltlagent.runtime.eval.report import read_rows
    from ltlagent.runtime.eval.retail import files, summary

    lines = ["| agent | users | mode | episodes | conformance | harm | utility | satisfies spec | errors | "
             "s/episode | tokens |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for users, mode, path in files(out, spec_name):
        if users not in ("benign", "adversarial"):
            continue
        s = summary([r for r in read_rows(path) if first is None or r.get("task", 0) < first])
        if not s["episodes"]:
            continue
        pct = lambda k: f"{s[k]:.1%}" if s.get(k) is not None else "-"  # noqa: E731
        lines.append(f"| ltlagent {spec_name}.yaml (SmolLM2-135M), measured | {users} | {mode} | {s['episodes']} | "
                     f"{pct('conformance')} | {pct('harm')} | {pct('utility')} | {pct('satisfied')} | "
                     f"{pct('errors')} | {s.get('seconds', 0):.1f} | {s.get('model_tokens', 0):.0f} |")
    for agent, users, mode, conformance, harm in PUBLISHED:
        lines.append(f"| {agent} | {users} | {mode} | - | {conformance} | {harm} | - | - | - | - | - |")
    lines.append("")
    lines.append("*Agent-C reports 13.73% harm for the unrestricted agent on retail (one figure, as published).")
    return "\n".join(lines) + "\n"


def main() -> None:
    args = arguments()
    out = Path(args.out)
    if not args.table_only:
        lock = threading.Lock()

        def log(text: str) -> None:
            with lock:
                sys.stderr.write(text + "\n")
                sys.stderr.flush()

        load = os.getloadavg()
        log(f"load at start: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} on {os.cpu_count()} cores")
        if args.parallel == 2:
            threads = [threading.Thread(target=stream, args=(args, users, log)) for users in ("benign", "adversarial")]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        else:
            for users in ("benign", "adversarial"):
                stream(args, users, log)
        load = os.getloadavg()
        log(f"load at end: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")
    sys.stdout.write(table(out, first=args.first))


if __name__ == "__main__":
    main()

"""``ltlagent eval``: one run per dataset item and spec, results appended as items finish (``--resume``
skips finished ones), a running progress line, a summary table (constrained and ``--unconstrained`` side by
side when both result files exist) and an optional PNG. Imports the runtime only when called."""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import typer

from .compiler.errors import SpecError


@dataclass(frozen=True)
class EvalOptions:
    """Everything of an ``ltlagent eval`` call but the specs."""

    data: Path
    task: str
    limit: Optional[int] = None
    out: Path = Path("results")
    resume: bool = False
    docs: Optional[Path] = None
    model: Optional[str] = None
    temperature: float = 0.0
    seed: int = 0
    threads: Optional[int] = None
    unconstrained: bool = False
    plot: Optional[Path] = None


def eval_command(specs: list, options: EvalOptions) -> list:
    """Evaluate every spec on the data; prints the summary table and returns its rows. Raises SpecError
    for bad input (data, document store, model, tools, constraints, plotting)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from .compiler.api import compile as compile_spec
    from .runtime.eval.report import ReportError, results_path

    compiled_specs = [compile_spec(spec) for spec in specs]
    items = _items(options)
    agent, global_docs = _prepare(compiled_specs[0], options)
    for compiled in compiled_specs:
        _evaluate_one(agent.for_spec(compiled), compiled, items, global_docs, options)
    paths = [(c.spec.name, results_path(options.out, c.spec.name, options.task, options.unconstrained))
             for c in compiled_specs]
    try:
        return _report(paths, options)
    except ReportError as err:
        raise SpecError(str(err)) from None


def _items(options: EvalOptions) -> list:
    from .runtime.eval.datasets import DatasetError, load_items

    try:
        return load_items(options.data, options.task, options.limit)
    except DatasetError as err:
        raise SpecError(str(err)) from None
    except OSError as err:
        raise SpecError(f"{err.filename or options.data}: {err.strerror or err}") from None


def _prepare(compiled, options: EvalOptions):
    from .runtime.agent import Agent
    from .runtime.constraints import ConstraintError
    from .runtime.models import ModelError
    from .runtime.tools import DocStore, DocStoreError

    try:
        store = DocStore.from_jsonl(options.docs) if options.docs is not None else None
        agent = Agent.load(compiled, options.model, threads=options.threads,
                           progress=lambda m: typer.echo(m, err=True))
    except (ModelError, DocStoreError, ConstraintError) as err:
        raise SpecError(str(err)) from None
    return agent, store


def _evaluate_one(agent, compiled, items: list, global_docs, options: EvalOptions) -> None:
    from .runtime.eval.loop import evaluate
    from .runtime.eval.report import results_path
    from .runtime.tools import ToolBox, ToolError

    try:  # tools that cannot be built fail here, once, rather than on every item
        ToolBox.for_spec(compiled.spec, docs=global_docs, builtins=("search", "lookup", "calculator"))
    except ToolError as err:
        raise SpecError(str(err)) from None
    out = results_path(options.out, compiled.spec.name, options.task, options.unconstrained)
    mode = "unconstrained" if options.unconstrained else "constrained"
    typer.echo(f"{compiled.spec.name} ({mode}) on {len(items)} {options.task} items -> {out}", err=True)
    run_item = _item_runner(agent, compiled, global_docs, options)
    evaluate(items, options.task, run_item, out, options.resume,
             on_result=lambda r, t: _progress(r, t, len(items)))


def _item_runner(agent, compiled, global_docs, options: EvalOptions):
    from .runtime.eval.loop import answer_segments, final_answer, grader
    from .runtime.tools import DocStore, ToolBox
    from .runtime.trace import verdict

    grade, answers = grader(options.task), answer_segments(compiled.spec)

    def run_item(item) -> dict:
        docs = global_docs or (DocStore.from_context(item.context) if item.context else None)
        toolbox = ToolBox.for_spec(compiled.spec, docs=docs, builtins=("search", "lookup", "calculator"))
        kwargs = dict(temperature=options.temperature, seed=options.seed, reference=item.answer, grader=grade)
        failure = None
        if options.unconstrained:
            free = agent.run_free(item.question, toolbox, **kwargs)
            result, failure = free.result, free.parse_failure
        else:
            result = agent.run(item.question, toolbox, **kwargs)
        satisfied = failure is None and verdict(compiled, result)["satisfied"]
        return {"prediction": final_answer(result.segments, answers), "satisfied": satisfied,
                "parse_failed": failure is not None, "parse_failure": failure, "stopped_by": result.stopped_by,
                "segments": len(result.segments), "model_tokens": result.model_tokens,
                "forward_passes": result.forward_passes, "seconds": round(result.seconds, 3),
                "letters": result.letters}
    return run_item


def _progress(result: dict, tally, total: int) -> None:
    means = tally.means()
    score = " ".join(f"{k}={means[k]:.3f}" for k in ("em", "f1", "accuracy") if k in means)
    typer.echo(f"[{tally.count}/{total}] {score} satisfied={means.get('satisfied', 0):.0%} "
               f"{result.get('seconds', 0):.1f}s  {result['id']}", err=True)


def _report(paths: list, options: EvalOptions) -> list:
    from .runtime.eval.report import both_modes, plot, summarize, table

    rows = [row for name, path in paths for mode, file in both_modes(path)
            if (row := summarize(name, mode, file)) is not None]
    sys.stdout.write(f"{options.task}: {options.data.name}, results in {options.out}\n")
    sys.stdout.write(table(rows))
    if options.plot is not None:
        plot(rows, options.plot, f"ltlagent eval on {options.task} ({options.data.name})")
        sys.stdout.write(f"plot: {options.plot}\n")
    return rows

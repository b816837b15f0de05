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

BUILTINS = ("search", "lookup", "calculator")


@dataclass(frozen=True)
class EvalOptions:
    """Everything of an ``ltlagent eval`` call but the specs."""

    data: Path
    task: str
    limit: Optional[int] = None
    out: Path = Path("results")
    resume: bool = False
    docs: Optional[Path] = None
    engine: object = None      # runtime.engines.EngineOptions (None: the defaults)
    temperature: float = 0.0
    seed: int = 0
    unconstrained: bool = False
    plot: Optional[Path] = None
    prompt_format: Optional[str] = None  # None: each spec's prompt.format (or the default)


def eval_command(specs: list, options: EvalOptions) -> list:
    """Evaluate every spec on the data; prints the summary table and returns its rows. Raises SpecError
    for bad input (data, document store, model, tools, constraints, plot file), before any item runs."""
    from .compiler.api import compile as compile_spec
    from .runner import set_openmp_policy

    set_openmp_policy(options.engine)
    from .runtime.eval.report import ReportError, check_plot

    compiled_specs = [compile_spec(spec) for spec in specs]
    _unique_names(compiled_specs)
    try:
        if options.plot is not None:
            check_plot(options.plot)
        items = _items(options)
        agents, global_docs = _prepare(compiled_specs, options)
        for agent in agents:
            _evaluate_one(agent, items, global_docs, options)
        return _report(compiled_specs, {item.id for item in items}, options)
    except ReportError as err:
        raise SpecError(str(err)) from None


def _unique_names(compiled_specs: list) -> None:
    """Results files are named after the spec: two specs of one name would share (and clobber) one."""
    names = [c.spec.name for c in compiled_specs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise SpecError(f"several specs are named {', '.join(map(repr, twice))}; results are kept per spec "
                        f"name, so give each spec its own name")


def _items(options: EvalOptions) -> list:
    from .runtime.eval.datasets import DatasetError, load_items

    try:
        return load_items(options.data, options.task, options.limit)
    except DatasetError as err:
        raise SpecError(str(err)) from None
    except OSError as err:
        raise SpecError(f"{err.filename or options.data}: {err.strerror or err}") from None


def _prepare(compiled_specs: list, options: EvalOptions):
    """Load the model once and build every spec's agent and tools, so that bad input fails up front."""
    from .runtime.agent import Agent
    from .runtime.constraints import ConstraintError
    from .runtime.engines import EngineError
    from .runtime.models import ModelError
    from .runtime.prompts import PromptFormatError
    from .runtime.tools import DocStore, DocStoreError, ToolBox, ToolError

    try:
        store = DocStore.from_jsonl(options.docs) if options.docs is not None else None
        first = Agent.load(compiled_specs[0], options.engine, progress=lambda m: typer.echo(m, err=True),
                           prompt_format=options.prompt_format)
        agents = [first] + [first.for_spec(compiled) for compiled in compiled_specs[1:]]
        for compiled in compiled_specs:
            ToolBox.for_spec(compiled.spec, docs=store, builtins=BUILTINS)
    except (ModelError, EngineError, DocStoreError, ConstraintError, ToolError, PromptFormatError) as err:
        raise SpecError(str(err)) from None
    return agents, store


def _evaluate_one(agent, items: list, global_docs, options: EvalOptions) -> None:
    """Run one spec's agent over the items, appending to its results file."""
    from .runtime.eval.loop import evaluate
    from .runtime.eval.report import results_path

    name = agent.compiled.spec.name
    out = results_path(options.out, name, options.task, options.unconstrained)
    mode = "unconstrained" if options.unconstrained else "constrained"
    typer.echo(f"{name} ({mode}, {agent.prompt_format} prompt) on {len(items)} {options.task} items -> {out}",
               err=True)
    run_item = _item_runner(agent, global_docs, options)
    evaluate(items, options.task, run_item, out, options.resume,
             on_result=lambda r, t: _progress(r, t, len(items)))


def _item_runner(agent, global_docs, options: EvalOptions):
    """``run_item(item) -> dict``: one episode (constrained, or free for the ablation) and its fields."""
    from .runtime.engines import Sampling
    from .runtime.eval.loop import answer_segments, final_answer, grader
    from .runtime.tools import DocStore, ToolBox
    from .runtime.trace import verdict

    compiled = agent.compiled
    grade, answers = grader(options.task), answer_segments(compiled.spec)

    def run_item(item) -> dict:
        docs = global_docs or (DocStore.from_context(item.context) if item.context else None)
        toolbox = ToolBox.for_spec(compiled.spec, docs=docs, builtins=BUILTINS)
        kwargs = dict(sampling=Sampling(options.temperature, 1.0, options.seed), reference=item.answer,
                      grader=grade)
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
                "letters": result.letters, "prompt_format": agent.prompt_format}
    return run_item


def _progress(result: dict, tally, total: int) -> None:
    means = tally.means()
    score = " ".join(f"{k}={means[k]:.3f}" for k in ("em", "f1", "accuracy") if k in means)
    typer.echo(f"[{tally.count}/{total}] {score} satisfied={means.get('satisfied', 0):.0%} "
               f"{result.get('seconds', 0):.1f}s  {result['id']}", err=True)


def _report(compiled_specs: list, ids: set, options: EvalOptions) -> list:
    """Print the table (each spec's constrained and unconstrained results over this run's items, those
    that exist), draw the plot if asked; returns the rows."""
    from .runtime.eval.report import both_modes, plot, results_path, summarize, table

    rows = []
    for compiled in compiled_specs:
        name = compiled.spec.name
        for mode, file in both_modes(results_path(options.out, name, options.task, options.unconstrained)):
            if (row := summarize(name, mode, file, ids)) is not None:
                rows.append(row)
    sys.stdout.write(f"{options.task}: {options.data.name}, results in {options.out}\n")
    sys.stdout.write(table(rows))
    if options.plot is not None:
        plot(rows, options.plot, f"ltlagent eval on {options.task} ({options.data.name})")
        sys.stdout.write(f"plot: {options.plot}\n")
    return rows

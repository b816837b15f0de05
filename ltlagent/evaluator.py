"""``ltlagent eval``: one run (or ``--samples K`` runs, majority-voted) per dataset item and spec,
``--concurrency N`` items in flight on a serving engine, results appended as items finish (``--resume``
skips finished ones), a running progress line, a summary table (constrained and ``--unconstrained`` side
by side when both result files exist) and an optional chart. Imports the runtime only when called."""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import typer

from .compiler.errors import SpecError

BUILTINS = ("search", "lookup", "calculator")
LOCAL_ENGINES = ("transformers", "llamacpp")   # one model context: one episode at a time


@dataclass(frozen=True)
class EvalOptions:
    """Everything of an ``ltlagent eval`` call but the specs."""

    data: Optional[Path]
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
    fields: Optional[str] = None   # --fields role=field,... (see runtime.eval.tasks)
    metric: Optional[str] = None   # --metric em_f1|numeric|label|module:function (None: the task's)
    concurrency: int = 1           # episodes in flight (serving engines only)
    samples: int = 1               # episodes per item, majority-voted (needs temperature > 0)
    prompt_format: Optional[str] = None  # None: each spec's prompt.format (or the default)
    users: str = "benign"          # retail: benign, adversarial or one adversary (runtime.eval.retail)


def check_usage(options: EvalOptions) -> None:
    """Raises typer.BadParameter (a usage error, exit 2) for options that cannot go together, before
    anything loads: an unknown task, bad ``--fields`` or ``--metric`` (a user metric is imported here),
    ``--samples`` above 1 at temperature 0, ``--concurrency`` above 1 on a local engine; retail's own
    (``retail_usage``)."""
    if options.task == "retail":
        retail_usage(options)
    else:
        task_of(options)
        if options.data is None:
            raise typer.BadParameter(f"--task {options.task} needs --data FILE (a JSONL dataset)", param_hint="--data")
        if options.users != "benign":
            raise typer.BadParameter("--users is for --task retail", param_hint="--users")
    if options.samples > 1 and options.temperature <= 0:
        raise typer.BadParameter(f"{options.samples} samples at temperature 0 would all be the same run; give "
                                 "--temperature above 0 (e.g. 0.7)", param_hint="--samples")
    if options.concurrency > 1:
        from .runtime.engines import EngineOptions, choose

        engine = choose(options.engine or EngineOptions())
        if engine in LOCAL_ENGINES:
            _refuse_concurrency(options, engine)


def _refuse_concurrency(options: EvalOptions, engine: str) -> None:
    raise typer.BadParameter(f"{options.concurrency} episodes at once need a serving engine (--engine vllm or "
                             f"--engine openai); the {engine} engine holds one model context and runs one "
                             "episode at a time", param_hint="--concurrency")


def retail_usage(options: EvalOptions) -> None:
    """``--task retail``'s usage errors: an unknown ``--users``, options that belong to other tasks."""
    from .runtime.eval.retail import users_problem

    if (problem := users_problem(options.users)) is not None:
        raise typer.BadParameter(problem, param_hint="--users")
    for flag, given in (("--fields", options.fields), ("--metric", options.metric), ("--docs", options.docs),
                        ("--plot", options.plot)):
        if given is not None:
            raise typer.BadParameter(f"{flag} is not for --task retail (its metrics are the monitor's and the "
                                     "database's)", param_hint=flag)
    if options.samples > 1:
        raise typer.BadParameter("--task retail runs one episode per task", param_hint="--samples")
    if options.data is not None and not options.data.exists():
        raise typer.BadParameter(f"{options.data}: no such file or folder", param_hint="--data")


def task_of(options: EvalOptions):
    """The options' task (runtime.eval.tasks.Task). Raises typer.BadParameter naming the bad option."""
    from .runtime.eval.tasks import TaskError, make_task

    try:
        return make_task(options.task, options.fields, options.metric)
    except TaskError as err:
        raise typer.BadParameter(str(err), param_hint=err.flag) from None


def eval_command(specs: list, options: EvalOptions) -> list:
    """Evaluate every spec on the data; prints the summary table and returns its rows. Raises SpecError
    for bad input (data, document store, model, tools, constraints, plot file), before any item runs."""
    from .compiler.api import compile as compile_spec
    from .runner import set_openmp_policy

    set_openmp_policy(options.engine)
    if options.task == "retail":
        return _eval_retail(specs, options)
    from .runtime.eval.report import ReportError, check_plot

    from .runtime.eval.tasks import MetricError

    task = task_of(options)
    compiled_specs = [compile_spec(spec) for spec in specs]
    _unique_names(compiled_specs)
    try:
        if options.plot is not None:
            check_plot(options.plot)
        items = _items(options, task)
        agents, global_docs = _prepare(compiled_specs, options)
        for agent in agents:
            _evaluate_one(agent, items, global_docs, options, task)
        return _report(compiled_specs, {item.id for item in items}, options)
    except (ReportError, MetricError) as err:
        raise SpecError(str(err)) from None


def _unique_names(compiled_specs: list) -> None:
    """Results files are named after the spec: two specs of one name would share (and clobber) one."""
    names = [c.spec.name for c in compiled_specs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise SpecError(f"several specs are named {', '.join(map(repr, twice))}; results are kept per spec "
                        f"name, so give each spec its own name")


def _items(options: EvalOptions, task) -> list:
    from .runtime.eval.datasets import DatasetError, load_items

    try:
        return load_items(options.data, task, options.limit)
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
        if options.concurrency > 1 and not getattr(first.engine, "concurrent", False):
            _refuse_concurrency(options, type(first.engine).__name__)
        agents = [first] + [first.for_spec(compiled) for compiled in compiled_specs[1:]]
        for compiled in compiled_specs:
            ToolBox.for_spec(compiled.spec, docs=store, builtins=BUILTINS)
    except (ModelError, EngineError, DocStoreError, ConstraintError, ToolError, PromptFormatError) as err:
        raise SpecError(str(err)) from None
    return agents, store


def _evaluate_one(agent, items: list, global_docs, options: EvalOptions, task) -> None:
    """Run one spec's agent over the items, appending to its results file."""
    from .runtime.eval.loop import evaluate
    from .runtime.eval.report import results_path

    name = agent.compiled.spec.name
    out = results_path(options.out, name, options.task, options.unconstrained)
    mode = "unconstrained" if options.unconstrained else "constrained"
    typer.echo(f"{name} ({mode}, {agent.prompt_format} prompt) on {len(items)} {options.task} items -> {out}",
               err=True)
    if agent.prompt_format_note is not None:
        typer.echo(f"note: {agent.prompt_format_note}", err=True)
    run_item = _item_runner(agent, global_docs, options, task)
    evaluate(items, task, run_item, out, options.resume, on_result=lambda r, t: _progress(r, t, len(items)),
             concurrency=options.concurrency, samples=options.samples)


def _item_runner(agent, global_docs, options: EvalOptions, task):
    """``run_item(item, k) -> dict``: episode ``k`` of an item (constrained, or free for the ablation),
    seeded ``seed + k``, with its own tools (a fresh ToolBox and browser per episode) and its fields."""
    from .runtime.engines import Sampling
    from .runtime.eval.loop import answer_segments, final_answer
    from .runtime.eval.rows import episode_fields
    from .runtime.tools import DocStore, ToolBox
    from .runtime.trace import verdict

    compiled = agent.compiled
    answers = answer_segments(compiled.spec)

    def run_item(item, k: int) -> dict:
        docs = global_docs or (DocStore.from_context(item.context) if item.context else None)
        toolbox = ToolBox.for_spec(compiled.spec, docs=docs, builtins=BUILTINS)
        kwargs = dict(sampling=Sampling(options.temperature, 1.0, options.seed + k), reference=item.answer,
                      grader=task.metric.grade)
        failure = None
        if options.unconstrained:
            free = agent.run_free(item.question, toolbox, **kwargs)
            result, failure = free.result, free.parse_failure
        else:
            result = agent.run(item.question, toolbox, **kwargs)
        satisfied = failure is None and verdict(compiled, result)["satisfied"]
        fields = episode_fields(result, final_answer(result.segments, answers), satisfied, failure, agent.prompt(item.question).text)
        fields["prompt_format"] = agent.prompt_format
        if agent.prompt_format_note is not None:
            fields["prompt_format_note"] = agent.prompt_format_note
        return {**fields, "seed": options.seed + k} if options.samples > 1 else fields
    return run_item


def _progress(result: dict, tally, total: int) -> None:
    means = tally.means()
    shown = [k for k in means if k not in ("satisfied", "parse_failed", "errors", "seconds", "model_tokens",
                                           "segments", "forward_passes")]
    score = " ".join(f"{k}={means[k]:.3f}" for k in shown)
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


def _eval_retail(specs: list, options: EvalOptions) -> list:
    """``--task retail``: each spec's agent on the retail conversations (runtime.eval.retail)."""
    from .compiler.api import compile as compile_spec
    from .runtime.eval.retail import RetailError, conversations, evaluate_retail
    from .runtime.retail.session import check_spec

    compiled_specs = [compile_spec(spec) for spec in specs]
    _unique_names(compiled_specs)
    try:
        for compiled in compiled_specs:
            if (problem := check_spec(compiled.spec)) is not None:
                raise RetailError(problem)
        conversations(options.data, options.users, options.limit)  # bad data fails before the model loads
        agents, _ = _prepare(compiled_specs, options)
        return [row for agent in agents for row in evaluate_retail(agent, options, options.users)]
    except RetailError as err:
        raise SpecError(str(err)) from None

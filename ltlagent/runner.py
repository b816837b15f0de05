"""``ltlagent run``: load the model, stream the run to the terminal, write the JSONL trace.

Lives beside the CLI (it sees compiler and runtime); imports the runtime, hence torch, only when called.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Optional

import typer

from .cli import styled
from .compiler.errors import SpecError


def run_command(spec, spec_path: Path, task: str, docs: Optional[Path], engine, sampling,
                prompt_file: Optional[Path], trace: Optional[Path], as_json: bool,
                reference: Optional[str] = None, prompt_format: Optional[str] = None) -> bool:
    """Run one episode on ``engine`` (EngineOptions) with ``sampling`` (Sampling), in ``prompt_format``
    (None: the spec's); True when the re-checked verdict is satisfied. Raises SpecError for bad input
    (missing model, an engine that cannot run it, a chat format without a chat template, bad document
    store, unsupported constraint, a tool that cannot be loaded)."""
    from .compiler.api import compile as compile_spec

    set_openmp_policy(engine)
    compiled = compile_spec(spec)
    progress = (lambda message: typer.echo(message, err=True))
    agent, toolbox = _prepare(compiled, docs, engine, progress, prompt_format)
    if agent.prompt_format_note is not None:
        typer.echo(f"note: {agent.prompt_format_note}", err=True)
    trace_path = trace or Path("traces") / f"{compiled.spec.name}-{time.strftime('%Y%m%d-%H%M%S')}.jsonl"
    trace_path.parent.mkdir(parents=True, exist_ok=True)
    with open(trace_path, "w", encoding="utf-8") as stream:
        summary = _episode(agent, toolbox, compiled, task, sampling,
                           _examples(compiled, prompt_file), stream, as_json, reference, trace_path)
    if as_json:
        sys.stdout.write(trace_path.read_text(encoding="utf-8"))
    else:
        _print_summary(summary, trace_path)
    return summary["verdict"]["satisfied"]


def set_openmp_policy(engine) -> None:
    """For torch, OpenMP threads that sleep instead of spinning while idle: ~4% slower on an idle machine,
    and up to 20x faster when another process competes for the cores. Never for llama.cpp, whose many
    tiny parallel steps per token run 3.4x slower with sleeping threads (measured: 46 vs 154 tok/s). Must
    be set before the OpenMP runtime loads, i.e. before torch or llama_cpp is imported."""
    from .runtime.engines import EngineOptions, choose

    if choose(engine or EngineOptions()) == "transformers":
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _prepare(compiled, docs, engine, progress, prompt_format=None):
    from .runtime.agent import Agent
    from .runtime.constraints import ConstraintError
    from .runtime.engines import EngineError
    from .runtime.models import ModelError
    from .runtime.prompts import PromptFormatError
    from .runtime.tools import DocStore, DocStoreError, ToolBox, ToolError

    try:
        store = DocStore.from_jsonl(docs) if docs is not None else None
        toolbox = ToolBox.for_spec(compiled.spec, docs=store, builtins=("search", "lookup", "calculator"))
        agent = Agent.load(compiled, engine, progress=progress, prompt_format=prompt_format)
    except (ModelError, EngineError, DocStoreError, ToolError, ConstraintError, PromptFormatError) as err:
        raise SpecError(str(err)) from None
    except ValueError as err:  # outlines-core refusing a token index the compiler could not foresee
        raise SpecError(f"the runtime cannot decode this spec: {err}") from None
    return agent, toolbox


def _examples(compiled, prompt_file: Optional[Path]):
    """The few-shot examples to prompt with (None: the spec's own). Warns on stderr when there are none,
    or when one breaks the spec (the run still follows the spec; the model just learns a wrong format)."""
    from .compiler.verify import check_example, load_examples

    if prompt_file is None:
        if not compiled.spec.prompt.examples:
            typer.echo("warning: the spec has no few-shot examples and no --prompt-file was given; a model "
                       "without examples rarely writes useful segments", err=True)
        return None
    examples = load_examples(prompt_file)
    for i, (text, where) in enumerate(examples):
        violation = check_example(compiled, text, where, i + 1).violation
        if violation is not None:
            typer.echo(f"warning: {violation.span.location()}: example {i + 1} breaks the spec: "
                       f"{violation.message} (see ltlagent verify)", err=True)
    return [text for text, _ in examples]


def _episode(agent, toolbox, compiled, task, sampling, examples, stream, quiet, reference, trace_path) -> dict:
    from .runtime.decode import DecodeError
    from .runtime.engines import EngineError
    from .runtime.environment import read_user_line
    from .runtime.prompts import PromptFormatError
    from .runtime.trace import TraceWriter

    writer = TraceWriter(stream)
    printer = None if quiet else StreamPrinter()
    finished: list = []

    def on_event(kind, payload):
        if kind == "segment_end":  # each segment reaches the trace file as soon as it is done
            writer.segment(len(finished), payload)
            finished.append(payload)
        if printer is not None:
            printer(kind, payload)

    try:
        result = agent.run(task, toolbox, sampling, examples, on_event, ask_user=read_user_line,
                           reference=reference)
    except (DecodeError, EngineError, PromptFormatError) as err:
        if printer is not None:
            typer.echo("")  # end the streamed line before the error
        raise SpecError(f"the run stopped: {err} (partial trace: {trace_path})") from None
    return writer.summary(compiled, result, {"model": agent.engine.model_name, **agent.engine.describe(),
                                             "prompt_format": agent.prompt_format, **_note(agent), "task": task,
                                             "seed": sampling.seed, "temperature": sampling.temperature,
                                             "top_p": sampling.top_p})


def _note(agent) -> dict:
    """``prompt_format_note`` for the trace summary, when the default format fell back to completion."""
    return {} if agent.prompt_format_note is None else {"prompt_format_note": agent.prompt_format_note}


class StreamPrinter:
    """Prints segments as they are produced: tags coloured, environment segments marked."""

    def __call__(self, kind: str, payload) -> None:
        if kind == "segment_start":
            colour = "cyan" if payload.by == "model" else "yellow"
            mark = "" if payload.by == "model" else "⟵ "
            typer.echo(styled(f"{mark}{payload.tag}", colour), nl=False)
        elif kind == "text":
            typer.echo(payload, nl=False)
        elif kind == "end_of_input":  # the tag of a user turn that never came
            typer.echo(" (end of input)")


def _print_summary(summary: dict, path: Path) -> None:
    verdict = summary["verdict"]
    word = styled("satisfied" if verdict["satisfied"] else "NOT satisfied",
                  "green" if verdict["satisfied"] else "red")
    typer.echo(f"\n{word}: {summary['segments']} segments, {summary['model_tokens']} model tokens, "
               f"{summary['forward_passes']} forward passes, {summary['seconds']:.1f} s; trace: {path}",
               err=True)

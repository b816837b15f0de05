"""The ``ltlagent`` command line: compile | check | verify | show.

Bad input prints ``file:line:col: message``, the source line and a caret, and exits 1; usage errors exit 2.
Nothing here imports torch: the runtime's commands import it lazily.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Optional

import typer

from .compiler.errors import SpecError
from .compiler.source import printable

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None,
                  help="Compile LTLf agent specs into automata, check them, verify prompts against them, run and "
                       "evaluate the agents on a local model.")

SpecArg = typer.Argument(..., help="A spec file: YAML, or the reference s-expression dialect.", show_default=False,
                         metavar="SPEC")


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"ltlagent {version('ltlagent')}")
        except PackageNotFoundError:  # running from a source tree that is not installed
            typer.echo("ltlagent (not installed)")
        raise typer.Exit()


@app.callback()
def _main(show_version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                            help="Print the version and exit.")):
    """Compile LTLf agent specs into automata, check them, verify prompts against them, run and evaluate
    the agents on a local model."""


class Failed(Exception):
    """Ends a command with exit code 1 after its output was printed."""


def _echo(text: str = "", err: bool = False) -> None:
    typer.echo(text, err=err)


def styled(text: str, colour: str) -> str:
    """Bold coloured text, unless NO_COLOR is set (colour is dropped anyway when not on a terminal)."""
    return text if os.environ.get("NO_COLOR") else typer.style(text, fg=colour, bold=True)


def _style(level: str) -> str:
    return styled(f"{level:>7}", {"ok": "green", "warning": "yellow", "error": "red"}[level])


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _load(path: Path):
    from .compiler.api import load

    return load(path)


@app.command("compile", short_help="Write the minimal automaton as a JSON artifact.")
def compile_cmd(spec: Path = SpecArg,
                output: Optional[Path] = typer.Option(None, "-o", "--output",
                                                      help="Write the JSON artifact here (default: stdout).")):
    """Compile a spec to its minimal automaton and write the versioned JSON artifact."""
    from .compiler.api import compile as compile_spec

    started = time.perf_counter()
    compiled = compile_spec(_load(spec))
    elapsed = (time.perf_counter() - started) * 1000
    summary = (f"{spec}: {_count(len(compiled.automaton.delta), 'state')}, "
               f"{_count(len(compiled.alphabet), 'letter')}, {_count(len(compiled.spec.behavior), 'rule')} "
               f"in {elapsed:.1f} ms")
    if output is None:
        _echo(compiled.to_json())
        _echo(summary, err=True)
    else:
        compiled.save(output)
        _echo(f"{summary} -> {output}")


@app.command(short_help="Prove the spec sound: satisfiable, live, finishable.")
def check(spec: Path = SpecArg):
    """Is the spec satisfiable, is every segment reachable, can runs finish within the limits, and can the
    agent finish whatever the environment does? Exit 1 on any error."""
    from .compiler.analysis import analyse
    from .compiler.api import compile as compile_spec
    from .compiler.tools import check_runnable

    loaded = _load(spec)
    check_runnable(loaded)
    compiled = compile_spec(loaded)
    findings = analyse(compiled)
    _echo(f"{spec}: {compiled.spec.name}, {_count(len(compiled.automaton.delta), 'state')} over "
          f"{_count(len(compiled.alphabet), 'letter')}")
    for finding in findings:  # rule texts and option names may hold control characters: shown escaped
        _echo(f"{_style(finding.level)}  {finding.check}: {printable(finding.message)}")
        for line in finding.detail:
            _echo(f"           {printable(line)}")
    if any(f.level == "error" for f in findings):
        raise Failed()


@app.command(short_help="Check few-shot examples against the spec.")
def verify(spec: Path = SpecArg,
           prompts: Optional[list[Path]] = typer.Argument(
               None, help="Prompt files or folders: text with examples separated by '---' lines, or .json / .py "
                          "files holding a literal list of example strings (default: the spec's prompt.examples).")):
    """Check few-shot examples against the spec; report each example's first violating segment and a
    summary line per file. Exit 1 on any violation."""
    from .compiler.api import compile as compile_spec
    from .compiler.verify import load_examples, prompt_files

    compiled = compile_spec(_load(spec))
    if not prompts:
        examples = [(e.text, e.where) for e in compiled.spec.prompt.examples]
        ok = _verify_examples(compiled, str(spec), examples)
    else:
        files = [f for p in prompts for f in prompt_files(p)]
        if not files:
            _echo(f"{', '.join(map(str, prompts))}: no prompt files", err=True)
            raise Failed()
        ok = all([_verify_examples(compiled, str(f), load_examples(f)) for f in files])
    if not ok:
        raise Failed()


def _verify_examples(compiled, name: str, examples) -> bool:
    """Report every example of one file and its summary line; True when all are ok."""
    from .compiler.verify import check_example

    if not examples:
        _echo(f"{name}: no examples to verify", err=True)
        return False
    results = [check_example(compiled, text, where, i + 1) for i, (text, where) in enumerate(examples)]
    for result in results:
        _report_example(result)
    bad = sum(not r.ok for r in results)
    _echo(f"{name}: {len(results) - bad} of {len(results)} example(s) ok")
    return bad == 0


def _report_example(result) -> None:
    if result.ok:
        _echo(f"{_style('ok')}  example {result.index}: {len(result.trace)} segments")
        return
    v = result.violation
    _echo(f"{_style('error')}  example {result.index}: {v.span.location()}: {printable(v.message)}")
    _echo(v.span.caret())
    if v.allowed:
        _echo(f"    allowed here: {printable(', '.join(v.allowed))}")


@app.command(short_help="Draw the automaton (dot, mermaid, svg).")
def show(spec: Path = SpecArg,
         fmt: str = typer.Option("dot", "--format", "-f", help="dot, mermaid or svg."),
         output: Optional[Path] = typer.Option(None, "-o", "--output", help="Write here (default: stdout).")):
    """Draw the spec's automaton: segment names on the edges, double circles accept."""
    from .compiler import draw
    from .compiler.api import compile as compile_spec

    if fmt not in ("dot", "mermaid", "svg"):
        raise typer.BadParameter(f"unknown format {fmt!r}; use dot, mermaid or svg", param_hint="--format")
    compiled = compile_spec(_load(spec))
    aut = compiled.automaton
    if fmt == "svg":
        try:
            text = draw.to_svg(aut, compiled.spec.name)
        except (FileNotFoundError, RuntimeError) as err:
            _echo(f"error: {err}", err=True)
            raise Failed() from None
    else:
        text = draw.to_dot(aut, compiled.spec.name) if fmt == "dot" else draw.to_mermaid(aut)
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        _echo(f"wrote {output}", err=True)


ENGINE_HELP = ("auto (vllm with --url; else llama.cpp for GGUF models when installed, else transformers), "
               "transformers, llamacpp, vllm (a vLLM server decodes under each step's constraint) or openai "
               "(any OpenAI-compatible completions server: answers checked, resampled, completed).")
URL_HELP = ("Serving engines: the server's OpenAI API base, http://HOST:PORT/v1; give it several times to "
            "spread episodes over replicas.")
MODEL_NAME_HELP = "Serving engines: the served model's name (default: the one the server lists)."
TIMEOUT_HELP = "Serving engines: seconds to wait for one answer."
RETRIES_HELP = "openai engine: resamples of an answer that breaks the spec, before it is completed."
DEVICE_HELP = "transformers engine: auto (the GPU if there is one), cpu, cuda or mps."
DTYPE_HELP = "transformers engine: auto (bfloat16 on a GPU, float32 on the CPU), float32, bfloat16 or float16."


PROMPT_FORMAT_HELP = ("completion (no template), chat (the model's chat template; same as chat-system), "
                      "chat-system (instructions and examples in the system turn) or chat-turns (examples as "
                      "prior user/assistant turns); overrides the spec's prompt.format. Default: the spec's, "
                      "else chat (completion on a model without a chat template).")


def _prompt_format(value: Optional[str]) -> Optional[str]:
    """The --prompt-format of run / eval (None: the spec's); an unknown one is a usage error (exit 2)."""
    from .compiler.ast import PROMPT_FORMATS

    if value is not None and value not in PROMPT_FORMATS:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(PROMPT_FORMATS)}", param_hint="--prompt-format")
    return value


# The engine options of run and eval, declared once (typer reads each declaration per command).
ENGINE_OPTION = typer.Option("auto", "--engine", help=ENGINE_HELP)
DEVICE_OPTION = typer.Option("auto", "--device", help=DEVICE_HELP)
DTYPE_OPTION = typer.Option("auto", "--dtype", help=DTYPE_HELP)
URL_OPTION = typer.Option(None, "--url", help=URL_HELP)
MODEL_NAME_OPTION = typer.Option(None, "--model-name", help=MODEL_NAME_HELP)
TIMEOUT_OPTION = typer.Option(120.0, "--timeout", min=0.1, help=TIMEOUT_HELP)
RETRIES_OPTION = typer.Option(3, "--retries", min=0, help=RETRIES_HELP)
PROMPT_FORMAT_OPTION = typer.Option(None, "--prompt-format", help=PROMPT_FORMAT_HELP, callback=_prompt_format)


def _engine_options(engine: str, model: Optional[str], device: str, dtype: str, threads: Optional[int],
                    server: dict):
    """The engine options of run / eval (``server``: urls, model_name, timeout, retries); a bad value is a
    usage error (exit 2)."""
    from .runtime.engines.base import DEVICES, DTYPES, ENGINES, SERVING, EngineOptions

    for value, allowed, flag in ((engine, ENGINES, "--engine"), (device, DEVICES, "--device"),
                                 (dtype, DTYPES, "--dtype")):
        if value not in allowed:
            raise typer.BadParameter(f"{value!r} is not one of {', '.join(allowed)}", param_hint=flag)
    urls = tuple(server.get("urls") or ())
    if engine in SERVING and not urls:
        raise typer.BadParameter(f"--engine {engine} needs the server's address, e.g. --url "
                                 "http://127.0.0.1:8011/v1 (scripts/vllm_server.sh start)", param_hint="--url")
    if urls and engine not in SERVING + ("auto",):
        raise typer.BadParameter(f"--url is for the serving engines ({', '.join(SERVING)}), not --engine {engine}",
                                 param_hint="--url")
    for url in urls:
        if not url.startswith(("http://", "https://")):
            raise typer.BadParameter(f"{url!r} is not an http(s) URL", param_hint="--url")
    return EngineOptions(engine=engine, model=model, device=device, dtype=dtype, threads=threads, urls=urls,
                         model_name=server.get("model_name"), timeout=server.get("timeout", 120.0),
                         retries=server.get("retries", 3))


@app.command("run", short_help="Run the agent on a model.")
def run_cmd(spec: Path = SpecArg,
        task: Optional[str] = typer.Option(None, "--task", "-t", help="The task: fills the spec's task segment "
                                           "(required when the spec has one)."),
        docs: Optional[Path] = typer.Option(None, "--docs", help="JSONL document store for search / lookup."),
        model: Optional[str] = typer.Option(None, "--model", "-m",
                                            help="Local HF model dir, a .gguf file, or a cached hub id "
                                                 "(default: the embedded SmolLM2-135M-Instruct)."),
        temperature: float = typer.Option(0.0, "--temperature", min=0.0, help="0 = greedy."),
        top_p: float = typer.Option(1.0, "--top-p", min=0.0, max=1.0),
        seed: int = typer.Option(0, "--seed", help="Sampling seed (runs are reproducible)."),
        prompt_file: Optional[Path] = typer.Option(None, "--prompt-file",
                                                   help="Few-shot examples: '---'-separated text, or a "
                                                        ".json / .py literal list (default: prompt.examples)."),
        trace: Optional[Path] = typer.Option(None, "--trace", help="JSONL trace file "
                                             "(default: traces/<spec>-<time>.jsonl)."),
        as_json: bool = typer.Option(False, "--json", help="Print the JSONL trace to stdout, nothing else."),
        threads: Optional[int] = typer.Option(None, "--threads", min=1, help="CPU threads for the model."),
        reference: Optional[str] = typer.Option(None, "--reference", help="The task's gold answer, for tools "
                                                "that grade answers (Reflexion's evaluator)."),
        engine: str = ENGINE_OPTION, device: str = DEVICE_OPTION, dtype: str = DTYPE_OPTION,
        url: Optional[list[str]] = URL_OPTION, model_name: Optional[str] = MODEL_NAME_OPTION,
        timeout: float = TIMEOUT_OPTION, retries: int = RETRIES_OPTION,
        prompt_format: Optional[str] = PROMPT_FORMAT_OPTION):
    """Run the spec's agent on a local model or a model server: every finished run satisfies the spec."""
    from .compiler.tools import check_runnable
    from .runner import run_command
    from .runtime.engines.base import Sampling

    loaded = _load(spec)
    needs_task = [s.name for s in loaded.segments if s.input == "task"]
    if needs_task and task is None:
        raise typer.BadParameter(f"the spec fills segment {needs_task[0]!r} with the task (input: task); give "
                                 "--task TEXT", param_hint="--task")
    check_runnable(loaded)
    engine_options = _engine_options(engine, model, device, dtype, threads,
                                     dict(urls=url, model_name=model_name, timeout=timeout, retries=retries))
    ok = run_command(spec=loaded, spec_path=spec, task=task or "", docs=docs, engine=engine_options,
                     sampling=Sampling(temperature, top_p, seed), prompt_file=prompt_file, trace=trace,
                     as_json=as_json, reference=reference, prompt_format=prompt_format)
    if not ok:
        raise Failed()


EVAL_HELP = """Evaluate agents on a dataset: metrics, satisfaction rate, steps, tokens, time; a summary table.

Tasks: hotpotqa (question, answer, _id, context paragraphs; EM and F1), gsm8k (question, answer ending in
'#### n', id; numeric accuracy), fever (claim, label SUPPORTS / REFUTES / NOT ENOUGH INFO, id; label
accuracy, closed-book), custom (any JSONL file: name its fields with --fields
question=FIELD,answer=FIELD[,id=FIELD][,context=FIELD]; EM and F1 unless --metric says otherwise),
retail (the tau-bench retail tasks as conversations with scripted users, --users benign | adversarial |
an adversary; --data: the tau_retail folder, by default ../shared/data/tau_retail; conformance, harm and
utility from an independent policy monitor and the database).
"""


@app.command("eval", short_help="Evaluate agents on a dataset.", help=EVAL_HELP)
def eval_cmd(specs: Optional[list[Path]] = typer.Argument(None, help="One or more spec files (each evaluated in "
                                                          "turn).", show_default=False, metavar="SPEC"),
             spec_option: Optional[list[Path]] = typer.Option(None, "--spec", help="A spec file (same as SPEC)."),
             data: Optional[Path] = typer.Option(None, "--data", help="JSONL dataset, one item per line (retail: "
                                                 "the tau_retail folder or its tasks file; optional)."),
             task: str = typer.Option(..., "--task", help="hotpotqa, gsm8k, fever, custom or retail."),
             users: str = typer.Option("benign", "--users", help="retail: benign, adversarial (task i meets "
                                       "adversary i mod 6) or one adversary's name."),
             fields: Optional[str] = typer.Option(None, "--fields", help="Which item fields hold the task text, "
                                                  "the reference answer, the id and the documents: "
                                                  "question=F,answer=F[,id=F][,context=F] (required for "
                                                  "custom; overrides a built-in task's). Without id, items "
                                                  "are numbered by line; context is [[title, [sentence, "
                                                  "...]], ...]."),
             metric: Optional[str] = typer.Option(None, "--metric", help="em_f1, numeric, label, or "
                                                  "module:function, a function (prediction, gold) -> a number "
                                                  "or a dict of numbers, imported from PYTHONPATH (default: "
                                                  "the task's)."),
             limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Only the first N items."),
             out: Path = typer.Option(Path("results"), "--out", help="Results directory (one "
                                      "<spec>-<task>[-unconstrained].jsonl per spec), or a .jsonl file for one spec."),
             resume: bool = typer.Option(False, "--resume", help="Skip the items already in the results."),
             docs: Optional[Path] = typer.Option(None, "--docs", help="One global document store (default: "
                                                 "each item's own documents, the context field)."),
             model: Optional[str] = typer.Option(None, "--model", "-m", help="As for run."),
             temperature: float = typer.Option(0.0, "--temperature", min=0.0),
             seed: int = typer.Option(0, "--seed", help="Sampling seed (sample k of an item uses seed + k)."),
             samples: int = typer.Option(1, "--samples", min=1, help="Self-consistency: K sampled episodes per "
                                         "item (needs --temperature above 0), scored on the majority answer."),
             concurrency: int = typer.Option(1, "--concurrency", min=1, help="Episodes in flight at once; above 1 "
                                             "needs a serving engine (--engine vllm or openai)."),
             threads: Optional[int] = typer.Option(None, "--threads", min=1),
             unconstrained: bool = typer.Option(False, "--unconstrained", help="The ablation: free generation "
                                                "with stop sequences at env tags, parsed post hoc."),
             plot: Optional[Path] = typer.Option(None, "--plot", help="Also draw the summary as a chart: a .png, "
                                                 ".pdf or .svg file (needs matplotlib)."),
             engine: str = ENGINE_OPTION, device: str = DEVICE_OPTION, dtype: str = DTYPE_OPTION,
             url: Optional[list[str]] = URL_OPTION, model_name: Optional[str] = MODEL_NAME_OPTION,
             timeout: float = TIMEOUT_OPTION, retries: int = RETRIES_OPTION,
             prompt_format: Optional[str] = PROMPT_FORMAT_OPTION):
    from .evaluator import EvalOptions, check_usage, eval_command
    from .runtime.eval.report import PLOT_FORMATS

    specs = list(specs or []) + list(spec_option or [])
    if not specs:
        raise typer.BadParameter("give a spec file (SPEC or --spec FILE)", param_hint="SPEC")
    if plot is not None and plot.suffix.lower() not in PLOT_FORMATS:
        raise typer.BadParameter(f"{plot}: --plot draws {', '.join(PLOT_FORMATS)} files", param_hint="--plot")
    if len(specs) > 1 and out.suffix == ".jsonl":
        raise typer.BadParameter("several specs need a results directory, not a .jsonl file", param_hint="--out")
    engine_options = _engine_options(engine, model, device, dtype, threads,
                                     dict(urls=url, model_name=model_name, timeout=timeout, retries=retries))
    options = EvalOptions(data=data, task=task, limit=limit, out=out, resume=resume, docs=docs,
                          engine=engine_options, temperature=temperature, seed=seed, unconstrained=unconstrained,
                          plot=plot, fields=fields, metric=metric, concurrency=concurrency, samples=samples,
                          prompt_format=prompt_format, users=users)
    check_usage(options)
    from .compiler.tools import check_runnable

    loaded = [_load(spec) for spec in specs]
    for one in loaded:
        check_runnable(one)
    eval_command(loaded, options)


def main(argv: Optional[list[str]] = None) -> int:
    """Entry point of the console script; returns the exit code (0 ok, 1 bad input, 2 usage)."""
    _tolerant_streams()
    try:
        app(args=argv, prog_name="ltlagent")
    except SystemExit as done:  # click's own exit, usage errors included (code 2)
        return done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    except SpecError as err:
        _echo(err.render(), err=True)
    except Failed:
        pass
    except OSError as err:
        _echo(f"{getattr(err, 'filename', None) or 'error'}: {err.strerror or err}", err=True)
    except Exception as err:
        if os.environ.get("LTLAGENT_DEBUG"):
            raise
        _echo(f"internal error: {type(err).__name__}: {err} (set LTLAGENT_DEBUG=1 for a traceback; "
              "please report it)", err=True)
        return 3
    return 1


def _tolerant_streams() -> None:
    """Text that the terminal's encoding cannot hold is written as backslash escapes, never an error."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()

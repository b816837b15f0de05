"""``ltlagent eval``: one constrained run per dataset item, results appended as items finish (``--resume``
skips finished ones), a running progress line, and a summary table. Imports the runtime only when called."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

import typer

from .compiler.errors import SpecError


def eval_command(spec, data: Path, task: str, limit: Optional[int], out: Path, resume: bool,
                 docs: Optional[Path], model: Optional[str], temperature: float, seed: int,
                 threads: Optional[int]) -> dict:
    """Evaluate ``spec`` on ``data``; returns the mean metrics. Raises SpecError for bad input."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from .compiler.api import compile as compile_spec
    from .runtime.eval.datasets import DatasetError, load_items
    from .runtime.eval.loop import evaluate

    compiled = compile_spec(spec)
    try:
        items = load_items(data, task, limit)
    except DatasetError as err:
        raise SpecError(str(err)) from None
    except OSError as err:
        raise SpecError(f"{err.filename or data}: {err.strerror or err}") from None
    agent, global_docs = _prepare(compiled, docs, model, threads)
    run_item = _item_runner(agent, compiled, global_docs, temperature, seed)
    total = len(items)
    tally = evaluate(items, task, run_item, out, resume, on_result=lambda r, t: _progress(r, t, total))
    means = tally.means()
    _summary(compiled.spec.name, task, tally.count, means, out)
    return means


def _prepare(compiled, docs, model, threads):
    from .runtime.agent import Agent
    from .runtime.constraints import ConstraintError
    from .runtime.models import ModelError
    from .runtime.tools import DocStore, DocStoreError

    try:
        store = DocStore.from_jsonl(docs) if docs is not None else None
        agent = Agent.load(compiled, model, threads=threads, progress=lambda m: typer.echo(m, err=True))
    except (ModelError, DocStoreError, ConstraintError) as err:
        raise SpecError(str(err)) from None
    return agent, store


def _item_runner(agent, compiled, global_docs, temperature: float, seed: int):
    from .runtime.eval.loop import final_answer
    from .runtime.tools import DocStore, ToolBox
    from .runtime.trace import verdict

    def run_item(item) -> dict:
        docs = global_docs or (DocStore.from_context(item.context) if item.context else None)
        toolbox = ToolBox.for_spec(compiled.spec, docs=docs, builtins=("search", "lookup", "calculator"))
        result = agent.run(item.question, toolbox, temperature=temperature, seed=seed)
        return {"prediction": final_answer(result.segments), "satisfied": verdict(compiled, result)["satisfied"],
                "segments": len(result.segments), "model_tokens": result.model_tokens,
                "forward_passes": result.forward_passes, "seconds": round(result.seconds, 3),
                "letters": result.letters}
    return run_item


def _progress(result: dict, tally, total: int) -> None:
    means = tally.means()
    score = " ".join(f"{k}={means[k]:.3f}" for k in ("em", "f1", "accuracy") if k in means)
    typer.echo(f"[{tally.count}/{total}] {score} satisfied={means.get('satisfied', 0):.0%} "
               f"{result.get('seconds', 0):.1f}s  {result['id']}", err=True)


def _summary(name: str, task: str, count: int, means: dict, out: Path) -> None:
    rows = [("items", str(count))] + [(k, f"{v:.3f}") for k, v in means.items()]
    width = max(len(k) for k, _ in rows)
    sys.stdout.write(f"{name} on {task} ({out})\n")
    for key, value in rows:
        sys.stdout.write(f"  {key:<{width}}  {value}\n")

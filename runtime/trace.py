"""Run traces: one JSON object per line, written as segments finish, closed by a verdict re-checked on
the whole trace (the automaton, every LTLf rule by the reference evaluator, every pattern, and the content
constraint of every model segment)."""
from __future__ import annotations

import json
from dataclasses import asdict
from functools import lru_cache
from typing import IO, Optional

from ltlagent.compiler.semantics import holds
from ltlagent.compiler.verify import content_problem


@lru_cache(maxsize=128)
def _pattern_automaton(node, alphabet: tuple):
    """A pattern rule's automaton, built once per rule (``eval`` judges many runs of one spec)."""
    from ltlagent.compiler.patterns import pattern_automaton

    return pattern_automaton(node, alphabet)


def verdict(compiled, result) -> dict:
    """Independent re-check of a finished run: ``satisfied`` only if every check passes."""
    letters = result.letters
    spec = compiled.spec
    rules = []
    steps = None
    for rule in spec.behavior:
        if rule.kind == "data":
            if steps is None:
                from .policy import history

                steps = history(spec, result.segments)
            ok = holds(rule.node, steps)
        elif rule.kind == "ltl":
            ok = holds(rule.node, letters)
        else:
            ok = _pattern_automaton(rule.node, tuple(spec.alphabet)).accepts(letters)
        rules.append({"rule": rule.text, "holds": ok})
    content = [{"segment": r.name, "index": i, "problem": p} for i, r in enumerate(result.segments)
               if r.by == "model" and (p := content_problem(spec.segment(r.name), r.text, spec))]
    within = len(letters) <= spec.limits.max_segments and result.model_tokens <= spec.limits.max_tokens
    accepted = compiled.automaton.accepts(letters)
    return {"satisfied": accepted and all(r["holds"] for r in rules) and not content and within,
            "automaton_accepts": accepted, "rules": rules, "content_problems": content, "within_limits": within}


class TraceWriter:
    """Appends records to a JSONL stream, flushing each line (nothing is lost if the run dies)."""

    def __init__(self, stream: Optional[IO[str]]):
        self.stream = stream

    def write(self, record: dict) -> None:
        if self.stream is not None:
            self.stream.write(json.dumps(record, ensure_ascii=False) + "\n")
            self.stream.flush()

    def segment(self, index: int, record) -> None:
        self.write({"type": "segment", "index": index, **asdict(record)})

    def summary(self, compiled, result, extra: Optional[dict] = None) -> dict:
        summary = {"type": "summary", "spec": compiled.spec.name, "verdict": verdict(compiled, result),
                   "segments": len(result.segments), "stopped_by": result.stopped_by,
                   "final_state": result.final_state, "model_tokens": result.model_tokens,
                   "forward_passes": result.forward_passes, "tokens_fed": result.tokens_fed,
                   "seconds": round(result.seconds, 4), **(extra or {})}
        if getattr(result, "engine", None):
            summary["engine_counters"] = result.engine  # a serving engine's requests, prompt / cached tokens
        self.write(summary)
        return summary

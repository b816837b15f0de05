"""CompiledSpec <-> versioned JSON artifact (plain JSON, never pickle)."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Optional

from .ast import Content, Example, Limits, Prompt, Rule, Segment, Spec, Tool, ToolCall
from .automaton import Automaton
from .errors import ArtifactError
from .ltl import parse_formula
from .patterns import parse_pattern
from .source import Source

FORMAT = "ltlagent.compiled-spec"
VERSION = 1


@dataclass(frozen=True)
class CompiledSpec:
    """A spec with the minimal DFA of its whole behaviour (the conjunction of all rules) and, per rule,
    the state count of its own minimal DFA (of its intersection with the rules built before it, for a
    rule too large alone: see rules.py)."""

    spec: Spec
    automaton: Automaton
    part_sizes: tuple[int, ...] = ()

    @property
    def alphabet(self) -> tuple[str, ...]:
        return self.automaton.alphabet

    def to_json(self) -> str:
        """The artifact as JSON text (deterministic: same spec, same bytes)."""
        return json.dumps(to_dict(self), indent=1, sort_keys=True, ensure_ascii=False)

    def save(self, path) -> None:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(self.to_json() + "\n")

    @staticmethod
    def from_json(text: str, name: str = "<artifact>") -> "CompiledSpec":
        """Read an artifact. Raises ArtifactError for malformed JSON or another format/version."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ArtifactError(f"{name}: not JSON ({err})") from None
        return from_dict(data, name)


def source_digest(spec: Spec) -> Optional[str]:
    return hashlib.sha256(spec.source.text.encode()).hexdigest() if spec.source is not None else None


def to_dict(compiled: CompiledSpec) -> dict:
    spec, aut = compiled.spec, compiled.automaton
    return {
        "format": FORMAT, "version": VERSION,
        "spec": {
            "name": spec.name, "description": spec.description, "dialect": spec.dialect,
            "source": None if spec.source is None else
            {"name": spec.source.name, "sha256": source_digest(spec), "text": spec.source.text},
            "segments": [_segment_dict(s) for s in spec.segments],
            "tools": [{"name": t.name, "kind": t.kind, "target": t.target, "timeout": t.timeout,
                       "description": t.description, "parameters": t.parameters, "returns": t.returns}
                      for t in spec.tools],
            "behavior": [{"kind": r.kind, "text": r.text, "why": r.why} for r in spec.behavior],
            "limits": dataclasses.asdict(spec.limits),
            "prompt": {"instructions": spec.prompt.instructions,
                       "examples": [e.text for e in spec.prompt.examples], "format": spec.prompt.format},
        },
        "alphabet": list(aut.alphabet),
        "automaton": {"initial": aut.initial, "accepting": sorted(aut.accepting),
                      "delta": [list(row) for row in aut.delta]},
        "part_sizes": list(compiled.part_sizes),
    }


def _segment_dict(s: Segment) -> dict:
    content = {"kind": s.content.kind, "max_tokens": s.content.max_tokens,
               "value": list(s.content.value) if isinstance(s.content.value, tuple) else s.content.value}
    return {"name": s.name, "tag": s.tag, "by": s.by, "content": content, "end": s.end, "input": s.input,
            "tool": dataclasses.asdict(s.tool) if s.tool else None, "description": s.description}


def from_dict(data: dict, name: str = "<artifact>") -> CompiledSpec:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ArtifactError(f"{name}: not an ltlagent compiled spec (format {FORMAT!r})")
    if data.get("version") != VERSION:
        raise ArtifactError(f"{name}: artifact version {data.get('version')!r}; this ltlagent reads version "
                            f"{VERSION} (recompile the spec)")
    try:
        spec = _spec(data["spec"])
        aut = data["automaton"]
        automaton = Automaton(tuple(data["alphabet"]), aut["initial"], frozenset(aut["accepting"]),
                              tuple(tuple(row) for row in aut["delta"]))
        return CompiledSpec(spec, automaton, tuple(data.get("part_sizes", ())))
    except (KeyError, TypeError, ValueError) as err:
        raise ArtifactError(f"{name}: malformed artifact ({type(err).__name__}: {err})") from None


def _spec(d: dict) -> Spec:
    segments = tuple(_segment(s) for s in d["segments"])
    tools = tuple(Tool(t["name"], t["kind"], t["target"], t["timeout"], t.get("description"), t.get("parameters"),
                       t.get("returns")) for t in d["tools"])
    rules = tuple(Rule(r["kind"], r["text"], parse_formula(r["text"]) if r["kind"] in ("ltl", "data")
                       else parse_pattern(r["text"]), r.get("why")) for r in d["behavior"])
    prompt = Prompt(d["prompt"]["instructions"], tuple(Example(e) for e in d["prompt"]["examples"]),
                    d["prompt"].get("format"))
    source = Source(d["source"]["name"], d["source"]["text"]) if d.get("source") else None
    from .checks import resolve_data_rules

    return resolve_data_rules(Spec(d["name"], segments, rules, tools, Limits(**d["limits"]), prompt,
                                   d.get("description"), d.get("dialect", "yaml"), source))


def _segment(s: dict) -> Segment:
    c = s["content"]
    value = tuple(c["value"]) if isinstance(c["value"], list) else c["value"]
    tool = ToolCall(**s["tool"]) if s.get("tool") else None
    return Segment(s["name"], s["tag"], s["by"], Content(c["kind"], value, c["max_tokens"]), s["end"],
                   s.get("input"), tool, s.get("description"))

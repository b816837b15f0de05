"""Spec loading: YAML text -> positions -> pydantic validation -> IR (ast.Spec), every error located."""
from __future__ import annotations

import json

import pydantic

from .ast import Content, Example, Limits, Prompt, Rule, Segment, Spec, Tool, ToolCall
from .checks import check_content, check_decodable, check_spec, resolve_data_rules
from .errors import SpecSemanticError
from .data import is_data_formula
from .ltl import parse_formula
from .patterns import parse_pattern
from .schema import BUILTIN_TOOLS, CONTENT_KEYS, SegmentModel, SpecModel
from .source import Source, embed
from .yamlpos import Located, load_yaml



def load_yaml_spec(source: Source) -> Spec:
    """A validated Spec from YAML text. Raises SpecSyntaxError / SpecSemanticError, located."""
    located = load_yaml(source)
    if not isinstance(located.data, dict):
        raise SpecSemanticError("a spec is a YAML mapping with at least 'name' and 'segments'",
                                located.value_span(()))
    try:
        model = SpecModel.model_validate(located.data)
    except pydantic.ValidationError as err:
        raise pydantic_error(err, located) from None
    return build_spec(model, located)


def pydantic_error(err: pydantic.ValidationError, located: Located) -> SpecSemanticError:
    """The first (in source order) validation error as a located SpecSemanticError."""
    errors = sorted(err.errors(), key=lambda e: e["type"].endswith("_type"))  # stable: type errors last
    problems = [_locate(e, located) for e in errors]
    message, span = min(problems, key=lambda p: p[1].start)
    extra = len({p[1].start for p in problems}) - 1  # union members fail at the same place
    return SpecSemanticError(message, span, f"{extra} more problem(s) after this one" if extra > 0 else None)


def _data_path(loc: tuple, data) -> tuple:
    """The part of a pydantic error location that walks the data (drops union-member names)."""
    path, node = [], data
    for part in loc:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            continue
        path.append(part)
    return tuple(path)


def _locate(error: dict, located: Located):
    loc = tuple(error["loc"])
    path = _data_path(loc, located.data)
    where = "/".join(str(p) for p in path) or "spec"
    kind, last = error["type"], (loc[-1] if loc else None)
    if kind == "extra_forbidden":
        return f"unknown key {last!r} in {'/'.join(str(p) for p in path[:-1]) or 'spec'}", located.key_span(path)
    if kind == "missing":
        return f"missing required key {last!r} in {where}", located.key_span(path)
    message = error["msg"].removeprefix("Value error, ")
    if kind.endswith("_type") or kind in ("literal_error", "union_tag_invalid", "model_type"):
        message = f"{message} (got {type(error.get('input')).__name__} {error.get('input')!r})"
    return f"{where}: {message}", located.value_span(path)


def build_spec(model: SpecModel, located: Located) -> Spec:
    """The IR of a validated spec model, with spans; runs the semantic checks."""
    segments = tuple(_segment(name, seg, located) for name, seg in model.segments.items())
    tools = tuple(_tool(name, t, located) for name, t in model.tools.items())
    behavior = tuple(_rule(item, i, located) for i, item in enumerate(model.behavior))
    examples = tuple(Example(text, _embedded(located, ("prompt", "examples", i), text))
                     for i, text in enumerate(model.prompt.examples))
    spec = Spec(model.name, segments, behavior, tools,
                Limits(model.limits.max_segments, model.limits.max_tokens, model.limits.max_states),
                Prompt(model.prompt.instructions, examples, model.prompt.format), model.description, "yaml", located.source)
    check_spec(spec)
    return resolve_data_rules(spec)


def _embedded(located: Located, path: tuple, text: str):
    span = located.value_span(path)
    return embed(located.source, text, span.start, span.end)


def _segment(name: str, seg: SegmentModel, located: Located) -> Segment:
    path = ("segments", name)
    tool = seg.tool
    if isinstance(tool, str):
        tool = ToolCall(name=tool)
    elif tool is not None:
        tool = ToolCall(tool.name, tool.name_from, tool.input_from)
    _check_segment_keys(seg, located, path)
    content = _content(seg)
    if content.kind != "text":
        check_content(content, _content_locator(located, path + (content.kind,), content))
    if content.kind == "call" and seg.by != "model":
        raise SpecSemanticError("a call segment is written by the model (its tool's result is an env segment "
                                "with 'tool: {name_from: ...}')", located.key_span(path + ("call",)))
    if seg.by == "model" and content.kind != "call":
        key = content.kind if content.kind != "text" else "end"
        inside = _content_locator(located, path + (content.kind,), content) if content.kind == "grammar" else None
        check_decodable(content, seg.end, lambda sub=None: inside(sub) if sub is not None else located.key_span(path + (key,)))
    return Segment(name, seg.tag, seg.by, content, seg.end, seg.input, tool, seg.description,
                   located.key_span(path))


def _check_segment_keys(seg: SegmentModel, located: Located, path: tuple) -> None:
    """One content constraint at most; ``input`` / ``tool`` only on env segments, not both. Errors
    point at the offending key."""
    given = [k for k in CONTENT_KEYS if k in located.data["segments"][path[-1]]]
    if len(given) > 1:
        raise SpecSemanticError(f"a segment has one content constraint, got {' and '.join(given)}",
                                located.key_span(path + (given[1],)))
    keys = [k for k in ("input", "tool") if getattr(seg, k) is not None]
    if keys and seg.by == "model":
        raise SpecSemanticError(f"only env segments take {keys[0]!r} (add 'by: env')", located.key_span(path + (keys[0],)))
    if len(keys) == 2:
        raise SpecSemanticError("an env segment takes 'input' or 'tool', not both", located.key_span(path + ("tool",)))


def _content_locator(located: Located, path: tuple, content: Content):
    """Span finder for content errors: a character offset into a regex or grammar, or a key path
    inside a JSON Schema."""
    where = _embedded(located, path, content.value) if content.kind in ("regex", "grammar") else None

    def locate(sub=None):
        if where is not None and isinstance(sub, int):
            return where.span(sub, sub + 1)
        return located.value_span(path + tuple(sub or ()))
    return locate


def _content(seg: SegmentModel) -> Content:
    if seg.choice is not None:
        return Content("choice", tuple(seg.choice), seg.max_tokens)
    if seg.regex is not None:
        return Content("regex", seg.regex, seg.max_tokens)
    if seg.grammar is not None:
        return Content("grammar", seg.grammar, seg.max_tokens)
    if seg.json_schema is not None:
        return Content("json", json.dumps(seg.json_schema, sort_keys=True), seg.max_tokens)
    if seg.call is not None:
        return Content("call", tuple(seg.call), seg.max_tokens)
    return Content("text", None, seg.max_tokens)


def _tool(name: str, model, located: Located) -> Tool:
    kind = next(k for k in ("builtin", "function", "entry_point") if getattr(model, k) is not None)
    schemas = [None if v is None else json.dumps(v) for v in (model.parameters, model.returns)]
    for key, text in zip(("parameters", "returns"), schemas):
        if text is not None:
            check_content(Content("json", text), _schema_locator(located, ("tools", name, key)))
    return Tool(name, kind, getattr(model, kind), model.timeout, model.description, *schemas,
                span=located.key_span(("tools", name)))


def _schema_locator(located: Located, path: tuple):
    return lambda sub=None: located.value_span(path + tuple(sub or ()))


def _rule(item, index: int, located: Located) -> Rule:
    path = ("behavior", index)
    if isinstance(item, str):
        kind, text, why = "ltl", item, None
    else:
        kind = "ltl" if hasattr(item, "ltl") else "pattern"
        text, why = getattr(item, kind), item.why
        path = path + (kind,)
    where = _embedded(located, path, text)
    node = parse_formula(text, where) if kind == "ltl" else parse_pattern(text, where)
    if kind == "ltl" and is_data_formula(node):
        kind = "data"  # resolved against the tools once the spec is built: checks.resolve_data_rules
    return Rule(kind, text, node, why, located.value_span(path))


__all__ = ["load_yaml_spec", "BUILTIN_TOOLS"]

"""Semantic checks: every name a spec uses must be declared. Errors carry spans."""
from __future__ import annotations

import re
from typing import Optional, Sequence

from .ast import Formula, Prop, formula_props, letter_segment, pattern_props
from .errors import SpecSemanticError


def check_prop(prop: Prop, alphabet: Sequence[str]) -> None:
    """Raise SpecSemanticError unless ``prop`` names a segment (or a segment's option) of the alphabet."""
    segments = {letter_segment(a) for a in alphabet}
    if prop.segment not in segments:
        raise SpecSemanticError(f"undeclared proposition {prop.segment!r}", prop.span,
                                _suggest(prop.segment, segments, "declared segments"))
    if prop.option is not None and f"{prop.segment}.{prop.option}" not in alphabet:
        options = [a.split(".", 1)[1] for a in alphabet if "." in a and letter_segment(a) == prop.segment]
        what = f"options of {prop.segment!r}" if options else None
        message = (f"{prop.segment!r} has no option {prop.option!r}" if options
                   else f"{prop.segment!r} is not a choice segment, so it has no option {prop.option!r}")
        raise SpecSemanticError(message, prop.span, _suggest(prop.option, options, what) if what else None)


def check_formula_props(formula: Formula, alphabet: Sequence[str]) -> None:
    """Check every proposition of a formula against the alphabet (first offender raises)."""
    for prop in formula_props(formula):
        check_prop(prop, alphabet)


def _suggest(name: str, known, what: str) -> str:
    import difflib

    close = difflib.get_close_matches(name, sorted(known), n=1)
    listing = ", ".join(sorted(known))
    return f"did you mean {close[0]!r}? ({what}: {listing})" if close else f"{what}: {listing}"


def check_content(content, locate) -> None:
    """Raise SpecSemanticError unless a segment's content constraint is well-formed: distinct choice
    options, a compilable regex, a Lark grammar with a ``start`` rule, a valid JSON Schema.
    ``locate(sub)`` gives the span of an option index / character offset / schema key path."""
    check = {"choice": _check_options, "regex": _check_regex, "grammar": _check_grammar,
             "json": _check_json_schema, "call": _check_options}[content.kind]
    check(content.value, locate)


def _check_options(options, locate) -> None:
    seen = set()
    for i, option in enumerate(options):
        if option in seen:
            raise SpecSemanticError(f"duplicate choice option {option!r}", locate((i,)))
        if not option.strip():
            raise SpecSemanticError("choice options must not be blank", locate((i,)))
        seen.add(option)


def _check_regex(pattern: str, locate) -> None:
    import warnings

    try:
        with warnings.catch_warnings():  # e.g. "Possible nested set": a FutureWarning, not the user's concern
            warnings.simplefilter("ignore")
            re.compile(pattern)
    except re.error as err:
        raise SpecSemanticError(f"invalid regex: {err.msg}", locate(err.pos or 0)) from None


def _check_grammar(text: str, locate) -> None:
    import lark

    try:
        lark.Lark(text, start="start")
    except (lark.exceptions.LarkError, *_regex_errors()) as err:  # lark compiles terminals with `regex` if installed
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        no_start = "NonTerminal('start')" in first
        raise SpecSemanticError("a content grammar needs a 'start' rule" if no_start
                                else f"invalid Lark grammar: {first}", locate(),
                                "add a rule 'start: ...'" if no_start else None) from None


def _regex_errors() -> tuple:
    """The errors a terminal's pattern can raise while lark compiles it: ``re``'s, and the ``regex``
    package's when it is installed (lark then prefers it)."""
    try:
        import regex
    except ImportError:
        return (re.error,)
    return (re.error, regex.error)


def _check_json_schema(text: str, locate) -> None:
    import json

    import jsonschema

    schema = json.loads(text)
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.exceptions.SchemaError as err:
        raise SpecSemanticError(f"invalid JSON Schema: {err.message}", locate(tuple(err.path))) from None


def check_decodable(content, end: str, locate) -> None:
    """Raise SpecSemanticError unless the runtime can decode a model segment's content (regex, grammar,
    JSON Schema, or free text up to ``end``) with its regex engine (see ``content.decoding_problem``).
    Call it after ``check_content``."""
    from .content import decoding_problem

    if content.kind == "choice":
        return
    problem = decoding_problem(content.kind, content.value, end)
    if problem is not None:
        offset = None
        if content.kind == "grammar":  # a refused terminal: at its definition
            from .cfg import problem_offset

            offset = problem_offset(content.value, problem)
        raise SpecSemanticError(f"{_WHAT[content.kind]}: {problem}", locate(offset) if offset is not None else locate())


_WHAT = {"regex": "regex", "grammar": "grammar", "json": "JSON Schema", "text": "free text with this 'end'"}


NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(-[A-Za-z0-9_]+)*\Z")
KEYWORDS = frozenset({"X", "WX", "F", "G", "U", "R", "W", "true", "false", "last", "previous", "once",
                      "historically", "since", "exists", "forall", "latest", "in", "not", "null", "this"})


def check_spec(spec) -> None:
    """Raise SpecSemanticError for the first undeclared or inconsistent name in a spec: bad or duplicate
    segment names, empty or duplicate tags, unknown propositions in the behaviour, unknown tools and
    tool bindings."""
    _check_names(spec)
    _check_tags(spec)
    for rule in spec.behavior:
        if rule.kind == "data":
            continue  # resolved and checked with the tools' schemas: resolve_data_rules
        props = formula_props(rule.node) if rule.kind == "ltl" else pattern_props(rule.node)
        for prop in props:
            check_prop(prop, spec.alphabet)
    for segment in spec.segments:
        if segment.tool is not None:
            _check_tool_call(spec, segment)


def _check_names(spec) -> None:
    seen = set()
    for segment in spec.segments:
        if not NAME.match(segment.name) or segment.name in KEYWORDS:
            raise SpecSemanticError(f"segment name {segment.name!r} must be an identifier (letters, digits, _, "
                                    "inner -) and not an LTLf keyword", segment.span)
        if segment.name in seen:
            raise SpecSemanticError(f"segment {segment.name!r} is declared twice", segment.span)
        seen.add(segment.name)


def _check_tags(spec) -> None:
    seen = {}
    for segment in spec.segments:
        if not segment.tag.strip():
            raise SpecSemanticError(f"segment {segment.name!r} has an empty tag", segment.span)
        if segment.tag in seen:
            raise SpecSemanticError(f"segments {seen[segment.tag]!r} and {segment.name!r} share the tag "
                                    f"{segment.tag!r}", segment.span)
        seen[segment.tag] = segment.name


def _known_tool(spec, name: str) -> bool:
    from .schema import BUILTIN_TOOLS

    return name in BUILTIN_TOOLS or any(t.name == name for t in spec.tools)


def _check_tool_call(spec, segment) -> None:
    call, names = segment.tool, [s.name for s in spec.segments]
    declared = sorted(t.name for t in spec.tools)
    for ref in (call.name_from, call.input_from):
        if ref is not None and ref not in names:
            raise SpecSemanticError(f"segment {segment.name!r} takes its tool call from undeclared segment "
                                    f"{ref!r}", segment.span, _suggest(ref, names, "declared segments"))
    if call.name is not None and not _known_tool(spec, call.name):
        raise SpecSemanticError(f"unknown tool {call.name!r} in segment {segment.name!r}", segment.span,
                                f"declared tools: {', '.join(declared) or 'none'}")
    if call.name_from is not None:
        source = spec.segment(call.name_from)
        if source.content.kind not in ("choice", "call"):
            raise SpecSemanticError(f"'name_from: {source.name}' needs a choice or call segment (its options "
                                    "name the tools)", segment.span)
        for option in source.options:
            if not _known_tool(spec, option):
                raise SpecSemanticError(f"option {option!r} of {source.name!r} names no tool", source.span,
                                        f"declare it under 'tools' (declared: {', '.join(declared) or 'none'})")


def resolve_data_rules(spec):
    """The spec with its data rules resolved and checked (see ``data.check_data_rule``), after its call
    segments are checked (``check_calls``). Raises SpecSemanticError, located: also for a data rule an
    env step could break (the agent cannot choose env steps)."""
    from dataclasses import replace

    from .data import check_data_rule, env_breakable

    check_calls(spec)
    rules = []
    for rule in spec.behavior:
        if rule.kind == "data":
            rule = check_data_rule(rule, spec)
            letter = env_breakable(rule, spec)
            if letter is not None:
                raise SpecSemanticError(f"this rule can be false at {letter!r}, an env step the agent does not "
                                        "choose", rule.span, "guard it with the agent's steps it is about: "
                                        "G(segment.tool -> condition)")
        rules.append(rule)
    return replace(spec, behavior=tuple(rules))


def check_calls(spec) -> None:
    """Every tool a call segment may call is declared, with ``parameters``: a JSON Schema of an object
    with ``properties`` (the arguments are written in its property order). Raises SpecSemanticError."""
    import json

    declared = {t.name: t for t in spec.tools}
    for segment in spec.segments:
        if segment.content.kind != "call":
            continue
        for name in segment.options:
            tool = declared.get(name)
            if tool is None:
                raise SpecSemanticError(f"call segment {segment.name!r} calls {name!r}, which is not declared under "
                                        "'tools'", segment.span, _suggest(name, declared, "declared tools"))
            schema = json.loads(tool.parameters) if tool.parameters is not None else None
            if not (isinstance(schema, dict) and schema.get("type") == "object" and
                    isinstance(schema.get("properties", {}), dict)):
                raise SpecSemanticError(f"tool {name!r} needs 'parameters': a JSON Schema of an object (its "
                                        f"arguments), since call segment {segment.name!r} calls it", tool.span)
            problem = _argument_problem(tool)
            if problem:
                raise SpecSemanticError(f"tool {name!r}: {problem}", tool.span)


def _argument_problem(tool) -> Optional[str]:
    """Why the runtime could not write some argument of ``tool`` (or a list argument's elements), or None."""
    from .cfg import grammar_problem, piece_bnf
    from .content import ContentError, argument_schemas, value_language

    for field, sub, root in argument_schemas(tool):
        unenforced = _unenforced(sub, top=True)
        if unenforced:
            return (f"argument {field!r}: the runtime does not enforce {unenforced!r} while writing arguments "
                    "(allowed: type, properties, required, items, enum, const, anyOf, $ref, $defs, minItems, "
                    "maxItems on an argument, and pattern, minLength, maxLength, format on strings)")
        items = sub.get("items") if sub.get("type") == "array" and isinstance(sub.get("items"), dict) else None
        for schema in [sub] + ([items] if items is not None else []):
            try:
                language = value_language(schema, root)
            except ContentError as err:
                return f"argument {field!r}: {err}"
            problem = grammar_problem(piece_bnf("", [(language, "")])) if language[0] == "schema" else None
            if problem:
                return f"argument {field!r}: the runtime cannot decode its schema: {problem}"
    return None


_ENFORCED = {"type", "properties", "required", "items", "enum", "const", "anyOf", "$ref", "minItems", "title",
             "description", "$schema", "$id", "$comment", "default", "examples", "$defs", "definitions",
             "additionalProperties"}
_STRING_KEYWORDS = {"pattern", "minLength", "maxLength", "format"}


def _unenforced(schema, top: bool = False) -> Optional[str]:
    """The first keyword of an argument schema that the writer does not enforce (so a decoded call could
    break its tool's schema), or None. ``maxItems`` holds on an argument's own list only."""
    if not isinstance(schema, dict):
        return None
    allowed = _ENFORCED | ({"maxItems"} if top else set()) | (_STRING_KEYWORDS if schema.get("type") == "string" else set())
    for key, value in schema.items():
        if key not in allowed:
            return key
        if key == "additionalProperties" and value is False and not schema.get("properties"):
            return "additionalProperties: false without properties"
    subs = list((schema.get("properties") or {}).values()) + list((schema.get("$defs") or {}).values()) \
        + list((schema.get("definitions") or {}).values()) + list(schema.get("anyOf") or [])
    if isinstance(schema.get("items"), dict):
        subs.append(schema["items"])
    return next((found for sub in subs if (found := _unenforced(sub))), None)

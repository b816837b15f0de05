"""Segment content as regular expressions over characters, and whether the runtime can decode it.

A model segment is written as ``TAG`` + one space + content + ``END`` (the space is the natural start of
the first token after a tag, and the content is exactly what follows it). Lengths are never bounded in
the regex (bounded repeats blow up the token index): token budgets bound them in the decode loop instead.

A recursive grammar, and any JSON Schema the grammar translation supports, is a ``cfg.Bnf`` instead,
decoded with llguidance (``cfg.content_bnf`` says which). The runtime decodes the rest through
outlines-core's regex engine (Rust ``regex-automata``), which is not Python's ``re``: ``decoding_problem`` builds the same index over a vocabulary of the 256 single
bytes, so a spec that loads is one the runtime can decode (for regexes and grammars; JSON Schemas are
checked as far as outlines-core translates them, since their automata can take minutes to build).
"""
from __future__ import annotations

import functools
import re
from typing import Optional


class ContentError(ValueError):
    """A content constraint the runtime cannot decode under (e.g. a recursive grammar)."""


def content_regex(segment) -> str:
    """The regex of what follows a segment's tag: one space, the content, END. Raises ContentError for
    choice segments (decoded from their options) and recursive grammars."""
    kind, value, end = segment.content.kind, segment.content.value, segment.end
    if kind in ("choice", "call"):
        raise ContentError(f"{kind} segment {segment.name!r} is decoded from its options, not one regex")
    return body_regex(kind, value, end)


def body_regex(kind: str, value: Optional[str], end: str) -> str:
    """``" " + content + END`` as a regex, for content of ``kind`` (text, regex, json, grammar)."""
    if kind == "text":
        body = f"[^{_class_escape(end[0])}]*" if end else ".*"
    elif kind == "regex":
        body = f"(?:{value})"
    elif kind == "json":
        body = f"(?:{json_regex(value)})"
    else:
        body = f"(?:{grammar_regex(value)})"
    return f" {body}{re.escape(end)}"


def _class_escape(char: str) -> str:
    return "\\n" if char == "\n" else re.escape(char)


def json_regex(schema_text: str) -> str:
    """The regex outlines-core derives from a JSON Schema (compact whitespace). Raises ContentError for
    a schema outlines-core does not support."""
    from outlines_core.json_schema import build_regex_from_schema

    try:
        return build_regex_from_schema(schema_text, whitespace_pattern=r"[ ]?")
    except (ValueError, RuntimeError, TypeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ContentError(f"the runtime cannot decode this JSON Schema: {first}") from None


def grammar_regex(grammar: str) -> str:
    """The regex of a regular Lark grammar (no recursion other than the repetition Lark derives from
    ``*`` and ``+``); ``%ignore`` terminals may appear between any two terminals. Raises ContentError
    for recursive grammars."""
    import lark

    parser = lark.Lark(grammar, start="start", parser="earley", lexer="basic")
    rules: dict[str, list[list[str]]] = {}
    for rule in parser.rules:
        rules.setdefault(rule.origin.name, []).append([s.name for s in rule.expansion])
    terminals = {t.name: t.pattern.to_regexp() for t in parser.terminals}
    ignore = "|".join(f"(?:{terminals[name]})" for name in parser.ignore_tokens) if parser.ignore_tokens else ""
    sep = f"(?:{ignore})*" if ignore else ""
    return sep + _rule_regex("start", rules, terminals, sep, ()) + sep


def _rule_regex(name: str, rules, terminals, sep: str, stack: tuple) -> str:
    if name in terminals:
        return f"(?:{terminals[name]})"
    if name in stack:
        raise ContentError(f"grammar rule {name!r} is recursive; grammar segments must be regular (no "
                           "recursion other than * and +): the runtime does not decode context-free content")
    expansions = rules[name]
    base = [e for e in expansions if not e or e[0] != name]
    loops = [e[1:] for e in expansions if e and e[0] == name]
    inner = stack + (name,)
    alt = "|".join(_sequence(e, rules, terminals, sep, inner) for e in base)
    if not loops:
        return f"(?:{alt})"
    loop = "|".join(_sequence(e, rules, terminals, sep, inner) for e in loops)
    return f"(?:(?:{alt})(?:{sep}(?:{loop}))*)"


def _sequence(symbols, rules, terminals, sep: str, stack: tuple) -> str:
    return sep.join(_rule_regex(s, rules, terminals, sep, stack) for s in symbols)


def decoding_problem(kind: str, value: str, end: str) -> Optional[str]:
    """Why the runtime could not decode content of ``kind`` with this ``value`` and END, or None.
    Regexes and grammars are built into the runtime's index (over single bytes); JSON Schemas are
    translated, and every ``pattern`` in them is built."""
    try:
        if kind in ("grammar", "json"):
            from .cfg import content_bnf, grammar_problem

            bnf = content_bnf(kind, value, end)
            if bnf is not None:  # context-free: decoded with llguidance
                return grammar_problem(bnf)
        if kind == "json":
            import json

            json_regex(value)
            problems = [regex_problem(p) for p in _schema_patterns(json.loads(value))]
            return next((f"a 'pattern' in the schema: {p}" for p in problems if p), None)
        return regex_problem(body_regex(kind, value, end))
    except ContentError as err:
        return str(err)


def _schema_patterns(schema) -> list[str]:
    """Every string under a ``pattern`` key of a JSON Schema (iteratively)."""
    found, stack = [], [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            found += [v for k, v in node.items() if k == "pattern" and isinstance(v, str)]
            stack += list(node.values())
        elif isinstance(node, list):
            stack += node
    return found


@functools.lru_cache(maxsize=1024)
def regex_problem(regex: str) -> Optional[str]:
    """Why outlines-core cannot index ``regex`` (as the runtime will), or None."""
    from outlines_core import Index

    try:
        Index(regex, _byte_vocabulary())
    except (ValueError, RuntimeError) as err:
        return _explain(str(err))
    return None


@functools.lru_cache(maxsize=1)
def _byte_vocabulary():
    from outlines_core import Vocabulary

    return Vocabulary(256, {bytes([b]): [b] for b in range(256)})


def _explain(message: str) -> str:
    if "unsupported regex feature" in message:
        return ("the runtime's regex engine cannot decode it: word boundaries (\\b, \\B) and other "
                "look-around assertions are not supported")
    if "incompatible" in message:
        return ("no text matches it after the segment's tag: the content must match the whole regex, so "
                "anchors (^, $, \\A, \\Z) can never match inside a transcript; drop them")
    if "exceeds limit" in message:
        return "its automaton is too large for the runtime; simplify it"
    return ("the runtime's regex engine cannot decode it: look-arounds, back-references, conditionals and "
            "Python-only syntax (e.g. an unescaped '[' inside a class, or a lone '{') are not supported")


# -- call segments ---------------------------------------------------------------------------------------

def call_opening(tool) -> str:
    """What a call of ``tool`` starts with after the tag: `` NAME {"first": `` (``NAME {}`` when it has no
    parameters); the arguments follow in the parameters' property order, separated by ``, ``."""
    names = list(_properties(tool))
    return f' {tool.name} {{"{names[0]}": ' if names else f" {tool.name} {{}}"


def _properties(tool) -> dict:
    import json

    schema = json.loads(tool.parameters) if tool.parameters else {}
    return schema.get("properties", {}) if isinstance(schema, dict) else {}


def call_separators(tool, end: str) -> list[str]:
    """The literal text after each argument: ``, "next": ``, and ``}`` + END after the last."""
    names = list(_properties(tool))
    return [f', "{n}": ' for n in names[1:]] + ([f"}}{end}"] if names else [])


def argument_schemas(tool) -> list[tuple[str, dict, dict]]:
    """(name, schema, root) of each argument of ``tool``, in order: the property's schema and the
    tool's whole ``parameters`` schema, in which its ``$ref`` s resolve."""
    import json

    root = json.loads(tool.parameters) if tool.parameters else {}
    return [(name, sub if isinstance(sub, dict) else {}, root) for name, sub in _properties(tool).items()]


_SCALARS = ("string", "number", "integer", "boolean", "null")


def value_language(schema: dict, root: dict) -> tuple:
    """How one JSON value under ``schema`` (refs resolved in ``root``) is decoded: ``("regex", R)`` for a
    scalar, and for a structure the grammar translation does not support (outlines-core, as for json
    content); ``("schema", schema, root)`` for other structures (a llguidance grammar: recursion
    included). Raises ContentError when neither can decode it."""
    import json

    if "maxItems" in schema:  # a list argument's length is the writer's to bound (check refuses it deeper)
        schema = {k: v for k, v in schema.items() if k != "maxItems"}
    text = json.dumps(schema)
    if isinstance(schema.get("type"), str) and schema["type"] in _SCALARS and "$ref" not in schema \
            and "anyOf" not in schema:
        return ("regex", _scalar_regex(text))
    return _structure_language(text, json.dumps(root))


@functools.lru_cache(maxsize=1024)
def _scalar_regex(schema_text: str) -> str:
    return json_regex(schema_text)


@functools.lru_cache(maxsize=1024)
def _structure_language(schema_text: str, root_text: str) -> tuple:
    import json

    from .cfg import json_is_recursive, piece_bnf

    schema, root = json.loads(schema_text), json.loads(root_text)
    try:
        piece_bnf("", [(("schema", schema, root), "")])
        return ("schema", schema, root)
    except ContentError as err:
        standalone = {**schema, **{k: root[k] for k in ("$defs", "definitions") if k in root and k not in schema}}
        if '"$ref": "#"' in schema_text or json_is_recursive(json.dumps(standalone)):
            raise ContentError(f"a recursive argument schema must use what the grammar translation supports: {err}") from None
        return ("regex", json_regex(json.dumps(standalone)))


def call_problem(spec, segment, content: str) -> Optional[str]:
    """Why ``content`` is not one call the call segment may write, or None: ``NAME {"a": V, …}`` with
    every argument of the tool in its parameters' order, separated as ``call_separators`` says, and
    the arguments valid under the tool's ``parameters`` (jsonschema)."""
    import json

    import jsonschema

    name = content.split(" ", 1)[0]
    if name not in segment.options:
        return f"{name!r} is not a tool {segment.name!r} may call ({', '.join(segment.options)})"
    tool = spec.tool(name)
    text, opening = " " + content + segment.end, call_opening(tool)
    if not text.startswith(opening):
        return f"the call {content[:60]!r} does not start {opening.strip()!r}"
    pos, args, decoder = len(opening), {}, json.JSONDecoder()
    for (field, _, _), sep in zip(argument_schemas(tool), call_separators(tool, segment.end)):
        try:
            args[field], pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as err:
            return f"argument {field!r} of the call is not JSON: {err.msg} at {content[:60]!r}"
        if not text.startswith(sep, pos):
            return f"after argument {field!r}, the call must go on with {sep!r}"
        pos += len(sep)
    if not _properties(tool) and text[pos:] != segment.end:
        return f"a call of {name!r} is written {opening.strip()!r}: it takes no arguments"
    if pos != len(text) and _properties(tool):
        return f"the call {content[:60]!r} goes on after its arguments"
    schema = json.loads(tool.parameters) if tool.parameters else {}
    error = jsonschema.exceptions.best_match(jsonschema.validators.validator_for(schema)(schema).iter_errors(args))
    if error is not None:
        where = "".join(f"[{p!r}]" for p in error.absolute_path)
        return f"the arguments of {name!r} do not meet its parameters' schema: {where} {error.message}".replace(":  ", ": ")
    return None

"""Content constraints as regular expressions over characters, one per segment.

A model segment is written as ``TAG`` + one space + content + ``END`` (the space is the natural start of
the first token after a tag, and the content is exactly what follows it). Lengths are never bounded in the regex (bounded repeats blow up the
token index): token budgets bound them in the decode loop instead.
"""
from __future__ import annotations

import re

from ltlagent.compiler.ast import Segment


class ConstraintError(ValueError):
    """A content constraint the runtime cannot decode under (e.g. a recursive grammar)."""


def content_regex(segment: Segment) -> str:
    """The regex of what follows a segment's tag: one space, the content, END."""
    kind, value, end = segment.content.kind, segment.content.value, segment.end
    if kind == "text":
        body = f"[^{_class_escape(end[0])}]*" if end else ".*"
    elif kind == "regex":
        body = f"(?:{value})"
    elif kind == "json":
        body = f"(?:{json_regex(value)})"
    elif kind == "grammar":
        body = f"(?:{grammar_regex(value)})"
    else:
        raise ConstraintError(f"choice segment {segment.name!r} is decoded from its options, not a regex")
    return f" {body}{re.escape(end)}"


def _class_escape(char: str) -> str:
    return "\\n" if char == "\n" else re.escape(char)


def json_regex(schema_text: str) -> str:
    """The regex outlines-core derives from a JSON Schema (compact whitespace)."""
    from outlines_core.json_schema import build_regex_from_schema

    return build_regex_from_schema(schema_text, whitespace_pattern=r"[ ]?")


def grammar_regex(grammar: str) -> str:
    """The regex of a regular Lark grammar (no recursion other than the repetition Lark derives from
    ``*`` and ``+``); ``%ignore`` terminals may appear between any two terminals. Raises ConstraintError
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
        raise ConstraintError(f"grammar rule {name!r} is recursive; grammar segments must be regular")
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


def choice_texts(segment: Segment) -> dict[str, str]:
    """Per option, the text written after the tag (a space, the option, END)."""
    return {option: f" {option}{segment.end}" for option in segment.options}


__all__ = ["ConstraintError", "content_regex", "choice_texts", "json_regex", "grammar_regex"]

"""The reference s-expression dialect -> the same Spec IR as YAML specs.

``(define NAME (:states (state (:text "TAG") [(:flags :env-input)]) ...) (:behavior EXPR))`` where EXPR is
a state name or ``(next E...)`` (sequence), ``(or E...)`` (choice), ``(always E)`` (E repeated any number of
times), ``(until E STOP)`` (E repeated, then STOP), ``(until_N E STOP)`` (E at most N times, then STOP),
``(until_MIN_MAX E STOP)`` (E between MIN and MAX times, then STOP). The behaviour becomes one segment
pattern. The reference framework pre-fills the first state with the task, so a state that opens the
behaviour and occurs nowhere else becomes an env segment filled by the task.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Union

import lark

from .ast import PAlt, PAtom, Pattern, PRepeat, PSeq, Prop, Rule, Segment, Spec
from .checks import check_spec
from .errors import SpecSemanticError, SpecSyntaxError
from .ltl import parse_text
from .patterns import MAX_REPEAT, format_pattern
from .source import Source, Span, shifted


@dataclass(frozen=True)
class Atom:
    kind: str  # keyword | string | symbol
    text: str
    span: Span


@dataclass(frozen=True)
class SList:
    items: tuple
    span: Span


SExpr = Union[Atom, SList]
MAX_NESTING = 100  # lists inside lists; the reference specs nest a handful, the passes on patterns recurse
UNTIL = re.compile(r"until(?:_(\d+))?(?:_(\d+))?\Z")


def read_sexprs(source: Source) -> list[SExpr]:
    """Parse s-expression text into atoms and lists with spans. Raises SpecSyntaxError."""
    where = shifted(source, source.text, 0)
    tree = parse_text("sexpr", source.text, where, "s-expression")
    _check_depth(tree, source)
    return [_to_sexpr(child, source) for child in tree.children]


def _check_depth(tree: lark.Tree, source: Source) -> None:
    """Raise SpecSyntaxError at the first list nested more than MAX_NESTING deep (the conversion and
    the pattern passes recurse)."""
    stack = [(child, 1) for child in tree.children]
    while stack:
        node, depth = stack.pop()
        if not (isinstance(node, lark.Tree) and node.data == "list"):
            continue
        if depth > MAX_NESTING:
            raise SpecSyntaxError(f"the s-expression is nested more than {MAX_NESTING} lists deep",
                                  Span(source, node.meta.start_pos, node.meta.start_pos + 1),
                                  "flatten it: (next A B C ...) takes any number of items")
        stack.extend((child, depth + 1) for child in node.children)


def _to_sexpr(node, source: Source) -> SExpr:
    if isinstance(node, lark.Tree) and node.data == "list":
        return SList(tuple(_to_sexpr(c, source) for c in node.children),
                     Span(source, node.meta.start_pos, node.meta.end_pos))
    token = node.children[0]
    span = Span(source, token.start_pos, token.end_pos)
    return Atom(node.data, _string(str(token), span) if node.data == "string" else str(token), span)


def _string(token: str, span: Span) -> str:
    """The value of a double-quoted string (JSON escapes). Raises SpecSyntaxError for a bad escape."""
    try:
        return json.loads(token, strict=False)  # raw line breaks and tabs are allowed in the dialect
    except json.JSONDecodeError as err:
        escape = token[err.pos:err.pos + 2]
        raise SpecSyntaxError(f"invalid escape '{escape}' in string", span.sub(err.pos, err.pos + 2)) from None


def load_sexpr_spec(source: Source) -> Spec:
    """A validated Spec from reference-dialect text. Raises SpecSyntaxError / SpecSemanticError, located."""
    forms = read_sexprs(source)
    defines = [f for f in forms if _head(f) == "define"]
    if len(defines) != 1:
        span = forms[1].span if len(forms) > 1 else Span(source, 0, 1)
        raise SpecSyntaxError("expected exactly one (define NAME (:states ...) (:behavior ...))", span)
    name, states, behavior = _define_parts(defines[0])
    segments = [_state(s) for s in states.items[1:]]
    pattern = _behavior(behavior.items[1], {s.name for s in segments}) if len(behavior.items) == 2 else None
    if pattern is None:
        raise SpecSyntaxError("(:behavior ...) takes exactly one expression", behavior.span)
    segments = _mark_task_input(segments, pattern)
    rule = Rule("pattern", format_pattern(pattern), pattern, "the (:behavior ...) of the s-expression spec",
                behavior.span)
    spec = Spec(name, tuple(segments), (rule,), dialect="sexpr", source=source)
    check_spec(spec)
    return spec


def _head(form: SExpr) -> str | None:
    if isinstance(form, SList) and form.items and isinstance(form.items[0], Atom):
        return form.items[0].text
    return None


def _define_parts(define: SList):
    items = define.items
    if len(items) < 2 or not isinstance(items[1], Atom) or items[1].kind != "symbol":
        raise SpecSyntaxError("(define ...) needs a name", define.span)
    parts = {}
    for item in items[2:]:
        key = _head(item)
        if key not in (":states", ":behavior"):
            raise SpecSemanticError(f"unknown section {key or 'expression'!r} in define; expected :states, :behavior",
                                    item.span)
        if key in parts:
            raise SpecSemanticError(f"duplicate section {key}", item.span)
        parts[key] = item
    for key in (":states", ":behavior"):
        if key not in parts:
            raise SpecSemanticError(f"missing section ({key} ...) in define", define.span)
    return items[1].text, parts[":states"], parts[":behavior"]


def _state(form: SExpr) -> Segment:
    if not isinstance(form, SList) or not form.items or not isinstance(form.items[0], Atom):
        raise SpecSyntaxError("a state is (name (:text \"TAG\") [(:flags :env-input)])", form.span)
    name, tag, env = form.items[0], None, False
    for prop in form.items[1:]:
        key = _head(prop)
        if key == ":text" and len(prop.items) == 2 and prop.items[1].kind == "string":
            tag = prop.items[1].text
        elif key == ":flags" and all(isinstance(f, Atom) and f.text == ":env-input" for f in prop.items[1:]):
            env = True
        else:
            raise SpecSemanticError(f"unknown state property {key or 'expression'!r}; expected (:text \"TAG\") "
                                    "or (:flags :env-input)", prop.span)
    if tag is None:
        raise SpecSemanticError(f"state {name.text!r} has no (:text \"TAG\")", form.span)
    return Segment(name.text, tag, "env" if env else "model", span=name.span)


def _behavior(form: SExpr, states: set[str]) -> Pattern:
    if isinstance(form, Atom):
        if form.kind != "symbol" or form.text not in states:
            raise SpecSemanticError(f"undeclared state {form.text!r}", form.span,
                                    f"declared states: {', '.join(sorted(states))}")
        return PAtom(Prop(form.text, span=form.span), form.span)
    op = _head(form)
    args = [_behavior(item, states) for item in form.items[1:]]
    return _operator(op, args, form)


def _operator(op: str | None, args: list[Pattern], form: SList) -> Pattern:
    if op == "next" and args:  # nested sequences and choices are flattened, as the pattern parser does
        return PSeq(_flatten(PSeq, args), form.span)
    if op == "or" and args:
        return PAlt(_flatten(PAlt, args), form.span)
    if op == "always" and len(args) == 1:
        return PRepeat(args[0], 0, None, form.span)
    match = UNTIL.match(op or "")
    if match and len(args) == 2:
        lo, hi = _until_bounds(match, form)
        return PSeq((PRepeat(args[0], lo, hi, form.span), args[1]), form.span)
    raise SpecSemanticError(f"unknown or malformed operator {op!r}", form.span,
                            "operators: (next E...) (or E...) (always E) (until E STOP) (until_N E STOP) "
                            "(until_MIN_MAX E STOP)")


def _flatten(kind, args: list[Pattern]) -> tuple:
    """``args`` with the items of any ``kind`` node spliced in: (next a (next b c)) is (next a b c)."""
    return tuple(item for arg in args for item in (arg.items if isinstance(arg, kind) else (arg,)))


def _until_bounds(match, form: SList) -> tuple[int, int | None]:
    first, second = match.groups()
    if first is None:
        return 0, None
    lo, hi = (0, int(first)) if second is None else (int(first), int(second))
    if lo > hi or hi > MAX_REPEAT:
        raise SpecSemanticError(f"bad repetition bounds {lo}..{hi}", form.items[0].span)
    return lo, hi


def _mark_task_input(segments: list[Segment], pattern: Pattern) -> list[Segment]:
    first = pattern.items[0] if isinstance(pattern, PSeq) else None
    if not isinstance(first, PAtom):
        return segments
    from .ast import pattern_props

    if sum(p.segment == first.prop.segment for p in pattern_props(pattern)) != 1:
        return segments
    return [Segment(s.name, s.tag, "env", input="task", span=s.span) if s.name == first.prop.segment else s
            for s in segments]

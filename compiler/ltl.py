"""LTLf formulas: text -> ast (Lark, LALR, positions) and ast -> text (minimal parentheses)."""
from __future__ import annotations

import functools
import json
import re
from importlib import resources
from typing import Optional

import lark

from .ast import Binary, Compare, Const, Formula, Last, Literal, Path, Prop, Quant, Truth, Unary
from .errors import SpecSemanticError, SpecSyntaxError
from .source import Embedded, standalone


MAX_BOUND = 100_000  # the largest lo / hi of F[lo,hi] and G[lo,hi]


@functools.lru_cache(maxsize=None)
def grammar_parser(name: str) -> lark.Lark:
    """The LALR parser of ``grammars/<name>.lark`` (built once per process)."""
    text = resources.files("ltlagent.grammars").joinpath(f"{name}.lark").read_text()
    return lark.Lark(text, parser="lalr", lexer="basic", propagate_positions=True, maybe_placeholders=False)


def parse_prop_token(token, where: Optional[Embedded] = None) -> tuple[str, Optional[str]]:
    """Split a PROP token (a Lark token, or text) into (segment, option); a quoted option is
    JSON-unescaped. Raises SpecSyntaxError, located in ``where``, for a bad escape or a raw control
    character (a line break) inside the quotes."""
    segment, dot, option = str(token).partition(".")
    if not dot or not option.startswith('"'):
        return segment, (option if dot else None)
    try:
        return segment, json.loads(option)
    except json.JSONDecodeError as err:
        at = len(segment) + 1 + err.pos
        start = getattr(token, "start_pos", 0) or 0
        where = where or standalone(str(token), "<proposition>")
        problem = ("a raw control character such as a line break" if err.msg.startswith("Invalid control")
                   else err.msg.lower().replace("\\uxxxx", "\\uXXXX"))
        raise SpecSyntaxError(f"bad quoted option: {problem} (quoted options are JSON strings)",
                              where.span(start + at, start + at + 2)) from None


def syntax_error(err: lark.exceptions.LarkError, where: Embedded, what: str, grammar: str, text: str) -> SpecSyntaxError:
    """A located SpecSyntaxError for a Lark parse error, naming what was expected."""
    pos = getattr(err, "pos_in_stream", None) or 0
    if isinstance(err, lark.exceptions.UnexpectedToken) and err.token.type == "$END":
        pos = len(text.rstrip())
        message = f"unexpected end of {what}"
    elif isinstance(err, lark.exceptions.UnexpectedToken):
        message = f"unexpected {err.token.value!r} in {what}"
    else:
        char = text[pos] if pos < len(text) else ""
        return SpecSyntaxError(f"unexpected character {char!r} in {what}", where.span(pos, pos + 1))
    expected = sorted(set(getattr(err, "accepts", None) or ()) | set(getattr(err, "expected", None) or getattr(err, "allowed", None) or ()))
    hint = f"expected one of: {', '.join(_pretty_terminals(expected, grammar))}" if expected else None
    return SpecSyntaxError(message, where.span(pos, pos + 1), hint)


_FRIENDLY = {"PROP": "a segment name", "INT": "a number", "DECIMAL": "a number", "$END": "end of input",
             "DPATH": "a data path", "ESCAPED_STRING": "a string", "CMP": "a comparison"}


def _pretty_terminals(names, grammar: str) -> list[str]:
    """Readable names of expected Lark terminals (literal text for keywords and punctuation)."""
    parser = grammar_parser(grammar)
    pretty = set()
    for name in names:
        if name in _FRIENDLY:
            pretty.add(_FRIENDLY[name])
            continue
        try:
            pattern = parser.get_terminal(name).pattern
        except KeyError:
            pretty.add(name)
            continue
        pretty.add(repr(pattern.value) if pattern.type == "str" else name)
    return sorted(pretty)


def parse_text(name: str, text: str, where: Embedded, what: str) -> lark.Tree:
    """Parse with grammar ``name``; any Lark error becomes a located SpecSyntaxError."""
    try:
        return grammar_parser(name).parse(text)
    except lark.exceptions.UnexpectedInput as err:
        raise syntax_error(err, where, what, name, text) from None


class _ToFormula(lark.Transformer):
    def __init__(self, where: Embedded):
        super().__init__()
        self.where = where

    def _span(self, meta):
        return self.where.span(meta.start_pos, meta.end_pos) if not meta.empty else None

    def prop(self, children):
        token = children[0]
        segment, option = parse_prop_token(token, self.where)
        return Prop(segment, option, self.where.span(token.start_pos, token.end_pos))

    @lark.v_args(meta=True)
    def true(self, meta, _):
        return Const(True, self._span(meta))

    @lark.v_args(meta=True)
    def false(self, meta, _):
        return Const(False, self._span(meta))

    @lark.v_args(meta=True)
    def last(self, meta, _):
        return Last(self._span(meta))

    def bounds(self, children):
        lo, hi = int(children[0]), int(children[1])
        if lo > hi:
            span = self.where.span(children[0].start_pos, children[1].end_pos)
            raise SpecSemanticError(f"empty bound [{lo},{hi}]: the lower bound exceeds the upper", span)
        for token, value in zip(children, (lo, hi)):
            if value > MAX_BOUND:
                raise SpecSemanticError(
                    f"temporal bound {value} over the cap of {MAX_BOUND}",
                    self.where.span(token.start_pos, token.end_pos),
                    "a bound that large needs as many automaton states; use F / G without bounds for long runs")
        return (lo, hi)


def _unary(op: str, bounded: bool = False):
    @lark.v_args(meta=True)
    def build(self, meta, children):
        if bounded:
            return Unary(op, children[1], children[0], self._span(meta))
        return Unary(op, children[0], None, self._span(meta))
    return build


def _binary(op: str):
    @lark.v_args(meta=True)
    def build(self, meta, children):
        return Binary(op, children[0], children[1], self._span(meta))
    return build


_PATH_PART = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\*|[0-9]+)\]")


def split_path(text: str) -> tuple[str, tuple]:
    """``u.result.orders[*]`` -> ("u", ("result", "orders", "*")); indexes become ints."""
    root = re.match(r"[A-Za-z_][A-Za-z0-9_]*(-[A-Za-z0-9_]+)*", text).group(0)
    parts = []
    for match in _PATH_PART.finditer(text, len(root)):
        name, index = match.groups()
        parts.append(name if name is not None else ("*" if index == "*" else int(index)))
    return root, tuple(parts)


class _DataTerms:
    """The data rules' nodes (mixed into _ToFormula): terms, comparisons, quantifiers, past time."""

    def _token_span(self, token):
        return self.where.span(token.start_pos, token.end_pos)

    def truth(self, children):
        root, parts = split_path(str(children[0]))
        return Truth(Path(root, parts, self._token_span(children[0])), self._token_span(children[0]))

    def term_path(self, children):
        root, parts = split_path(str(children[0]))
        return Path(root, parts, self._token_span(children[0]))

    def term_prop(self, children):
        token = children[0]
        segment, dot, option = str(token).partition(".")
        if option.startswith('"'):
            raise SpecSemanticError("a quoted option is a proposition, not a data term", self._token_span(token),
                                    "data terms are paths such as x.args.order_id")
        return Path(segment, (option,) if dot else (), self._token_span(token))

    def string(self, children):
        return Literal(json.loads(str(children[0])), self._token_span(children[0]))

    def number(self, children):
        text = str(children[0])
        value = float(text) if "." in text else int(text)
        return Literal(value, self._token_span(children[0]))

    @lark.v_args(meta=True)
    def null(self, meta, _):
        return Literal(None, self._span(meta))

    @lark.v_args(meta=True)
    def list(self, meta, children):
        items = [c for c in children if c is not None]
        bad = next((c for c in items if not isinstance(c, Literal)), None)
        if bad is not None:
            raise SpecSemanticError("a list holds constants only (strings, numbers, null)", bad.span)
        return Literal(tuple(c.value for c in items), self._span(meta))

    @lark.v_args(meta=True)
    def compare(self, meta, children):
        return Compare(str(children[1]), children[0], children[2], self._span(meta))

    @lark.v_args(meta=True)
    def member(self, meta, children):
        return Compare("in", children[0], children[1], self._span(meta))

    @lark.v_args(meta=True)
    def not_member(self, meta, children):
        return Compare("notin", children[0], children[1], self._span(meta))

    def quant_kind(self, children):
        return str(children[0])

    def range_prop(self, children):
        return self.prop(children)

    def range_path(self, children):
        return self.term_path(children)

    @lark.v_args(meta=True)
    def quant(self, meta, children):
        kind, var, *ranges, body = children
        return Quant(kind, str(var), tuple(ranges), body, self._span(meta))


_ToFormula.__bases__ = (_DataTerms,) + _ToFormula.__bases__

for _name, _op in (("not_", "!"), ("next", "X"), ("weak_next", "WX"), ("eventually", "F"), ("always", "G"),
                   ("previous", "previous"), ("once", "once"), ("historically", "historically")):
    setattr(_ToFormula, _name, _unary(_op))
setattr(_ToFormula, "eventually_bounded", _unary("F", bounded=True))
setattr(_ToFormula, "always_bounded", _unary("G", bounded=True))
for _name, _op in (("iff", "<->"), ("implies", "->"), ("or_", "|"), ("and_", "&"),
                   ("until", "U"), ("release", "R"), ("weak_until", "W"), ("since", "since")):
    setattr(_ToFormula, _name, _binary(_op))


def parse_formula(text: str, where: Optional[Embedded] = None) -> Formula:
    """Parse an LTLf formula. Raises SpecSyntaxError (with position and expected tokens) or
    SpecSemanticError (e.g. an empty bound ``F[3,1]``)."""
    where = where or standalone(text, "<formula>")
    tree = parse_text("ltl", text, where, "formula")
    return check_nesting(transform(_ToFormula(where), tree, where, text, "formula"), where, text, "formula")


MAX_NESTING = 250


def transform(transformer: lark.Transformer, tree: lark.Tree, where: Embedded, text: str, what: str):
    """Run a tree transformer, re-raising the SpecErrors it raises; a tree too deep for Python's
    recursion becomes a SpecSyntaxError."""
    try:
        return transformer.transform(tree)
    except lark.exceptions.VisitError as err:
        if not isinstance(err.orig_exc, RecursionError):
            raise err.orig_exc from None
    except RecursionError:
        pass
    raise SpecSyntaxError(f"the {what} is nested more than {MAX_NESTING} operators deep",
                          where.span(0, len(text)), "split it into several rules")


def check_nesting(node, where: Embedded, text: str, what: str):
    """``node`` if its operator nesting is at most MAX_NESTING (the recursive passes stay within
    Python's stack), else SpecSyntaxError."""
    stack = [(node, 1)]
    while stack:
        current, depth = stack.pop()
        if depth > MAX_NESTING:
            raise SpecSyntaxError(f"the {what} is nested more than {MAX_NESTING} operators deep",
                                  where.span(0, len(text)), "split it into several rules")
        stack.extend((child, depth + 1) for child in _children(current))
    return node


def _children(node):
    for name in ("arg", "left", "right", "body"):
        if hasattr(node, name):
            yield getattr(node, name)
    yield from getattr(node, "items", ())


# Printing: binding strength per operator, loosest first (mirrors grammars/ltl.lark).
_LEVEL = {"<->": 1, "->": 2, "|": 3, "&": 4, "U": 5, "R": 5, "W": 5, "since": 5}
_UNARY_LEVEL = 6
_RIGHT_ASSOC = {"->", "U", "R", "W", "since"}
_PLAIN = re.compile(r"[A-Za-z0-9_]+(-[A-Za-z0-9_]+)*\Z")


def format_prop(prop: Prop) -> str:
    """A proposition as formula text (the option quoted when it is not a bare word)."""
    if prop.option is None:
        return prop.segment
    option = prop.option if _PLAIN.match(prop.option) else json.dumps(prop.option)
    return f"{prop.segment}.{option}"


def format_formula(formula: Formula) -> str:
    """Formula text that parses back to an equal formula, with the fewest parentheses."""
    return _fmt(formula, 0)


def _fmt(f: Formula, context: int) -> str:
    if isinstance(f, Prop):
        return format_prop(f)
    if isinstance(f, Const):
        return "true" if f.value else "false"
    if isinstance(f, Last):
        return "last"
    if isinstance(f, (Compare, Truth, Quant)):
        return _fmt_data(f, context)
    if isinstance(f, Unary):
        head = f.op if f.bounds is None else f"{f.op}[{f.bounds[0]},{f.bounds[1]}]"
        sep = "" if f.op == "!" else " "
        return f"{head}{sep}{_fmt(f.arg, _UNARY_LEVEL)}"
    level = _LEVEL[f.op]
    right_assoc = f.op in _RIGHT_ASSOC
    left = _fmt(f.left, level + 1 if right_assoc else level)
    right = _fmt(f.right, level if right_assoc else level + 1)
    text = f"{left} {f.op} {right}"
    return f"({text})" if level < context else text


_COMPARE_TEXT = {"in": "in", "notin": "not in"}


def format_term(term) -> str:
    """A term as formula text."""
    if isinstance(term, Path):
        return str(term)
    value = term.value
    if isinstance(value, tuple):
        return "[" + ", ".join(format_term(Literal(v)) for v in value) + "]"
    return "null" if value is None else json.dumps(value)


def _fmt_data(f, context: int) -> str:
    if isinstance(f, Truth):
        return str(f.term)
    if isinstance(f, Compare):
        return f"{format_term(f.left)} {_COMPARE_TEXT.get(f.op, f.op)} {format_term(f.right)}"
    ranges = ", ".join(format_prop(r) if isinstance(r, Prop) else str(r) for r in f.ranges)
    text = f"{f.kind} {f.var} in {ranges}: {_fmt(f.body, 0)}"
    return f"({text})" if context > 0 else text

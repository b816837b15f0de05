"""Segment patterns: regular expressions over segment names -> ast -> minimal DFA (non-empty traces).

``question (thought action action_input observation){0,5} final_thought answer``: juxtaposition is
sequence, ``|`` choice, ``* + ? {m} {m,} {m,n}`` repetition. A pattern must match the whole trace.
"""
from __future__ import annotations

from typing import Optional, Sequence

import lark

from .ast import PAlt, PAtom, Pattern, PRepeat, PSeq, Prop, prop_matches
from .automaton import DEFAULT_STATE_CAP, Automaton, build, minimize, within
from .errors import AutomatonTooLarge, SpecSemanticError
from .ltl import check_nesting, parse_prop_token, parse_text, transform
from .source import Embedded, standalone

MAX_REPEAT = 1000


class _ToPattern(lark.Transformer):
    def __init__(self, where: Embedded):
        super().__init__()
        self.where = where

    def _span(self, meta):
        return None if meta.empty else self.where.span(meta.start_pos, meta.end_pos)

    def atom(self, children):
        token = children[0]
        span = self.where.span(token.start_pos, token.end_pos)
        return PAtom(Prop(*parse_prop_token(token, self.where), span=span), span)

    @lark.v_args(meta=True)
    def seq(self, meta, children):
        return PSeq(_flatten(PSeq, children), self._span(meta))

    @lark.v_args(meta=True)
    def alt(self, meta, children):
        return PAlt(_flatten(PAlt, children), self._span(meta))

    def _rep(self, meta, body, lo, hi, tokens=()):
        if hi is not None and lo > hi:
            span = self.where.span(tokens[0].start_pos, tokens[-1].end_pos)
            raise SpecSemanticError(f"empty repetition {{{lo},{hi}}}: the lower bound exceeds the upper", span)
        if max(lo, hi or 0) > MAX_REPEAT:
            span = self.where.span(tokens[0].start_pos, tokens[-1].end_pos)
            raise SpecSemanticError(f"repetition bound over {MAX_REPEAT}; use * or + for long loops", span)
        return PRepeat(body, lo, hi, self._span(meta))

    @lark.v_args(meta=True)
    def star(self, meta, c):
        return self._rep(meta, c[0], 0, None)

    @lark.v_args(meta=True)
    def plus(self, meta, c):
        return self._rep(meta, c[0], 1, None)

    @lark.v_args(meta=True)
    def optional(self, meta, c):
        return self._rep(meta, c[0], 0, 1)

    @lark.v_args(meta=True)
    def repeat_exact(self, meta, c):
        return self._rep(meta, c[0], int(c[1]), int(c[1]), c[1:])

    @lark.v_args(meta=True)
    def repeat_min(self, meta, c):
        return self._rep(meta, c[0], int(c[1]), None, c[1:])

    @lark.v_args(meta=True)
    def repeat_range(self, meta, c):
        return self._rep(meta, c[0], int(c[1]), int(c[2]), c[1:])


def _flatten(kind, children) -> tuple:
    items = []
    for child in children:
        items.extend(child.items if isinstance(child, kind) else (child,))
    return tuple(items)


def parse_pattern(text: str, where: Optional[Embedded] = None) -> Pattern:
    """Parse a segment pattern. Raises SpecSyntaxError or SpecSemanticError (bad bounds), located."""
    where = where or standalone(text, "<pattern>")
    tree = parse_text("pattern", text, where, "segment pattern")
    return check_nesting(transform(_ToPattern(where), tree, where, text, "segment pattern"), where, text,
                         "segment pattern")


def format_pattern(pattern: Pattern) -> str:
    """Pattern text that parses back to an equal pattern."""
    from .ltl import format_prop

    if isinstance(pattern, PAtom):
        return format_prop(pattern.prop)
    if isinstance(pattern, PSeq):
        return " ".join(_group(item, PAlt) for item in pattern.items)
    if isinstance(pattern, PAlt):
        return " | ".join(format_pattern(item) for item in pattern.items)
    body = _group(pattern.body, (PAlt, PSeq, PRepeat))
    return body + _repeat_suffix(pattern.lo, pattern.hi)


def _group(pattern: Pattern, kinds) -> str:
    text = format_pattern(pattern)
    return f"({text})" if isinstance(pattern, kinds) else text


def _repeat_suffix(lo: int, hi: Optional[int]) -> str:
    short = {(0, None): "*", (1, None): "+", (0, 1): "?"}
    if (lo, hi) in short:
        return short[(lo, hi)]
    if hi is None:
        return f"{{{lo},}}"
    return f"{{{lo}}}" if lo == hi else f"{{{lo},{hi}}}"


class _Nfa:
    """Thompson NFA: letter-set edges and epsilon edges."""

    def __init__(self, alphabet: Sequence[str], cap: int):
        self.alphabet, self.cap = alphabet, cap
        self.edges: list[list[tuple[frozenset[int], int]]] = []
        self.eps: list[list[int]] = []

    def new(self) -> int:
        if len(self.edges) >= self.cap:
            raise AutomatonTooLarge(f"the segment pattern needs more than {self.cap} NFA states")
        self.edges.append([])
        self.eps.append([])
        return len(self.edges) - 1

    def fragment(self, p: Pattern) -> tuple[int, int]:
        start, end = self.new(), self.new()
        if isinstance(p, PAtom):
            letters = frozenset(i for i, a in enumerate(self.alphabet) if prop_matches(p.prop, a))
            self.edges[start].append((letters, end))
        elif isinstance(p, PSeq):
            self._chain(start, end, [self.fragment(item) for item in p.items])
        elif isinstance(p, PAlt):
            for s, e in (self.fragment(item) for item in p.items):
                self.eps[start].append(s)
                self.eps[e].append(end)
        else:
            self._repeat(start, end, p)
        return start, end

    def _chain(self, start: int, end: int, parts: list[tuple[int, int]]) -> None:
        cursor = start
        for s, e in parts:
            self.eps[cursor].append(s)
            cursor = e
        self.eps[cursor].append(end)

    def _repeat(self, start: int, end: int, p: PRepeat) -> None:
        cursor = start
        for _ in range(p.lo):
            s, e = self.fragment(p.body)
            self.eps[cursor].append(s)
            cursor = e
        if p.hi is None:
            s, e = self.fragment(p.body)
            self.eps[cursor] += [s, end]
            self.eps[e] += [s, end]
            return
        for _ in range(p.hi - p.lo):
            s, e = self.fragment(p.body)
            self.eps[cursor] += [s, end]
            cursor = e
        self.eps[cursor].append(end)

    def closure(self, states) -> frozenset[int]:
        seen, stack = set(states), list(states)
        while stack:
            for t in self.eps[stack.pop()]:
                if t not in seen:
                    seen.add(t)
                    stack.append(t)
        return frozenset(seen)

    def move(self, states: frozenset[int], letter: int) -> frozenset[int]:
        return self.closure({t for q in states for letters, t in self.edges[q] if letter in letters})


def pattern_automaton(pattern: Pattern, alphabet: Sequence[str], cap: int = DEFAULT_STATE_CAP,
                      context: Optional[Automaton] = None) -> Automaton:
    """The minimal trimmed DFA of the non-empty traces that the pattern matches whole (and that
    ``context``, a DFA over the same alphabet, accepts when given). Raises AutomatonTooLarge past ``cap``
    states."""
    nfa = _Nfa(alphabet, cap)
    start, end = nfa.fragment(pattern)

    def successors(state):
        _, states = state
        moved = (nfa.move(states, i) for i in range(len(alphabet)))
        return [(False, m) if m else None for m in moved]

    def accepting(state):
        return not state[0] and end in state[1]

    initial, successors, accepting = within(context, (True, nfa.closure({start})), successors, accepting)
    return minimize(build(alphabet, initial, successors, accepting, cap, "segment-pattern automaton"))

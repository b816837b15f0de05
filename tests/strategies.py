"""Hypothesis strategies and small oracles shared by the property and differential tests.

The alphabet is three plain segments ``a b c`` plus a choice segment ``s`` with options ``x`` and ``y``
(letters ``s.x`` and ``s.y``), so every kind of proposition occurs: a plain segment (``a``), a whole choice
segment (``s``, true at ``s.x`` and ``s.y``) and one option (``s.x``).

Besides strategies this module holds oracles that do not reuse compiler code: trace enumeration, a
segment-pattern -> Python ``re`` translation, and language equivalence / minimality checks on automata.
"""
from __future__ import annotations

import itertools
from collections import deque
from typing import Iterator, Optional, Sequence

from hypothesis import strategies as st

from ltlagent.compiler.ast import (
    BINARY_OPS,
    Binary,
    Const,
    Formula,
    Last,
    PAlt,
    PAtom,
    Pattern,
    PRepeat,
    Prop,
    PSeq,
    Unary,
)
from ltlagent.compiler.automaton import DEAD, Automaton

ALPHABET: tuple[str, ...] = ("a", "b", "c", "s.x", "s.y")
PROPS: tuple[Prop, ...] = (Prop("a"), Prop("b"), Prop("c"), Prop("s"), Prop("s", "x"), Prop("s", "y"))
PLAIN_PROPS: tuple[Prop, ...] = (Prop("a"), Prop("b"), Prop("c"))

# One regex character per letter, for comparing segment patterns with Python's re.
LETTER_CHAR = {"a": "a", "b": "b", "c": "c", "s.x": "x", "s.y": "y"}

SIMPLE_UNARY = ("!", "X", "WX", "F", "G")
MAX_BOUND = 3


# ----------------------------------------------------------------------------------------- formulas

def formula_leaves(props: Sequence[Prop] = PROPS) -> st.SearchStrategy[Formula]:
    return st.one_of(
        st.sampled_from(tuple(props)),
        st.builds(Const, st.booleans()),
        st.just(Last()),
    )


def bounds(max_bound: int = MAX_BOUND) -> st.SearchStrategy[tuple[int, int]]:
    """(lo, hi) with 0 <= lo <= hi <= max_bound."""
    return st.tuples(st.integers(0, max_bound), st.integers(0, max_bound)).map(lambda b: (min(b), max(b)))


def formulas(props: Sequence[Prop] = PROPS, max_leaves: int = 8,
             max_bound: int = MAX_BOUND) -> st.SearchStrategy[Formula]:
    """Random formula ASTs using every operator: ``! X WX F G``, bounded ``F[lo,hi] G[lo,hi]``,
    ``& | -> <-> U R W``, and the leaves props, ``true``, ``false``, ``last``."""

    def extend(children: st.SearchStrategy[Formula]) -> st.SearchStrategy[Formula]:
        return st.one_of(
            st.builds(Unary, st.sampled_from(SIMPLE_UNARY), children),
            st.builds(lambda op, b, g: Unary(op, g, b), st.sampled_from(("F", "G")), bounds(max_bound), children),
            st.builds(Binary, st.sampled_from(BINARY_OPS), children, children),
        )

    return st.recursive(formula_leaves(props), extend, max_leaves=max_leaves)


# ------------------------------------------------------------------------------------------- traces

def traces(alphabet: Sequence[str] = ALPHABET, min_size: int = 0, max_size: int = 7) -> st.SearchStrategy[tuple]:
    return st.lists(st.sampled_from(tuple(alphabet)), min_size=min_size, max_size=max_size).map(tuple)


def all_traces(alphabet: Sequence[str], max_len: int, min_len: int = 0) -> Iterator[tuple[str, ...]]:
    """Every trace of length min_len..max_len over the alphabet (shortest first)."""
    for n in range(min_len, max_len + 1):
        yield from itertools.product(alphabet, repeat=n)


# ----------------------------------------------------------------------------------------- patterns

def _flat(kind, items) -> tuple:
    """Items of a sequence/alternative flattened the way the pattern parser flattens them."""
    out: list = []
    for item in items:
        out.extend(item.items if isinstance(item, kind) else (item,))
    return tuple(out)


REPEATS = ((0, None), (1, None), (0, 1), (2, 2), (0, 0), (1, 1), (2, None), (0, 2), (1, 3), (3, None))


def patterns(props: Sequence[Prop] = PROPS, max_leaves: int = 6) -> st.SearchStrategy[Pattern]:
    """Random segment patterns in the parser's canonical shape (no sequence directly inside a sequence,
    no alternative directly inside an alternative), with ``* + ? {m} {m,} {m,n}`` repetitions."""
    atoms = st.sampled_from(tuple(props)).map(PAtom)

    def extend(children):
        return st.one_of(
            st.lists(children, min_size=2, max_size=3).map(lambda xs: PSeq(_flat(PSeq, xs))),
            st.lists(children, min_size=2, max_size=3).map(lambda xs: PAlt(_flat(PAlt, xs))),
            st.builds(lambda body, r: PRepeat(body, r[0], r[1]), children, st.sampled_from(REPEATS)),
        )

    return st.recursive(atoms, extend, max_leaves=max_leaves)


def pattern_regex(p: Pattern) -> str:
    """An equivalent Python regular expression over one character per letter (LETTER_CHAR)."""
    if isinstance(p, PAtom):
        chars = [LETTER_CHAR[a] for a in ALPHABET if _prop_true(p.prop, a)]
        return f"[{''.join(chars)}]"
    if isinstance(p, PSeq):
        return "".join(f"(?:{pattern_regex(item)})" for item in p.items)
    if isinstance(p, PAlt):
        return "(?:" + "|".join(pattern_regex(item) for item in p.items) + ")"
    hi = "" if p.hi is None else str(p.hi)
    return f"(?:{pattern_regex(p.body)}){{{p.lo},{hi}}}"


def _prop_true(prop: Prop, letter: str) -> bool:
    """Independent restatement of proposition truth: ``s`` holds at ``s.x``/``s.y``; ``s.x`` only at ``s.x``."""
    segment, _, option = letter.partition(".")
    if prop.option is None:
        return prop.segment == segment
    return prop.segment == segment and prop.option == option


def encode(trace: Sequence[str]) -> str:
    return "".join(LETTER_CHAR[a] for a in trace)


# ------------------------------------------------------------------------------- automaton oracles

def _target(aut: Automaton, state: Optional[int], i: int) -> Optional[int]:
    if state is None:
        return None
    t = aut.delta[state][i]
    return None if t == DEAD else t


def language_difference(left: Automaton, right: Automaton) -> Optional[tuple[str, ...]]:
    """A shortest trace accepted by exactly one of two automata over the same alphabet (None if the
    languages are equal). Breadth-first search on pairs of states; None stands for the rejecting sink."""
    assert left.alphabet == right.alphabet
    start = (left.initial, right.initial)
    parent: dict = {start: None}
    queue = deque([start])
    while queue:
        pair = queue.popleft()
        p, q = pair
        if (p is not None and p in left.accepting) != (q is not None and q in right.accepting):
            word: list[str] = []
            while parent[pair] is not None:
                pair, letter = parent[pair]
                word.append(letter)
            return tuple(reversed(word))
        for i, letter in enumerate(left.alphabet):
            nxt = (_target(left, p, i), _target(right, q, i))
            if nxt not in parent:
                parent[nxt] = (pair, letter)
                queue.append(nxt)
    return None


def reachable(aut: Automaton) -> set[int]:
    seen, queue = {aut.initial}, deque([aut.initial])
    while queue:
        for t in aut.delta[queue.popleft()]:
            if t != DEAD and t not in seen:
                seen.add(t)
                queue.append(t)
    return seen


def coreachable(aut: Automaton) -> set[int]:
    seen = set(aut.accepting)
    changed = True
    while changed:
        changed = False
        for q in aut.states:
            if q not in seen and any(t != DEAD and t in seen for t in aut.delta[q]):
                seen.add(q)
                changed = True
    return seen


def indistinguishable_pairs(aut: Automaton) -> list[tuple[int, int]]:
    """Pairs of distinct states with the same future language, by table filling (the implicit sink is
    a state of its own, rejecting, looping on every letter)."""
    sink = len(aut.delta)
    states = list(aut.states) + [sink]

    def succ(q: int, i: int) -> int:
        if q == sink:
            return sink
        t = aut.delta[q][i]
        return sink if t == DEAD else t

    def acc(q: int) -> bool:
        return q != sink and q in aut.accepting

    distinct = {(p, q) for p in states for q in states if p < q and acc(p) != acc(q)}
    changed = True
    while changed:
        changed = False
        for p in states:
            for q in states:
                if p < q and (p, q) not in distinct:
                    for i in range(len(aut.alphabet)):
                        a, b = sorted((succ(p, i), succ(q, i)))
                        if a != b and (a, b) in distinct:
                            distinct.add((p, q))
                            changed = True
                            break
    return [(p, q) for p in states for q in states if p < q and (p, q) not in distinct]


def minimality_problems(aut: Automaton) -> list[str]:
    """Why ``aut`` is not a minimal trimmed partial DFA (empty list when it is one)."""
    problems = []
    if len(aut.delta) == 1 and not aut.accepting:  # empty language: a lone initial state
        if any(t != DEAD for t in aut.delta[0]):
            problems.append("empty language but the lone state has transitions")
        return problems
    if not aut.accepting:
        problems.append(f"no accepting state but {len(aut.delta)} states")
    unreachable = set(aut.states) - reachable(aut)
    if unreachable:
        problems.append(f"unreachable states {sorted(unreachable)}")
    dead = set(aut.states) - coreachable(aut)
    if dead:
        problems.append(f"states that cannot reach acceptance {sorted(dead)}")
    same = indistinguishable_pairs(aut)
    if same:
        problems.append(f"equivalent state pairs {same} (sink = {len(aut.delta)})")
    if any(len(row) != len(aut.alphabet) for row in aut.delta):
        problems.append("a transition row does not cover the alphabet")
    return problems


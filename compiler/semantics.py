"""The reference evaluator: what an LTLf formula means on a finite trace of segment letters.

A trace is a non-empty sequence of letters (``"thought"``, ``"action.Search"``); each step is exactly one
letter, so ``!p`` means "this step exists and is some other letter". The empty trace satisfies nothing.
This module is deliberately naive (direct recursion on the definition) so that it can serve as the
oracle the automaton construction is tested against.
"""
from __future__ import annotations

from typing import Sequence

from .ast import Binary, Const, Formula, Last, Prop, Unary, prop_matches


def holds(formula: Formula, trace: Sequence[str]) -> bool:
    """Whether ``trace`` (non-empty) satisfies ``formula`` at its first step; False for the empty trace."""
    return len(trace) > 0 and _sat(formula, tuple(trace), 0, {})


def _sat(f: Formula, trace: tuple[str, ...], i: int, memo: dict) -> bool:
    key = (id(f), i)
    if key not in memo:
        memo[key] = _eval(f, trace, i, memo)
    return memo[key]


def _eval(f: Formula, trace, i: int, memo) -> bool:
    n = len(trace)
    sat = lambda g, j: _sat(g, trace, j, memo)  # noqa: E731
    if isinstance(f, Prop):
        return prop_matches(f, trace[i])
    if isinstance(f, Const):
        return f.value
    if isinstance(f, Last):
        return i == n - 1
    if isinstance(f, Unary):
        return _eval_unary(f, n, i, sat)
    return _eval_binary(f, n, i, sat)


def _eval_unary(f: Unary, n: int, i: int, sat) -> bool:
    if f.op == "!":
        return not sat(f.arg, i)
    if f.op == "X":
        return i + 1 < n and sat(f.arg, i + 1)
    if f.op == "WX":
        return i + 1 >= n or sat(f.arg, i + 1)
    lo, hi = f.bounds if f.bounds is not None else (0, n)
    window = range(i + lo, min(n, i + hi + 1))
    if f.op == "F":
        return any(sat(f.arg, j) for j in window)
    return all(sat(f.arg, j) for j in window)


def _eval_binary(f: Binary, n: int, i: int, sat) -> bool:
    l, r = f.left, f.right
    if f.op == "&":
        return sat(l, i) and sat(r, i)
    if f.op == "|":
        return sat(l, i) or sat(r, i)
    if f.op == "->":
        return not sat(l, i) or sat(r, i)
    if f.op == "<->":
        return sat(l, i) == sat(r, i)
    until = any(sat(r, j) and all(sat(l, k) for k in range(i, j)) for j in range(i, n))
    if f.op == "U":
        return until
    if f.op == "W":
        return until or all(sat(l, j) for j in range(i, n))
    # R: r holds up to and including the first step where l holds (or to the end).
    return all(sat(r, j) or any(sat(l, k) for k in range(i, j)) for j in range(i, n))

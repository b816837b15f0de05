"""The reference evaluator: what an LTLf formula means on a finite trace of segment letters.

A trace is a non-empty sequence of steps: letters (``"thought"``, ``"action.Search"``), or ``Step``s that
also carry a call's data; each step is exactly one letter, so ``!p`` means "this step exists and is some
other letter". The empty trace satisfies nothing. This module is deliberately naive (direct recursion on
the definition) so that it can serve as the oracle the automaton construction and the runtime's
enforcement of data rules are tested against.

Data (compiler/data.py): a call step has ``call`` = {"tool", "args", and, once its result came,
"result" and "ok"}. A term that names something absent (no call here, a missing field, a result not
known) is *undefined*, and every comparison with an undefined side is false. ``[*]`` on the left of a
comparison: every value satisfies it (true when there are none); ``in`` a list: among its elements, ``in``
an object: among its keys; ``==`` is equality of JSON values; ``< <= > >=`` compare numbers only.
Quantifiers over calls range over the steps before the current one; ``latest`` is the most recent such
step (false when none). Past time: ``previous φ`` (φ at the step before; false at the first), ``once φ``
(at some step up to now), ``historically φ`` (at every step up to now), ``φ since ψ`` (ψ at some step up
to now, φ at every step after it up to now).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

from .ast import Binary, Compare, Const, Formula, Last, Literal, Path, Prop, Quant, Truth, Unary, prop_matches

UNDEFINED = object()


@dataclass(frozen=True)
class Step:
    """One step of a trace with data: its ``letter`` and, for a call, ``call`` (see the module doc)."""

    letter: str
    call: Optional[dict] = None


def holds(formula: Formula, trace: Sequence) -> bool:
    """Whether ``trace`` (non-empty) satisfies ``formula`` at its first step; False for the empty trace."""
    steps = tuple(s if isinstance(s, Step) else Step(s) for s in trace)
    return len(steps) > 0 and _sat(formula, steps, 0, {}, ())


def holds_at(formula: Formula, trace: Sequence, i: int) -> bool:
    """Whether ``formula`` holds at step ``i`` of ``trace``."""
    steps = tuple(s if isinstance(s, Step) else Step(s) for s in trace)
    return _sat(formula, steps, i, {}, ())


def _sat(f: Formula, trace: tuple, i: int, memo: dict, env: tuple) -> bool:
    key = (id(f), i, env)
    if key not in memo:
        memo[key] = _eval(f, trace, i, memo, env)
    return memo[key]


def _eval(f: Formula, trace, i: int, memo, env=()) -> bool:
    n = len(trace)
    sat = lambda g, j: _sat(g, trace, j, memo, env)  # noqa: E731
    if isinstance(f, Prop):
        return prop_matches(f, trace[i].letter)
    if isinstance(f, (Compare, Truth, Quant)):
        return _eval_data(f, trace, i, memo, env)
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
    if f.op == "previous":
        return i > 0 and sat(f.arg, i - 1)
    if f.op == "once":
        return any(sat(f.arg, j) for j in range(0, i + 1))
    if f.op == "historically":
        return all(sat(f.arg, j) for j in range(0, i + 1))
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
    if f.op == "since":
        return any(sat(r, j) and all(sat(l, k) for k in range(j + 1, i + 1)) for j in range(0, i + 1))
    until = any(sat(r, j) and all(sat(l, k) for k in range(i, j)) for j in range(i, n))
    if f.op == "U":
        return until
    if f.op == "W":
        return until or all(sat(l, j) for j in range(i, n))
    # R: r holds up to and including the first step where l holds (or to the end).
    return all(sat(r, j) or any(sat(l, k) for k in range(i, j)) for j in range(i, n))


# -- data ------------------------------------------------------------------------------------------------

def _eval_data(f, trace, i: int, memo, env: tuple) -> bool:
    if isinstance(f, Truth):
        return _value(f.term, trace, i, env) is True
    if isinstance(f, Compare):
        return _compare(f, trace, i, env)
    return _quant(f, trace, i, memo, env)


def _quant(q: Quant, trace, i: int, memo, env: tuple) -> bool:
    path = q.ranges[0] if isinstance(q.ranges[0], Path) else None
    if path is not None:
        values = _elements(path, trace, i, env)
        bindings = [("value", v) for v in values]
    else:
        steps = [j for j in range(i) if trace[j].call is not None and any(prop_matches(r, trace[j].letter)
                                                                          for r in q.ranges)]
        if q.kind == "latest":
            steps = steps[-1:]
        bindings = [("call", j) for j in steps]
    results = (_sat(q.body, trace, i, memo, env + ((q.var, _freeze(b)),)) for b in bindings)
    if q.kind == "forall":
        return all(results)
    return any(results)  # exists, latest (its one binding, or none: false)


def _freeze(binding):
    """A hashable key for an environment binding (values are JSON: dicts and lists)."""
    import json

    kind, value = binding
    return (kind, value) if kind == "call" else (kind, json.dumps(value, sort_keys=True))


def _lookup(env: tuple, name: str):
    import json

    for var, (kind, value) in reversed(env):
        if var == name:
            return (kind, value) if kind == "call" else (kind, json.loads(value))
    return None


def _root(path: Path, trace, i: int, env: tuple):
    """The call (a dict) or the value a path starts from, or UNDEFINED."""
    bound = _lookup(env, path.root)
    if bound is not None:
        kind, value = bound
        return ("call", trace[value].call) if kind == "call" else ("value", value)
    step = trace[i]
    if step.call is None:
        return UNDEFINED
    if path.root == "this" or step.letter.split(".", 1)[0] == path.root:
        return ("call", step.call)
    return UNDEFINED


def _walk(value, parts):
    """The values at ``parts`` below ``value``: a list of values (several below a ``*``)."""
    values = [value]
    for part in parts:
        nxt = []
        for v in values:
            if part == "*":
                nxt.extend(v if isinstance(v, list) else list(v.values()) if isinstance(v, dict) else [])
            elif isinstance(part, int):
                if isinstance(v, list) and 0 <= part < len(v):
                    nxt.append(v[part])
            elif isinstance(v, dict) and part in v:
                nxt.append(v[part])
        values = nxt
    return values


def _values(path: Path, trace, i: int, env: tuple) -> list:
    """Every value a path names (one, none when undefined, several below ``*``)."""
    root = _root(path, trace, i, env)
    if root is UNDEFINED:
        return []
    kind, value = root
    parts = path.parts
    if kind == "call":
        head, parts = parts[0], parts[1:]
        if head not in value:
            return []
        value = value[head]
    return _walk(value, parts)


def _value(path: Path, trace, i: int, env: tuple):
    values = _values(path, trace, i, env)
    return values[0] if len(values) == 1 and "*" not in path.parts else UNDEFINED


def _elements(path: Path, trace, i: int, env: tuple) -> list:
    """What a value quantifier ranges over: the values below a ``*``, a list's elements, an object's
    values."""
    if "*" in path.parts:
        return _values(path, trace, i, env)
    value = _value(path, trace, i, env)
    if isinstance(value, list):
        return value
    return list(value.values()) if isinstance(value, dict) else []


def _term(term, trace, i: int, env: tuple):
    return term.value if isinstance(term, Literal) else _value(term, trace, i, env)


def _compare(c: Compare, trace, i: int, env: tuple) -> bool:
    if isinstance(c.left, Path) and "*" in c.left.parts:
        lefts = _values(c.left, trace, i, env)
        if _root(c.left, trace, i, env) is UNDEFINED:
            return False
    else:
        left = _term(c.left, trace, i, env)
        if left is UNDEFINED:
            return False
        lefts = [left]
    if isinstance(c.right, Path) and "*" in c.right.parts:
        if _root(c.right, trace, i, env) is UNDEFINED:
            return False
        right = _values(c.right, trace, i, env)
    else:
        right = _term(c.right, trace, i, env)
        if right is UNDEFINED:
            return False
    return all(compare_values(c.op, v, right) for v in lefts)


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def json_equal(a, b) -> bool:
    """Equality of JSON values (tuples read as lists; 1 == 1.0; true is not 1)."""
    if isinstance(a, tuple):
        a = list(a)
    if isinstance(b, tuple):
        b = list(b)
    if _number(a) and _number(b):
        return a == b
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    return a == b


def compare_values(op: str, left, right) -> bool:
    """``left op right`` on defined JSON values (see the module doc)."""
    if op == "==":
        return json_equal(left, right)
    if op == "!=":
        return not json_equal(left, right)
    if op in ("in", "notin"):
        if isinstance(right, dict):
            found = isinstance(left, str) and left in right
        elif isinstance(right, (list, tuple)):
            found = any(json_equal(left, r) for r in right)
        else:
            return False
        return found if op == "in" else not found
    if not (_number(left) and _number(right)):
        return False
    return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[op]

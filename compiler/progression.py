"""LTLf -> DFA by progression (formula derivatives) over the segment alphabet.

A state is a positive Boolean combination, in canonical DNF, of obligations on the rest of the trace:
``S(g)`` "a next step exists and g holds there" and ``W(g)`` "if a next step exists, g holds there".
Obligations range over the finitely many subformulas of the (negation normal form of the) input, so the
canonical states are finitely many and the exploration terminates; the result is then minimised.
A state accepts (the trace may end) when one of its clauses has no ``S`` obligation.
The initial state is ``S(f)``: traces are non-empty.
"""
from __future__ import annotations

from typing import Sequence

from .ast import Binary, Const, Formula, Last, Prop, Unary, prop_matches
from .automaton import DEFAULT_STATE_CAP, Automaton, build, minimize

# Core formulas are interned as small integers; ``nodes[id]`` is one of ("tt",) ("ff",)
# ("lit", prop_index, positive) ("and", a, b) ("or", a, b) ("x", strong, g) ("u", l, r) ("r", l, r) with
# children as ids, so hashing and equality stay O(1) however deep the formula (e.g. F[0,20000] a).
TT, FF = 0, 1


class _Interner(dict):
    def __init__(self):
        super().__init__({("tt",): TT, ("ff",): FF})
        self.nodes: list[tuple] = [("tt",), ("ff",)]

    def __call__(self, node: tuple) -> int:
        found = self.get(node)
        if found is None:
            found = self[node] = len(self.nodes)
            self.nodes.append(node)
        return found


def to_core(f: Formula, props: list[Prop], intern: _Interner, negate: bool = False) -> int:
    """Negation normal form of ``f`` (negated if ``negate``) with all sugar expanded; collects props."""
    if isinstance(f, Const):
        return TT if f.value != negate else FF
    if isinstance(f, Prop):
        key = Prop(f.segment, f.option)
        if key not in props:
            props.append(key)
        return intern(("lit", props.index(key), not negate))
    if isinstance(f, Last):
        return intern(("x", True, TT) if negate else ("x", False, FF))  # last = WX false; !last = X true
    if isinstance(f, Unary):
        return _core_unary(f, props, intern, negate)
    return _core_binary(f, props, intern, negate)


def _core_unary(f: Unary, props, intern, negate: bool) -> int:
    arg = lambda neg=negate: to_core(f.arg, props, intern, neg)  # noqa: E731
    if f.op == "!":
        return arg(not negate)
    if f.op in ("X", "WX"):
        strong = (f.op == "X") != negate
        return intern(("x", strong, arg()))
    eventually = (f.op == "F") != negate
    if f.bounds is None:
        return intern(("u", TT, arg()) if eventually else ("r", FF, arg()))
    return _bounded(eventually, f.bounds, arg(), intern)


def _bounded(eventually: bool, bounds: tuple[int, int], body: int, intern) -> int:
    """F[lo,hi] g = X^lo (g | X(g | ...)); G[lo,hi] g = WX^lo (g & WX(g & ...))."""
    lo, hi = bounds
    join = "or" if eventually else "and"
    acc = body
    for _ in range(hi - lo):
        acc = intern((join, body, intern(("x", eventually, acc))))
    for _ in range(lo):
        acc = intern(("x", eventually, acc))
    return acc


def _core_binary(f: Binary, props, intern, negate: bool) -> int:
    core = lambda g, neg: to_core(g, props, intern, neg)  # noqa: E731
    l, r, op = f.left, f.right, f.op
    if op == "->":
        return _implies(l, r, core, intern, negate)
    if op == "<->":  # (l -> r) & (r -> l);  negated: (l & !r) | (!l & r)
        return _junction(not negate, _implies(l, r, core, intern, negate), _implies(r, l, core, intern, negate), intern)
    if op in ("&", "|"):
        return _junction((op == "&") != negate, core(l, negate), core(r, negate), intern)
    if op == "W":  # l W r = r R (r | l);  !(l W r) = !r U (!r & !l)
        if not negate:
            return intern(("r", core(r, False), _junction(False, core(r, False), core(l, False), intern)))
        return intern(("u", core(r, True), _junction(True, core(r, True), core(l, True), intern)))
    until = (op == "U") != negate
    return intern(("u" if until else "r", core(l, negate), core(r, negate)))


def _implies(l, r, core, intern, negate: bool) -> int:
    """l -> r, i.e. !l | r; negated: l & !r."""
    if negate:
        return _junction(True, core(l, False), core(r, True), intern)
    return _junction(False, core(l, True), core(r, False), intern)


def _junction(conjunction: bool, a: int, b: int, intern) -> int:
    unit, zero = (TT, FF) if conjunction else (FF, TT)
    if a == zero or b == zero:
        return zero
    if a == unit:
        return b
    if b == unit:
        return a
    return intern(("and" if conjunction else "or", a, b))


# DNF over obligations: frozenset of clauses, clause = frozenset of (strong, core) atoms.
DNF_TRUE = frozenset({frozenset()})
DNF_FALSE: frozenset = frozenset()


def _atom(strong: bool, g: int) -> frozenset:
    if strong and g == FF:
        return DNF_FALSE
    if not strong and g == TT:
        return DNF_TRUE
    return frozenset({frozenset({(strong, g)})})


def _clause_ok(clause: frozenset) -> frozenset | None:
    """Simplify a clause; None when it is contradictory (must end and must go on)."""
    strong = {g for s, g in clause if s}
    if strong and (False, FF) in clause:
        return None
    if len(strong) > 1 and TT in strong:
        clause = clause - {(True, TT)}
    return frozenset(a for a in clause if a[0] or (True, a[1]) not in clause)


def _absorb(clauses) -> frozenset:
    ordered = sorted(set(clauses), key=len)
    kept: list[frozenset] = []
    for clause in ordered:
        if not any(k <= clause for k in kept):
            kept.append(clause)
    return frozenset(kept)


def dnf_or(a: frozenset, b: frozenset) -> frozenset:
    return _absorb(a | b)


def dnf_and(a: frozenset, b: frozenset) -> frozenset:
    clauses = (_clause_ok(x | y) for x in a for y in b)
    return _absorb(c for c in clauses if c is not None)


class Progressor:
    """Progression of core formulas by letter classes, memoised."""

    def __init__(self, truth: Sequence[tuple[bool, ...]], nodes: list[tuple]):
        self.truth = truth  # truth[cls][prop_index]
        self.nodes = nodes
        self.memo: dict = {}

    def prog(self, g: int, cls: int) -> frozenset:
        key = (g, cls)
        if key not in self.memo:
            self.memo[key] = self._prog(g, cls)
        return self.memo[key]

    def _prog(self, g: int, cls: int) -> frozenset:
        node = self.nodes[g]
        op = node[0]
        if op in ("tt", "ff"):
            return DNF_TRUE if op == "tt" else DNF_FALSE
        if op == "lit":
            return DNF_TRUE if self.truth[cls][node[1]] == node[2] else DNF_FALSE
        if op == "x":
            return _atom(node[1], node[2])
        if op in ("and", "or"):
            join = dnf_and if op == "and" else dnf_or
            return join(self.prog(node[1], cls), self.prog(node[2], cls))
        now_r, now_l = self.prog(node[2], cls), self.prog(node[1], cls)
        if op == "u":
            return dnf_or(now_r, dnf_and(now_l, _atom(True, g)))
        return dnf_and(now_r, dnf_or(now_l, _atom(False, g)))

    def step(self, state: frozenset, cls: int) -> frozenset:
        result = DNF_FALSE
        for clause in state:
            acc = DNF_TRUE
            for _, g in clause:
                acc = dnf_and(acc, self.prog(g, cls))
                if not acc:
                    break
            result = dnf_or(result, acc)
        return result


def letter_classes(alphabet: Sequence[str], props: Sequence[Prop]) -> tuple[list[int], list[tuple[bool, ...]]]:
    """Group letters that agree on every proposition: (class of each letter, truth row of each class)."""
    rows: dict[tuple[bool, ...], int] = {}
    of_letter = [rows.setdefault(tuple(prop_matches(p, a) for p in props), len(rows)) for a in alphabet]
    return of_letter, list(rows)


def formula_automaton(f: Formula, alphabet: Sequence[str], cap: int = DEFAULT_STATE_CAP) -> Automaton:
    """The minimal trimmed DFA accepting exactly the non-empty traces over ``alphabet`` satisfying ``f``.
    Raises AutomatonTooLarge when the construction passes ``cap`` states."""
    props: list[Prop] = []
    intern = _Interner()
    core = to_core(f, props, intern)
    of_letter, truth = letter_classes(alphabet, props)
    progressor = Progressor(truth, intern.nodes)
    initial = _atom(True, core)

    def successors(state):
        per_class = [progressor.step(state, c) for c in range(len(truth))]
        return [per_class[c] or None for c in of_letter]

    def accepting(state):
        return any(all(not strong for strong, _ in clause) for clause in state)

    return minimize(build(alphabet, initial, successors, accepting, cap, "formula automaton"))

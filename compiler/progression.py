"""LTLf -> DFA by progression (formula derivatives) over the segment alphabet.

A state is a positive Boolean combination, in canonical DNF, of obligations on the rest of the trace:
``S(g)`` "a next step exists and g holds there" and ``W(g)`` "if a next step exists, g holds there".
Obligations range over the subformulas of the (negation normal form of the) input and their bounded
residues, finitely many, so the exploration terminates; the result is then minimised.

Bounded operators stay symbolic: ``F[lo,hi] g`` is one node with its counters, progressed to
``S(F[lo-1,hi-1] g)`` (or, at ``lo = 0``, to "g now, or ``S(F[0,hi-1] g)``"), so a bound costs nothing
until the run reaches it and ``F[0,j] g`` subsumes ``F[0,k] g`` (j <= k) by comparing counters. The states
explored thus follow the size of the result, not of the bounds (``G(a -> F[0,n] b)``: n + 2 states).
A state accepts (the trace may end) when one of its clauses has no ``S`` obligation.
The initial state is ``S(f)``: traces are non-empty.
"""
from __future__ import annotations

from typing import Optional, Sequence

from .ast import Binary, Const, Formula, Last, Prop, Unary, prop_matches
from .automaton import DEFAULT_STATE_CAP, Automaton, build, minimize, within

# Core formulas are interned as small integers; ``nodes[id]`` is one of ("tt",) ("ff",)
# ("lit", prop_index, positive) ("and", a, b) ("or", a, b) ("x", strong, g) ("u", l, r) ("r", l, r)
# ("fb", lo, hi, g) (F[lo,hi] g) ("gb", lo, hi, g) (G[lo,hi] g) with children as ids, so hashing and
# equality stay O(1) however deep the formula.
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
        body = arg()
        if at_end(body, intern.nodes) is eventually:  # F g with g true at any last step; G g, false
            return TT if eventually else FF
        return intern(("u", TT, body) if eventually else ("r", FF, body))
    return _bounded(eventually, f.bounds, arg(), intern)


def at_end(g: int, nodes: list[tuple]):
    """The value of core formula g at the last step of a trace when it does not depend on that step's
    letter (None when it does): WX h and G[lo,hi] h with lo >= 1 hold there, X h and F[lo,hi] h fail.
    So F g is true and G g false on every non-empty trace when g is true / false at the end."""
    node = nodes[g]
    op = node[0]
    if op in ("tt", "ff"):
        return op == "tt"
    if op == "lit":
        return None
    if op in ("and", "or"):
        left, right = at_end(node[1], nodes), at_end(node[2], nodes)
        zero = op == "or"  # the value that decides: True for or, False for and
        return zero if zero in (left, right) else (not zero if left == right == (not zero) else None)
    if op == "x":
        return not node[1]
    if op in ("u", "r"):  # at one step: l U r and l R r are r there
        return at_end(node[2], nodes)
    if node[1] > 0:
        return op == "gb"
    return at_end(node[3], nodes)


def _bounded(eventually: bool, bounds: tuple[int, int], body: int, intern) -> int:
    """The core node of F[lo,hi] g (``eventually``) or G[lo,hi] g, kept symbolic (see bounded_node)."""
    return bounded_node(eventually, bounds[0], bounds[1], body, intern)


def bounded_node(eventually: bool, lo: int, hi: int, body: int, intern) -> int:
    """F[lo,hi] g / G[lo,hi] g in canonical form: [0,0] is g itself; F of false is false, G of true is
    true; F[lo,hi] true ("lo more steps exist") and G[lo,hi] false ("no step lo ahead") become [lo,lo]."""
    if lo == hi == 0:
        return body
    if body == (FF if eventually else TT):
        return body
    if body == (TT if eventually else FF):
        hi = lo
        if lo == 0:
            return body
    return intern(("fb" if eventually else "gb", lo, hi, body))


def unfold_bounded(node: tuple, intern) -> tuple:
    """F[lo,hi] g with lo >= 1 as the equivalent ("x", True, F[lo-1,hi-1] g); G[lo,hi] g as
    ("x", False, G[lo-1,hi-1] g). ``node`` must have lo >= 1."""
    op, lo, hi, body = node
    eventually = op == "fb"
    return ("x", eventually, bounded_node(eventually, lo - 1, hi - 1, body, intern))


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


IMPLICATION_DEPTH = 64


class Obligations:
    """DNF algebra over obligations with sound (incomplete) syntactic implication: a clause implied by
    another is dropped from a conjunction, a clause that implies another is dropped from a disjunction.
    This keeps e.g. "at least 3 more steps" | "at least 2 more steps" as one obligation, so the explored
    state space stays close to the minimal one."""

    def __init__(self, intern: "_Interner"):
        self.intern = intern
        self.nodes = intern.nodes
        self.memo: dict = {}
        self.joins: dict = {}
        self.negations: dict[int, int] = {}

    def implies(self, g: int, h: int, depth: int = 0) -> bool:
        """Whether core formula g implies h on every (non-empty) suffix; False when unsure."""
        if g == h or h == TT or g == FF:
            return True
        if g == TT or h == FF or depth > IMPLICATION_DEPTH:
            return False
        key = (g, h)
        if key not in self.memo:
            self.memo[key] = self._implies(self.nodes[g], self.nodes[h], g, h, depth + 1)
        return self.memo[key]

    def _implies(self, ng: tuple, nh: tuple, g: int, h: int, depth: int) -> bool:
        imp = lambda a, b: self.implies(a, b, depth)  # noqa: E731
        if nh[0] == "and":
            return imp(g, nh[1]) and imp(g, nh[2])
        if ng[0] == "or":
            return imp(ng[1], h) and imp(ng[2], h)
        if ng[0] == "and" and (imp(ng[1], h) or imp(ng[2], h)):
            return True
        if nh[0] == "or" and (imp(g, nh[1]) or imp(g, nh[2])):
            return True
        if ng[0] in ("fb", "gb") or nh[0] in ("fb", "gb"):
            return self._implies_bounded(ng, nh, g, h, imp)
        if ng[0] == "x" and nh[0] == "x":
            return (ng[1] or not nh[1]) and imp(ng[2], nh[2])
        if nh[0] == "u" and imp(g, nh[2]):  # r implies l U r
            return True
        if ng[0] == "r" and imp(ng[2], h):  # l R r implies r
            return True
        if ng[0] == nh[0] and ng[0] in ("u", "r"):  # both are monotone in both arguments
            return imp(ng[1], nh[1]) and imp(ng[2], nh[2])
        return False

    def _implies_bounded(self, ng: tuple, nh: tuple, g: int, h: int, imp) -> bool:
        """Implication where one side is a bounded F / G: windows compared by their counters."""
        if ng[0] == nh[0]:  # F[l,h] is monotone in its window, G[l,h] antitone
            inner, outer = (ng, nh) if ng[0] == "fb" else (nh, ng)
            return outer[1] <= inner[1] and inner[2] <= outer[2] and imp(ng[3], nh[3])
        if nh[0] == "fb" and nh[1] == 0 and imp(g, nh[3]):  # g now implies F[0,k] g
            return True
        if ng[0] == "gb" and ng[1] == 0 and imp(ng[3], h):  # G[0,k] g implies g now
            return True
        if ng[0] == "fb" and nh[0] == "u" and nh[1] == TT:  # F[l,k] g implies F g
            return imp(ng[3], nh[2])
        if ng[0] == "r" and ng[1] == FF and nh[0] == "gb":  # G g implies G[l,k] g
            return imp(ng[2], nh[3])
        ug, uh = self._as_next(ng, weaker=True), self._as_next(nh, weaker=False)
        if ug[0] == "x" and uh[0] == "x":  # X against F[l,k] / G[l,k]
            return (ug[1] or not uh[1]) and imp(ug[2], uh[2])
        return False

    def _as_next(self, node: tuple, weaker: bool) -> tuple:
        """A bounded node as an X node: equivalent when lo >= 1 (unfold_bounded); at lo = 0, G[0,k] g
        gives the weaker WX G[0,k-1] g (for a left side) and F[0,k] g the stronger X F[0,k-1] g (for a
        right side). Any other node is returned as it is."""
        if node[0] not in ("fb", "gb"):
            return node
        if node[1] > 0:
            return unfold_bounded(node, self.intern)
        if (node[0] == "gb") != weaker:
            return node
        return unfold_bounded((node[0], 1, node[2], node[3]), self.intern)

    def atom_implies(self, a: tuple, b: tuple) -> bool:
        """S(g) => S(h), S(g) => W(h), W(g) => W(h) when g => h."""
        return (a[0] or not b[0]) and self.implies(a[1], b[1])

    def clause_implies(self, c: frozenset, d: frozenset) -> bool:
        return all(any(self.atom_implies(a, b) for a in c) for b in d)

    def clause(self, atoms: frozenset) -> frozenset | None:
        """A conjunction of atoms without implied atoms; None when contradictory: ``S(g) & W(h)`` or
        ``S(g) & S(h)`` where g implies not h (must end and go on; ``F[0,3] a`` against ``G[0,9] !a``)."""
        if len(atoms) < 2:
            return atoms
        if (False, FF) in atoms and any(strong for strong, _ in atoms):
            return None
        kept: list[tuple] = []
        for atom in sorted(self.merge_windows(atoms, "gb", same_strength=False)):
            if any(self.atom_implies(k, atom) for k in kept):
                continue
            kept = [k for k in kept if not self.atom_implies(atom, k)] + [atom]
        if any(strong and self.implies(g, self.negation(h)) for strong, g in kept for _, h in kept if h != g):
            return None
        return frozenset(kept)

    def merge_windows(self, atoms, op: str, same_strength: bool) -> list[tuple]:
        """Atoms over bounded ``op`` nodes (``fb`` in a disjunction, ``gb`` in a conjunction) with one body
        and overlapping or adjacent windows merged into one: F[a,b] g | F[c,d] g = F[a,max(b,d)] g when
        c <= b + 1 (same strength: S(x) | S(y) = S(x | y)); G likewise in a conjunction, strong if either
        is (S(x) & W(y) = S(x & y)). Other atoms are returned as they are."""
        rest, groups = [], {}
        for strong, g in atoms:
            node = self.nodes[g]
            if node[0] != op:
                rest.append((strong, g))
                continue
            groups.setdefault((node[3], strong if same_strength else None), []).append((node[1], node[2], strong))
        for (body, _), windows in groups.items():
            current = None
            for lo, hi, strong in sorted(windows):
                if current is not None and lo <= current[1] + 1:
                    current = (current[0], max(current[1], hi), current[2] or strong)
                    continue
                if current is not None:
                    rest.append((current[2], bounded_node(op == "fb", current[0], current[1], body, self.intern)))
                current = (lo, hi, strong)
            rest.append((current[2], bounded_node(op == "fb", current[0], current[1], body, self.intern)))
        return rest

    def negation(self, g: int) -> int:
        """The core formula of not g, in negation normal form (memoised)."""
        found = self.negations.get(g)
        if found is None:
            found = self.negations[g] = self._negate(self.nodes[g])
        return found

    def _negate(self, node: tuple) -> int:
        op, neg = node[0], self.negation
        if op in ("tt", "ff"):
            return FF if op == "tt" else TT
        if op == "lit":
            return self.intern(("lit", node[1], not node[2]))
        if op in ("and", "or"):
            return self.intern(("or" if op == "and" else "and", neg(node[1]), neg(node[2])))
        if op == "x":
            return self.intern(("x", not node[1], neg(node[2])))
        if op in ("u", "r"):
            return self.intern(("r" if op == "u" else "u", neg(node[1]), neg(node[2])))
        return bounded_node(op == "gb", node[1], node[2], neg(node[3]), self.intern)

    def absorb(self, clauses) -> frozenset:
        """A disjunction without clauses that imply another one (deterministic order)."""
        clauses = set(clauses)
        if len(clauses) < 2:
            return frozenset(clauses)
        singles = [next(iter(c)) for c in clauses if len(c) == 1]
        if len(singles) > 1:
            merged = self.merge_windows(singles, "fb", same_strength=True)
            clauses = {c for c in clauses if len(c) != 1} | {frozenset({atom}) for atom in merged}
        kept: list[frozenset] = []
        for clause in sorted(clauses, key=lambda c: (len(c), sorted(c))):
            if any(self.clause_implies(clause, k) for k in kept):
                continue
            kept = [k for k in kept if not self.clause_implies(k, clause)] + [clause]
        return frozenset(kept)

    def or_(self, a: frozenset, b: frozenset) -> frozenset:
        if not a or b == DNF_TRUE or a == b:
            return b if not a or b == DNF_TRUE else a
        if not b or a == DNF_TRUE:
            return a
        return self._memo("or", a, b, lambda: self.absorb(a | b))

    def and_(self, a: frozenset, b: frozenset) -> frozenset:
        if not a or not b:
            return DNF_FALSE
        if a == DNF_TRUE or b == DNF_TRUE:
            return b if a == DNF_TRUE else a
        return self._memo("and", a, b, lambda: self.absorb(
            c for c in (self.clause(x | y) for x in a for y in b) if c is not None))

    def _memo(self, op: str, a: frozenset, b: frozenset, compute) -> frozenset:
        key = (op, a, b)
        if key not in self.joins:
            self.joins[key] = compute()
        return self.joins[key]


class Progressor:
    """Progression of core formulas by letter classes, memoised."""

    def __init__(self, truth: Sequence[tuple[bool, ...]], intern: _Interner):
        self.truth = truth  # truth[cls][prop_index]
        self.intern = intern
        self.nodes = intern.nodes
        self.dnf = Obligations(intern)
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
        dnf = self.dnf
        if op in ("fb", "gb"):
            return self._prog_bounded(node, cls)
        if op in ("and", "or"):
            join = dnf.and_ if op == "and" else dnf.or_
            return join(self.prog(node[1], cls), self.prog(node[2], cls))
        now_r, now_l = self.prog(node[2], cls), self.prog(node[1], cls)
        if op == "u":
            return dnf.or_(now_r, dnf.and_(now_l, _atom(True, g)))
        return dnf.and_(now_r, dnf.or_(now_l, _atom(False, g)))

    def _prog_bounded(self, node: tuple, cls: int) -> frozenset:
        """F[lo,hi] g: S(F[lo-1,hi-1] g) while lo > 0, then g now or S(F[0,hi-1] g); G dually, weak."""
        op, lo, hi, body = node
        eventually = op == "fb"
        if lo > 0:
            return _atom(eventually, bounded_node(eventually, lo - 1, hi - 1, body, self.intern))
        now = self.prog(body, cls)
        later = _atom(eventually, bounded_node(eventually, 0, hi - 1, body, self.intern))
        return self.dnf.or_(now, later) if eventually else self.dnf.and_(now, later)

    def step(self, state: frozenset, cls: int) -> frozenset:
        result = DNF_FALSE
        for clause in state:
            acc = DNF_TRUE
            for _, g in clause:
                acc = self.dnf.and_(acc, self.prog(g, cls))
                if not acc:
                    break
            result = self.dnf.or_(result, acc)
        return result


def letter_classes(alphabet: Sequence[str], props: Sequence[Prop]) -> tuple[list[int], list[tuple[bool, ...]]]:
    """Group letters that agree on every proposition: (class of each letter, truth row of each class)."""
    rows: dict[tuple[bool, ...], int] = {}
    of_letter = [rows.setdefault(tuple(prop_matches(p, a) for p in props), len(rows)) for a in alphabet]
    return of_letter, list(rows)


def formula_automaton(f: Formula, alphabet: Sequence[str], cap: int = DEFAULT_STATE_CAP,
                      context: Optional[Automaton] = None) -> Automaton:
    """The minimal trimmed DFA accepting exactly the non-empty traces over ``alphabet`` satisfying ``f``
    (and accepted by ``context``, a DFA over the same alphabet, when given: the formula is then progressed
    only along runs ``context`` allows). Raises AutomatonTooLarge when the construction passes ``cap``
    states."""
    props: list[Prop] = []
    intern = _Interner()
    core = to_core(f, props, intern)
    of_letter, truth = letter_classes(alphabet, props)
    progressor = Progressor(truth, intern)

    def successors(state):
        per_class = [progressor.step(state, c) for c in range(len(truth))]
        return [per_class[c] or None for c in of_letter]

    def accepting(state):
        return any(all(not strong for strong, _ in clause) for clause in state)

    initial, successors, accepting = within(context, _atom(True, core), successors, accepting)
    return minimize(build(alphabet, initial, successors, accepting, cap, "formula automaton"))

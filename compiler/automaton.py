"""Deterministic automata over segment letters: the DFA type, minimisation, trimming, products.

An ``Automaton`` is partial: a missing transition goes to an implicit rejecting sink. After ``minimize``
every state is reachable from the initial state and can reach acceptance (except a lone initial state of
an empty language), states are numbered in breadth-first order, and no two states are equivalent.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

from .errors import AutomatonTooLarge

DEAD = -1
DEFAULT_STATE_CAP = 100_000


@dataclass(frozen=True)
class Automaton:
    """A DFA: ``delta[q][i]`` is the target of letter ``alphabet[i]`` from state ``q`` (DEAD if none)."""

    alphabet: tuple[str, ...]
    initial: int
    accepting: frozenset[int]
    delta: tuple[tuple[int, ...], ...]

    @property
    def states(self) -> range:
        return range(len(self.delta))

    def index(self, letter: str) -> int:
        """Position of a letter in the alphabet. Raises KeyError naming the letter when it is unknown."""
        try:
            return self._letter_index()[letter]
        except KeyError:
            raise KeyError(f"{letter!r} is not a letter of this automaton's alphabet") from None

    def _letter_index(self) -> dict[str, int]:
        cached = self.__dict__.get("_index")
        if cached is None:
            cached = {name: i for i, name in enumerate(self.alphabet)}
            object.__setattr__(self, "_index", cached)
        return cached

    def step(self, state: Optional[int], letter: str) -> Optional[int]:
        """The state after reading ``letter`` from ``state``; None once the run can no longer be accepted."""
        if state is None:
            return None
        target = self.delta[state][self.index(letter)]
        return None if target == DEAD else target

    def run(self, trace: Iterable[str]) -> Optional[int]:
        """The state after reading a whole trace from the initial state (None if it fell off)."""
        state: Optional[int] = self.initial
        for name in trace:
            state = self.step(state, name)
        return state

    def accepts(self, trace: Sequence[str]) -> bool:
        """Whether the automaton accepts a trace (a sequence of letters)."""
        state = self.run(trace)
        return state is not None and state in self.accepting

    def allowed(self, state: int) -> tuple[str, ...]:
        """The letters that keep acceptance reachable from ``state``."""
        return tuple(self.alphabet[i] for i, t in enumerate(self.delta[state]) if t != DEAD)

    @property
    def is_empty(self) -> bool:
        """Whether the language is empty (no trace is accepted)."""
        return not self.accepting


def build(alphabet: Sequence[str], initial, successors, accepting, cap: int = DEFAULT_STATE_CAP,
          what: str = "automaton") -> Automaton:
    """Explore hashable states from ``initial`` with ``successors(state) -> targets per letter`` (None for
    the sink) and ``accepting(state) -> bool``. Raises AutomatonTooLarge past ``cap`` states."""
    ids = {initial: 0}
    order, rows = [initial], []
    for state in order:
        row = []
        for target in successors(state):
            if target is None:
                row.append(DEAD)
                continue
            if target not in ids:
                if len(ids) >= cap:
                    raise AutomatonTooLarge(f"the {what} needs more than {cap} states; simplify it or raise the cap")
                ids[target] = len(order)
                order.append(target)
            row.append(ids[target])
        rows.append(tuple(row))
    final = frozenset(i for i, state in enumerate(order) if accepting(state))
    return Automaton(tuple(alphabet), 0, final, tuple(rows))


def within(context: Optional[Automaton], initial, successors, accepting):
    """An on-the-fly construction (as ``build`` takes it) restricted to the language of ``context``:
    states become (context state, state) pairs, explored only while ``context`` can still accept, so
    a construction too large alone stays as small as its intersection with ``context``. Returns the
    (initial, successors, accepting) triple unchanged when ``context`` is None."""
    if context is None:
        return initial, successors, accepting

    def paired(pair):
        q, state = pair
        return [None if c == DEAD or t is None else (c, t) for c, t in zip(context.delta[q], successors(state))]

    def paired_accepting(pair):
        return pair[0] in context.accepting and accepting(pair[1])

    return (context.initial, initial), paired, paired_accepting


def minimize(aut: Automaton) -> Automaton:
    """The minimal trimmed DFA of the same language, states renumbered breadth-first."""
    live = _coreachable(aut) & _reachable(aut)
    if aut.initial not in live:
        return Automaton(aut.alphabet, 0, frozenset(), (tuple(DEAD for _ in aut.alphabet),))
    block = _refine(aut, live)
    return _quotient(aut, block)


def _reachable(aut: Automaton) -> set[int]:
    seen, queue = {aut.initial}, deque([aut.initial])
    while queue:
        for target in aut.delta[queue.popleft()]:
            if target != DEAD and target not in seen:
                seen.add(target)
                queue.append(target)
    return seen


def _coreachable(aut: Automaton) -> set[int]:
    preds: list[list[int]] = [[] for _ in aut.states]
    for q, row in enumerate(aut.delta):
        for target in row:
            if target != DEAD:
                preds[target].append(q)
    seen, queue = set(aut.accepting), deque(aut.accepting)
    while queue:
        for p in preds[queue.popleft()]:
            if p not in seen:
                seen.add(p)
                queue.append(p)
    return seen


def _refine(aut: Automaton, live: set[int]) -> dict[int, int]:
    """Hopcroft partition refinement of the live states: ``block[q]`` equal iff q's futures are equal.
    States outside ``live`` and missing transitions go to an explicit sink. O(n k log n)."""
    states = sorted(live)
    sink = len(states)
    index = {q: i for i, q in enumerate(states)}
    inverse = _inverse(aut, states, index, sink)
    block_of = [0 if q in aut.accepting else 1 for q in states] + [1]
    blocks = [set(), set()]
    for i, b in enumerate(block_of):
        blocks[b].add(i)
    blocks = [b for b in blocks if b]
    block_of = [0] * (sink + 1)
    for b, members in enumerate(blocks):
        for i in members:
            block_of[i] = b
    smaller = min(range(len(blocks)), key=lambda b: len(blocks[b]))  # Hopcroft: one initial splitter
    pending = {(smaller, a) for a in range(len(aut.alphabet))}
    while pending:
        splitter, letter = pending.pop()
        _split(blocks, block_of, pending, inverse, splitter, letter, len(aut.alphabet))
    return {q: block_of[index[q]] for q in states}


def _inverse(aut: Automaton, states: list[int], index: dict[int, int], sink: int) -> list[list[list[int]]]:
    """``inverse[a][j]``: the (indices of) states whose letter ``a`` leads to state index ``j``."""
    inverse = [[[] for _ in range(sink + 1)] for _ in aut.alphabet]
    for i, q in enumerate(states):
        for a, t in enumerate(aut.delta[q]):
            inverse[a][index.get(t, sink)].append(i)
    for a in range(len(aut.alphabet)):
        inverse[a][sink].append(sink)
    return inverse


def _split(blocks, block_of, pending, inverse, splitter: int, letter: int, letters: int) -> None:
    touched: dict[int, list[int]] = {}
    for j in list(blocks[splitter]):
        for p in inverse[letter][j]:
            touched.setdefault(block_of[p], []).append(p)
    for b, members in touched.items():
        if len(members) == len(blocks[b]):
            continue
        new = len(blocks)
        blocks.append(set(members))
        blocks[b].difference_update(members)
        for p in members:
            block_of[p] = new
        for a in range(letters):
            if (b, a) in pending:
                pending.add((new, a))
            else:
                pending.add((new, a) if len(blocks[new]) <= len(blocks[b]) else (b, a))


def _quotient(aut: Automaton, block: dict[int, int]) -> Automaton:
    """The automaton of the blocks, numbered breadth-first from the initial block."""
    rep = {}
    for q in sorted(block):
        rep.setdefault(block[q], q)

    def successors(b):
        return [block.get(t) if t != DEAD else None for t in aut.delta[rep[b]]]

    return build(aut.alphabet, block[aut.initial], successors, lambda b: rep[b] in aut.accepting)


def product(left: Automaton, right: Automaton, cap: int = DEFAULT_STATE_CAP) -> Automaton:
    """The minimal DFA of the intersection of two languages over the same alphabet."""
    if left.alphabet != right.alphabet:
        raise ValueError("product of automata over different alphabets")

    def successors(pair):
        p, q = pair
        return [None if a == DEAD or b == DEAD else (a, b) for a, b in zip(left.delta[p], right.delta[q])]

    def accepting(pair):
        return pair[0] in left.accepting and pair[1] in right.accepting

    raw = build(left.alphabet, (left.initial, right.initial), successors, accepting, cap, "product automaton")
    return minimize(raw)


def intersect_all(parts: Sequence[Automaton], alphabet: Sequence[str], cap: int = DEFAULT_STATE_CAP) -> Automaton:
    """The minimal DFA of the intersection of all parts, smallest first (all non-empty traces if none)."""
    if not parts:
        return universal(alphabet)
    ordered = sorted(parts, key=lambda a: len(a.delta))
    result = ordered[0]
    for part in ordered[1:]:
        result = product(result, part, cap)
    return result


def universal(alphabet: Sequence[str]) -> Automaton:
    """The minimal DFA of every non-empty trace."""
    return Automaton(tuple(alphabet), 0, frozenset({1}),
                     (tuple(1 for _ in alphabet), tuple(1 for _ in alphabet)))


def equivalent_states(aut: Automaton) -> list[tuple[int, int]]:
    """Pairs of distinct states with the same future language (empty for a minimal DFA)."""
    live = set(aut.states)
    block = _refine(aut, live)
    return [(p, q) for p in aut.states for q in aut.states if p < q and block[p] == block[q]]


def shortest_to_accept(aut: Automaton) -> list[Optional[int]]:
    """Per state, the fewest letters that lead to acceptance (None where impossible)."""
    preds: list[list[int]] = [[] for _ in aut.states]
    for q, row in enumerate(aut.delta):
        for t in row:
            if t != DEAD:
                preds[t].append(q)
    dist: list[Optional[int]] = [None] * len(aut.delta)
    queue = deque(sorted(aut.accepting))
    for q in queue:
        dist[q] = 0
    while queue:
        q = queue.popleft()
        for p in preds[q]:
            if dist[p] is None:
                dist[p] = dist[q] + 1
                queue.append(p)
    return dist


def shortest_accepted(aut: Automaton) -> Optional[list[str]]:
    """A shortest accepted trace (letters), or None if the language is empty."""
    dist = shortest_to_accept(aut)
    if dist[aut.initial] is None:
        return None
    trace, state = [], aut.initial
    while dist[state] != 0:
        i, state = next((i, t) for i, t in enumerate(aut.delta[state])
                        if t != DEAD and dist[t] == dist[state] - 1)
        trace.append(aut.alphabet[i])
    return trace

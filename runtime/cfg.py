"""Shortest completions of context-free content, for token budgets.

llguidance says which tokens a grammar allows next, but not how far the end is. ``Chart`` follows the
same text byte by byte with an Earley recognizer over the segment's ``Bnf`` (scannerless: each terminal
is a byte-level DFA, an outlines-core index over the 256 single bytes) and answers ``completion()``: a
shortest byte string that finishes the content from here. It is computed from the chart, never searched:

* ``suffix[(p, d)]``: a shortest text the rest of production ``p`` after its dot ``d`` derives (the
  fixed point of ``compiler.cfg.shortest_strings`` over the rules);
* ``up[o][A]``: a shortest text that finishes the whole content once a nonterminal ``A`` begun at
  position ``o`` is complete — from the items of set ``o`` waiting for ``A`` (a fixed point within the
  set, earlier sets' tables reused); it does not depend on where ``A`` ends, so each set's table is made
  once, when the set is;
* the completion at position ``n``: the best, over the items of set ``n``, of the rest of the item
  (with the shortest tail of a terminal part-way through) followed by ``up`` of its origin.

The completion is a plan the decode loop may force; it is always checked against the llguidance matcher
before it is relied on (``runtime.masks``), so a difference between the two parsers can cost a model's
choice, never the guarantee.
"""
from __future__ import annotations

from collections import deque
from typing import Optional

from ltlagent.compiler.cfg import START, Bnf, shortest_strings


def _shorter(a: bytes, b: Optional[bytes]) -> bool:
    return b is None or (len(a), a) < (len(b), b)


class ByteDfa:
    """One terminal as a DFA over bytes, with a shortest tail to acceptance from each state."""

    def __init__(self, regex: str):
        from outlines_core import Index

        from ltlagent.compiler.content import _byte_vocabulary

        index = Index(regex, _byte_vocabulary())
        self.initial = index.get_initial_state()
        self.delta = {s: {b: t for b, t in moves.items() if b < 256} for s, moves in index.get_transitions().items()}
        self.finals = set(index.get_final_states())
        preds: dict = {}
        for state, moves in sorted(self.delta.items()):
            for byte, target in sorted(moves.items()):
                preds.setdefault(target, []).append((state, byte))
        self.tail = {s: b"" for s in sorted(self.finals)}
        queue = deque(sorted(self.finals))
        while queue:
            target = queue.popleft()
            for state, byte in preds.get(target, ()):
                if state not in self.tail:
                    self.tail[state] = bytes([byte]) + self.tail[target]
                    queue.append(state)


class Grammar:
    """The static tables of a ``Bnf`` the charts share."""

    def __init__(self, bnf: Bnf):
        self.bnf = bnf
        self.prods = [(lhs, alt) for lhs, alts in bnf.rules.items() for alt in alts]
        self.by_lhs: dict = {}
        for pid, (lhs, _) in enumerate(self.prods):
            self.by_lhs.setdefault(lhs, []).append(pid)
        self.dfa = {name: ByteDfa(term.regex) for name, term in bnf.terminals.items()}
        best = shortest_strings(bnf)
        self.suffix: dict = {}
        for pid, (_, rhs) in enumerate(self.prods):
            tail: Optional[bytes] = b""
            self.suffix[(pid, len(rhs))] = tail
            for dot in range(len(rhs) - 1, -1, -1):
                tail = None if tail is None or rhs[dot] not in best else best[rhs[dot]] + tail
                self.suffix[(pid, dot)] = tail
        self.ignore = tuple(bnf.ignore)


class _Set:
    __slots__ = ("items", "waiting", "lex", "ign", "here", "up")

    def __init__(self):
        self.items: set = set()
        self.waiting: dict = {}
        self.lex: set = set()    # (pid, dot, origin, dfa state): inside terminal rhs[dot], at least one byte in
        self.ign: set = set()    # (terminal, dfa state, origin): inside an ignored terminal
        self.here: set = set()   # nonterminals completed with this set as their origin (nullable here)
        self.up: dict = {}


class Chart:
    """An Earley chart over the bytes written so far; ``push`` a byte (False: the grammar refuses it,
    nothing changes), ``pop`` the last one, ``completion()`` a shortest finishing text."""

    def __init__(self, grammar: Grammar):
        self.g = grammar
        self.sets: list[_Set] = []
        first = _Set()
        self.sets.append(first)
        self._close(0, [(pid, 0, 0) for pid in grammar.by_lhs[START]])

    def _close(self, k: int, work: list) -> None:
        g, s = self.g, self.sets[k]
        prods, dfa = g.prods, g.dfa
        boundary = False  # some item waits for a symbol that starts here: ignored text may come first
        while work:
            item = work.pop()
            if item in s.items:
                continue
            s.items.add(item)
            pid, dot, origin = item
            lhs, rhs = prods[pid]
            if dot == len(rhs):
                if origin == k:
                    s.here.add(lhs)
                work.extend((p2, d2 + 1, o2) for p2, d2, o2 in list(self.sets[origin].waiting.get(lhs, ())))
                continue
            sym = rhs[dot]
            boundary = True
            if sym in dfa:
                s.lex.add((pid, dot, origin, dfa[sym].initial))
                continue
            s.waiting.setdefault(sym, []).append(item)
            if sym in s.here:
                work.append((pid, dot + 1, origin))
            work.extend((q, 0, k) for q in g.by_lhs.get(sym, ()))
        if boundary:
            s.ign |= {(t, dfa[t].initial, k) for t in g.ignore}
        self._up_table(k)

    def _copyable(self, origin: int) -> list:
        """The items of set ``origin`` that an ignored text after it carries on (all but the finished
        whole: nothing is ignored after the content's END)."""
        return [it for it in self.sets[origin].items
                if not (self.g.prods[it[0]][0] == START and it[1] == len(self.g.prods[it[0]][1]))]

    def _up_table(self, k: int) -> None:
        g, s = self.g, self.sets[k]
        table = s.up
        if k == 0:
            table[START] = b""
        changed = True
        while changed:
            changed = False
            for nt, waiters in s.waiting.items():
                for pid, dot, origin in waiters:
                    suffix = g.suffix[(pid, dot + 1)]
                    if suffix is None:
                        continue
                    rest = (table if origin == k else self.sets[origin].up).get(g.prods[pid][0])
                    if rest is None:
                        continue
                    candidate = suffix + rest
                    if _shorter(candidate, table.get(nt)):
                        table[nt] = candidate
                        changed = True

    def push(self, byte: int) -> bool:
        g, s, k = self.g, self.sets[-1], len(self.sets) - 1
        lex, ign, work = set(), set(), []
        for pid, dot, origin, state in s.lex:
            d = g.dfa[g.prods[pid][1][dot]]
            target = d.delta.get(state, {}).get(byte)
            if target is None:
                continue
            if d.delta.get(target):
                lex.add((pid, dot, origin, target))
            if target in d.finals:
                work.append((pid, dot + 1, origin))
        for term, state, origin in s.ign:
            d = g.dfa[term]
            target = d.delta.get(state, {}).get(byte)
            if target is None:
                continue
            if d.delta.get(target):
                ign.add((term, target, origin))
            if target in d.finals:
                work.extend(self._copyable(origin))
        if not lex and not ign and not work:
            return False
        new = _Set()
        self.sets.append(new)
        new.lex, new.ign = lex, ign
        self._close(k + 1, work)
        return True

    def push_bytes(self, data: bytes) -> int:
        """Push bytes until one is refused; how many were taken."""
        for i, byte in enumerate(data):
            if not self.push(byte):
                return i
        return len(data)

    def pop(self, count: int = 1) -> None:
        del self.sets[len(self.sets) - count:]

    @property
    def length(self) -> int:
        return len(self.sets) - 1

    def completion(self) -> Optional[bytes]:
        """A shortest text that finishes the content from here (b"" when it is finished), or None when
        this parser sees none (llguidance's may still)."""
        g, k, s = self.g, len(self.sets) - 1, self.sets[-1]
        best: Optional[bytes] = None
        for pid, dot, origin in s.items:
            suffix = g.suffix[(pid, dot)]
            rest = self.sets[origin].up.get(g.prods[pid][0])
            if suffix is not None and rest is not None and _shorter(suffix + rest, best):
                best = suffix + rest
        for pid, dot, origin, state in s.lex:
            d = g.dfa[g.prods[pid][1][dot]]
            if state == d.initial or state not in d.tail:
                continue
            suffix = g.suffix[(pid, dot + 1)]
            rest = self.sets[origin].up.get(g.prods[pid][0])
            if suffix is not None and rest is not None and _shorter(d.tail[state] + suffix + rest, best):
                best = d.tail[state] + suffix + rest
        del k
        return best

"""The behaviour's automaton: one minimal DFA per rule, intersected; rules too large alone are built
inside the intersection of the others.

A rule is first built alone within ``ALONE_BUDGET`` states (most rules are small). The ones that pass
it are built afterwards *within* the intersection of everything built so far (``automaton.within``):
``G(draft -> X X ... X answer)`` alone needs 2^k states, but beside a pattern that allows one ``draft``
it is only explored along the runs the pattern allows. A rule too large even there is built alone with
the whole cap and intersected, so the guided attempt never makes a spec fail that used to compile.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence

from .ast import Const, Unary, Binary, Formula, Rule
from .automaton import Automaton, product, universal
from .errors import AutomatonTooLarge
from .patterns import pattern_automaton
from .progression import formula_automaton

ALONE_BUDGET = 4096  # states a rule may take when built alone before it is built within the others

Builder = Callable[[int, Optional[Automaton]], Automaton]  # (cap, context) -> minimal DFA


def split_conjunction(formula: Formula) -> list[Formula]:
    """The top-level conjuncts of a formula (``a & (b & c)`` -> [a, b, c])."""
    parts, stack = [], [formula]
    while stack:
        node = stack.pop()
        if isinstance(node, Binary) and node.op == "&":
            stack += [node.right, node.left]
        else:
            parts.append(node)
    return parts


def formula_parts_automaton(formula: Formula, alphabet: Sequence[str], cap: int,
                            context: Optional[Automaton] = None) -> Automaton:
    """The minimal DFA of a formula (within ``context`` when given), one top-level conjunct at a time.
    Raises AutomatonTooLarge past ``cap`` states."""
    builders = [_formula_builder(c, tuple(alphabet)) for c in split_conjunction(formula)]
    if context is not None:
        for build in builders:
            context = build(cap, context)
        return context
    return conjunction(builders, alphabet, cap)[0]


def rule_automaton(rule: Rule, alphabet: Sequence[str], cap: int,
                   context: Optional[Automaton] = None) -> Automaton:
    """The minimal DFA of one behaviour rule (within ``context`` when given). Raises AutomatonTooLarge."""
    if rule.kind == "pattern":
        return pattern_automaton(rule.node, alphabet, cap, context)
    if rule.kind == "data":  # enforced on the data at run time (ltlagent.runtime.policy), not by the DFA
        return formula_parts_automaton(Unary("G", Const(True)), alphabet, cap, context)
    return formula_parts_automaton(rule.node, alphabet, cap, context)


def _formula_builder(formula: Formula, alphabet: tuple[str, ...]) -> Builder:
    return lambda cap, context: formula_automaton(formula, alphabet, cap, context)


def rule_builder(rule: Rule, alphabet: Sequence[str]) -> Builder:
    """The builder of one rule's automaton, as ``conjunction`` takes it."""
    return lambda cap, context: rule_automaton(rule, tuple(alphabet), cap, context)


class PartTooLarge(AutomatonTooLarge):
    """AutomatonTooLarge raised while building or intersecting part ``index`` of a conjunction."""

    def __init__(self, index: int, cause: AutomatonTooLarge):
        super().__init__(cause.message, cause.span, cause.hint)
        self.index = index


def conjunction(builders: Sequence[Builder], alphabet: Sequence[str], cap: int) -> tuple[Automaton, list[int]]:
    """The minimal DFA of the conjunction of the parts (every non-empty trace if none), and per part the
    states of the automaton built for it (its own minimal DFA, or for a part too large alone, its
    intersection with the parts before it). Raises PartTooLarge naming the part whose construction or
    intersection passed ``cap``."""
    alone: dict[int, Automaton] = {}
    too_large: dict[int, AutomatonTooLarge] = {}
    budget = cap if len(builders) == 1 else min(cap, ALONE_BUDGET)  # a lone part has no others to help
    for i, build in enumerate(builders):
        try:
            alone[i] = build(budget, None)
        except AutomatonTooLarge as err:
            too_large[i] = err
    result = _intersect_alone(alone, cap)
    sizes = {i: len(aut.delta) for i, aut in alone.items()}
    for i, err in too_large.items():
        result, sizes[i] = _within(i, builders[i], result, cap, err, budget == cap)
    return (universal(alphabet) if result is None else result), [sizes[i] for i in range(len(builders))]


def _intersect_alone(alone: dict[int, Automaton], cap: int) -> Optional[Automaton]:
    """The intersection of the parts built alone, smallest first (None if there are none); PartTooLarge
    names the part whose product passed the cap."""
    ordered = sorted(alone, key=lambda i: len(alone[i].delta))
    if not ordered:
        return None
    result = alone[ordered[0]]
    for i in ordered[1:]:
        try:
            result = product(result, alone[i], cap)
        except AutomatonTooLarge as err:
            raise PartTooLarge(i, err) from None
    return result


def _within(i: int, build: Builder, context: Optional[Automaton], cap: int,
            alone_error: AutomatonTooLarge, alone_tried: bool) -> tuple[Automaton, int]:
    """Part ``i`` (too large for the budget alone) built within ``context``, the parts so far; if that
    passes the cap too, built alone with the whole cap (unless ``alone_tried``: the budget was the cap)
    and intersected. Returns (the new intersection, the states built for the part). Raises PartTooLarge."""
    first = alone_error
    if context is not None or not alone_tried:
        try:
            built = build(cap, context)
            return built, len(built.delta)
        except AutomatonTooLarge as err:
            first = err
    if context is None or alone_tried:
        raise PartTooLarge(i, first)
    try:
        built = build(cap, None)
        return product(context, built, cap), len(built.delta)
    except AutomatonTooLarge:
        raise PartTooLarge(i, first) from None

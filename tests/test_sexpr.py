"""The reference s-expression dialect: all eight reference specs load and accept exactly the traces the
reference semantics describes (checked against an independent backtracking interpreter)."""
from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ltlagent
from ltlagent.compiler.errors import SpecError
from ltlagent.compiler.sexpr import UNTIL, Atom, SList, read_sexprs
from ltlagent.compiler.source import Source

from paths import needs_reference, reference_spec_paths
from tiers import examples


def behaviour_form(path):
    """The (:behavior EXPR) expression of a reference spec, as raw s-expressions."""
    (define,) = [f for f in read_sexprs(Source(str(path), path.read_text())) if isinstance(f, SList)]
    (section,) = [i for i in define.items if isinstance(i, SList) and i.items[0].text == ":behavior"]
    return section.items[1]


def ends(expr, trace: tuple, i: int) -> set[int]:
    """Positions where ``expr`` can finish matching ``trace`` from position ``i`` (reference semantics:
    next = sequence, or = choice, always = any repetitions, until[_lo][_hi] E S = E repeated then S)."""
    if isinstance(expr, Atom):
        return {i + 1} if i < len(trace) and trace[i] == expr.text else set()
    op, args = expr.items[0].text, expr.items[1:]
    if op == "next":
        positions = {i}
        for arg in args:
            positions = {e for p in positions for e in ends(arg, trace, p)}
        return positions
    if op == "or":
        return {e for arg in args for e in ends(arg, trace, i)}
    if op == "always":
        return repeat(args[0], trace, {i}, 0, None)
    lo, hi = until_bounds(op)
    return {e for p in repeat(args[0], trace, {i}, lo, hi) for e in ends(args[1], trace, p)}


def until_bounds(op: str):
    first, second = UNTIL.match(op).groups()
    if first is None:
        return 0, None
    return (0, int(first)) if second is None else (int(first), int(second))


def repeat(expr, trace, starts: set[int], lo: int, hi) -> set[int]:
    result, frontier, count = set(), set(starts), 0
    seen = set()
    while frontier and (hi is None or count <= hi):
        if count >= lo:
            result |= frontier
        if hi is None:
            frontier = frontier - seen
            seen |= frontier
        frontier = {e for p in frontier for e in ends(expr, trace, p) if e > p}
        count += 1
    return result


def reference_accepts(expr, trace) -> bool:
    return len(trace) > 0 and len(trace) in ends(expr, tuple(trace), 0)


def near_valid_traces(aut, rng: random.Random, count: int):
    """Random walks through the automaton (accepted or cut short) with random edits."""
    for _ in range(count):
        state, trace = aut.initial, []
        for _ in range(rng.randint(1, 40)):
            allowed = aut.allowed(state)
            if not allowed or (state in aut.accepting and rng.random() < 0.2):
                break
            letter = rng.choice(allowed)
            trace.append(letter)
            state = aut.step(state, letter)
        for _ in range(rng.choice([0, 0, 1, 2])):
            if trace:
                trace[rng.randrange(len(trace))] = rng.choice(aut.alphabet)
        yield trace


@needs_reference
@pytest.mark.parametrize("path", reference_spec_paths(), ids=lambda p: p.stem)
def test_reference_spec_accepts_exactly_the_reference_language(path):
    compiled = ltlagent.compile(ltlagent.load(path))
    expr = behaviour_form(path)
    rng = random.Random(path.stem)
    accepted = 0
    for trace in near_valid_traces(compiled.automaton, rng, 400):
        expected = reference_accepts(expr, trace)
        accepted += expected
        assert compiled.automaton.accepts(trace) == expected, trace
    assert accepted > 20  # the walks really exercise accepted traces too


@needs_reference
@settings(max_examples=examples(150), deadline=None)
@given(data=st.data())
def test_reference_specs_on_uniform_random_traces(data):
    path = data.draw(st.sampled_from(reference_spec_paths()))
    compiled = ltlagent.compile(ltlagent.load(path))
    trace = data.draw(st.lists(st.sampled_from(compiled.alphabet), max_size=12))
    assert compiled.automaton.accepts(trace) == reference_accepts(behaviour_form(path), trace)


@needs_reference
def test_reference_react_shape():
    spec = ltlagent.load(next(p for p in reference_spec_paths() if p.stem == "react"))
    assert spec.dialect == "sexpr"
    assert spec.segment("question").input == "task"
    assert spec.segment("observation").by == "env"
    assert spec.segment("action-input").tag == "[Action Input]"
    aut = ltlagent.compile(spec).automaton
    loop = ["thought", "action", "action-input", "observation"]
    assert aut.accepts(["question", "final-thought", "answer"])
    assert aut.accepts(["question", *loop * 5, "final-thought", "answer"])
    assert not aut.accepts(["question", *loop * 6, "final-thought", "answer"])


SMALL = '(define t (:states (a (:text "[A]")) (b (:text "[B]") (:flags :env-input))) (:behavior {}))'


@pytest.mark.parametrize("behaviour, accepted, rejected", [
    ("(next a b)", [["a", "b"]], [["a"], ["b", "a"]]),
    ("(always (next a b))", [["a", "b", "a", "b"]], [["a", "b", "a"]]),
    ("(until_1_2 a b)", [["a", "b"], ["a", "a", "b"]], [["b"], ["a", "a", "a", "b"]]),
    ("(until a b)", [["b"], ["a", "a", "a", "b"]], [["a"]]),
    ("(or a (next b b))", [["a"], ["b", "b"]], [["b"]]),
])
def test_small_behaviours(behaviour, accepted, rejected):
    aut = ltlagent.compile(ltlagent.load(SMALL.format(behaviour))).automaton
    assert all(aut.accepts(t) for t in accepted)
    assert not any(aut.accepts(t) for t in rejected)


@pytest.mark.parametrize("behaviour, message, at", [
    ("(next a c)", "undeclared state 'c'", "c)"),
    ("(then a b)", "unknown or malformed operator 'then'", "(then"),
    ("(until_5_2 a b)", "bad repetition bounds 5..2", "until_5_2"),
    ("(next a b", "unexpected end of s-expression", None),
])
def test_sexpr_errors_are_located(behaviour, message, at):
    text = SMALL.format(behaviour)
    with pytest.raises(SpecError) as caught:
        ltlagent.load(text)
    err = caught.value
    assert message in err.message
    offset = text.index(at, text.index(":behavior")) if at else len(text)
    assert (err.span.line, err.span.col) == (1, offset + 1)

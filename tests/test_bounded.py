"""Bounded operators that scale: F[lo,hi] / G[lo,hi] kept symbolic in the progression, rules too large
alone built within the others, the caps on bounds and states (located errors naming them).

* the automaton agrees with the reference evaluator on formulas with large-ish bounds and long traces;
* the subsumption of bounded obligations is sound (checked against the evaluator);
* state counts are the minimal ones (n + 2 for G(a -> F[0,n] b), ...), and large bounds compile fast;
* the bound cap and the state cap are located errors; limits.max_states raises the state cap;
* a rule too large alone compiles within the other rules, to the same language as the plain product.
"""
from __future__ import annotations

import itertools
import random
import re
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))

from strategies import ALPHABET, formulas, language_difference, minimality_problems, traces  # noqa: E402

import ltlagent  # noqa: E402
from ltlagent import compile_formula, holds  # noqa: E402
from ltlagent.compiler.ast import Binary, Const, Prop, Unary  # noqa: E402
from ltlagent.compiler.automaton import product  # noqa: E402
from ltlagent.compiler.errors import AutomatonTooLarge, SpecSemanticError  # noqa: E402
from ltlagent.compiler.ltl import MAX_BOUND, format_formula, parse_formula  # noqa: E402
from ltlagent.compiler.progression import Obligations, _Interner, at_end, to_core  # noqa: E402
from ltlagent.compiler.rules import ALONE_BUDGET, conjunction  # noqa: E402

ABC = ("a", "b", "c")


def examples(n: int) -> settings:
    return settings(max_examples=n, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def random_traces(rnd: random.Random, letters, count: int, max_len: int, bias: float = 0.6):
    """Random traces of length 1..max_len; ``bias`` favours the first letter (so rare events occur)."""
    for _ in range(count):
        n = rnd.randint(1, max_len)
        yield tuple(letters[0] if rnd.random() < bias else rnd.choice(letters[1:]) for _ in range(n))


def nest(op: str, body: str, depth: int) -> str:
    return f"{op}(" * depth + body + ")" * depth


# ------------------------------------------------------------------------------------------ oracle

@examples(300)
@given(f=formulas(max_leaves=6, max_bound=12), sample=st.lists(traces(min_size=1, max_size=18), min_size=20,
                                                                 max_size=40))
def test_bounded_formulas_agree_with_the_reference_evaluator(f, sample):
    aut = compile_formula(format_formula(f), ALPHABET)
    for trace in sample:
        assert aut.accepts(trace) == holds(f, trace), (format_formula(f), trace)


FAMILIES = [
    "G(a -> F[0,40] b)", "G[0,12](a -> F[0,12] b)", "F[0,15] G[0,15] a", "G[20,40] F[0,20] a",
    nest("F[0,1]", "a", 30), "G(a -> F[3,9] b)", "G[5,30](b -> G[0,6] !c)", "F[0,30](a & X F[0,20] b)",
    "!G[0,25](a | F[0,4] b)", "(F[0,10] a) U G[0,8] b", "G(a -> F[0,20] b) & G(b -> F[0,7] c)",
    "F[20,40] F[10,30] b", "G[5,20] G[3,9] !c", "F[3,9] b | F[12,15] b | F[8,11] b", "G[2,4] a & G[6,9] a",
]


@pytest.mark.parametrize("text", FAMILIES)
def test_families_with_large_bounds_agree_with_the_reference_evaluator(text):
    aut, formula = compile_formula(text, ABC), parse_formula(text)
    rnd = random.Random(text)
    sample = list(itertools.chain(random_traces(rnd, ABC, 300, 90), random_traces(rnd, ("b", "a", "c"), 300, 90),
                                  random_traces(rnd, ("c", "a", "b"), 100, 90, 0.9)))
    verdicts = [holds(formula, t) for t in sample]
    assert [aut.accepts(t) for t in sample] == verdicts
    assert any(verdicts) or aut.is_empty  # the sample exercises acceptance when there is any


@examples(400)
@given(f=formulas(max_leaves=4, max_bound=6), g=formulas(max_leaves=4, max_bound=6))
def test_syntactic_implication_is_sound(f, g):
    """Where the subsumption of obligations says f implies g, every trace satisfying f satisfies g."""
    props, intern = [], _Interner()
    cf, cg = to_core(f, props, intern), to_core(g, props, intern)
    if not Obligations(intern).implies(cf, cg):
        return
    rnd = random.Random(format_formula(f) + format_formula(g))
    for trace in itertools.chain(*(itertools.product(ALPHABET, repeat=n) for n in range(1, 4)),
                                 random_traces(rnd, ALPHABET, 150, 12, 0.3)):
        assert not holds(f, trace) or holds(g, trace), (format_formula(f), format_formula(g), trace)


def chains() -> list:
    """Every chain of one or two of X, WX, F, G, F[l,h], G[l,h] (0 <= l <= h <= 2) over b, and over a
    or true under one operator: pairs of them often imply each other."""
    steps = [("X", None), ("WX", None), ("F", None), ("G", None)] + [
        (op, (lo, hi)) for op in ("F", "G") for lo in range(3) for hi in range(lo, 3)]
    out = [Unary(op, leaf, b) for op, b in steps for leaf in (Prop("b"), Prop("a"), Const(True))]
    out += [Unary(o1, Unary(o2, Prop("b"), b2), b1) for o1, b1 in steps for o2, b2 in steps]
    return out


def test_syntactic_implication_is_sound_on_every_pair_of_chains():
    """Exhaustive: where the subsumption says f implies g, no trace over {a, b} of length <= 6 satisfies
    f and not g."""
    every = list(itertools.chain(*(itertools.product(("a", "b"), repeat=n) for n in range(1, 7))))
    fs = chains()
    props, intern = [], _Interner()
    cores = [to_core(f, props, intern) for f in fs]
    truth = [[holds(f, t) for t in every] for f in fs]
    dnf, implied = Obligations(intern), 0
    for (i, cf), (j, cg) in itertools.product(enumerate(cores), repeat=2):
        if dnf.implies(cf, cg):
            implied += 1
            bad = next((t for t, x, y in zip(every, truth[i], truth[j]) if x and not y), None)
            assert bad is None, (format_formula(fs[i]), format_formula(fs[j]), bad)
    assert implied > 3 * len(fs)  # the pairs exercise the subsumption, not only f => f


def test_contradictions_and_negations_are_sound_on_every_pair_of_chains():
    """Exhaustive: the negation of each chain holds exactly where the chain does not; where a clause
    S(f) & W(!g) is dropped as contradictory, no trace satisfies both f and !g."""
    every = list(itertools.chain(*(itertools.product(("a", "b"), repeat=n) for n in range(1, 7))))
    fs = chains()
    props, intern = [], _Interner()
    cores = [to_core(f, props, intern) for f in fs]
    dnf = Obligations(intern)
    truth = [[holds(f, t) for t in every] for f in fs]
    for f, core, row in zip(fs, cores, truth):
        negated = _formula_of(dnf.negation(core), intern.nodes, props)
        assert [holds(negated, t) for t in every] == [not x for x in row], format_formula(f)
    negations = [dnf.negation(c) for c in cores]
    dropped = 0
    for (i, cf), (j, cg) in itertools.product(enumerate(cores), enumerate(negations)):
        if cf != cg and dnf.clause(frozenset({(True, cf), (False, cg)})) is None:
            dropped += 1
            assert not any(x and not y for x, y in zip(truth[i], truth[j])), (format_formula(fs[i]), format_formula(fs[j]))
    assert dropped > len(fs)


def test_value_at_the_last_step_is_sound_on_every_chain():
    """Where at_end says a chain's value at a last step does not depend on the letter, one-letter traces
    (whose only step is the last) agree; F of a chain true at the end is true, G of one false is false."""
    props, intern = [], _Interner()
    known = 0
    for f in chains() + [Binary(op, l, r) for op in ("U", "R", "&", "|") for l, r in
                         itertools.product(chains()[:48], repeat=2)]:
        value = at_end(to_core(f, props, intern), intern.nodes)
        if value is not None:
            known += 1
            assert all(holds(f, (x,)) == value for x in ("a", "b")), format_formula(f)
    assert known > 100
    assert compile_formula("F G[74,212] a", ABC).accepts(("b",)) and compile_formula("G X a", ABC).is_empty


def _formula_of(g: int, nodes, props):
    """The ast of a core formula (to evaluate it with the reference evaluator)."""
    node = nodes[g]
    op = node[0]
    if op in ("tt", "ff"):
        return Const(op == "tt")
    if op == "lit":
        return props[node[1]] if node[2] else Unary("!", props[node[1]])
    if op in ("and", "or"):
        return Binary("&" if op == "and" else "|", _formula_of(node[1], nodes, props), _formula_of(node[2], nodes, props))
    if op == "x":
        return Unary("X" if node[1] else "WX", _formula_of(node[2], nodes, props))
    if op in ("u", "r"):
        return Binary(op.upper(), _formula_of(node[1], nodes, props), _formula_of(node[2], nodes, props))
    return Unary("F" if op == "fb" else "G", _formula_of(node[3], nodes, props), (node[1], node[2]))


@pytest.mark.parametrize("stronger, weaker", [
    ("F[0,3] b", "F[0,9] b"), ("F[2,3] b", "F[1,9] b"), ("G[0,9] b", "G[2,5] b"), ("b", "F[0,4] b"),
    ("G[0,4] b", "b"), ("F[2,5] b", "F b"), ("G b", "G[3,7] b"), ("X X b", "F[1,2] b"), ("G[1,3] b", "WX b"),
    ("X b", "F[0,3] b"), ("G[0,3] b", "WX WX b"),
])
def test_subsumption_of_bounded_obligations(stronger, weaker):
    """The implications the construction relies on (and not their converses)."""
    props, intern = [], _Interner()
    s, w = (to_core(parse_formula(t), props, intern) for t in (stronger, weaker))
    dnf = Obligations(intern)
    assert dnf.implies(s, w)
    assert not dnf.implies(w, s)


@pytest.mark.parametrize("left, right", [
    ("X X b", "F[0,1] b"), ("F[0,2] b", "F[1,2] b"), ("G[0,2] b", "G[0,3] b"), ("WX b", "G[0,1] b"),
    ("F[1,3] b", "X X b"), ("X G[0,2] b", "G[0,3] b"), ("X F[0,2] b", "F[0,2] b"), ("F[0,3] b", "X F[0,3] b"),
])
def test_no_subsumption_between_bounded_obligations_that_do_not_imply(left, right):
    props, intern = [], _Interner()
    l, r = (to_core(parse_formula(t), props, intern) for t in (left, right))
    assert not Obligations(intern).implies(l, r)
    assert any(holds(parse_formula(left), t) and not holds(parse_formula(right), t)
               for n in range(1, 5) for t in itertools.product(ABC, repeat=n))  # the oracle agrees


@pytest.mark.parametrize("op, atoms, same_strength, merged", [
    ("fb", [(True, "F[1,3] b"), (True, "F[4,6] b")], True, [(True, "F[1,6] b")]),
    ("fb", [(True, "F[1,2] b"), (True, "F[4,6] b")], True, [(True, "F[1,2] b"), (True, "F[4,6] b")]),
    ("fb", [(True, "F[1,3] b"), (False, "F[2,6] b")], True, [(True, "F[1,3] b"), (False, "F[2,6] b")]),
    ("fb", [(True, "F[1,3] b"), (True, "F[2,6] a")], True, [(True, "F[1,3] b"), (True, "F[2,6] a")]),
    ("gb", [(False, "G[0,3] b"), (True, "G[2,9] b"), (False, "G[10,12] b")], False, [(True, "G[0,12] b")]),
    ("gb", [(False, "G[1,3] b"), (False, "F[2,6] b")], False, [(False, "G[1,3] b"), (False, "F[2,6] b")]),
])
def test_overlapping_or_adjacent_windows_merge(op, atoms, same_strength, merged):
    props, intern = [], _Interner()
    core = lambda t: to_core(parse_formula(t), props, intern)  # noqa: E731
    got = Obligations(intern).merge_windows([(strong, core(t)) for strong, t in atoms], op, same_strength)
    assert sorted(got) == sorted((strong, core(t)) for strong, t in merged)


# ------------------------------------------------------------------------------ sizes and speed

@pytest.mark.parametrize("n", [1, 2, 7, 36, 37, 100, 1000, 10_000])
def test_response_within_n_has_n_plus_2_states(n):
    assert len(compile_formula(f"G(a -> F[0,{n}] b)", ABC).delta) == n + 2


@pytest.mark.parametrize("text, states", [
    ("F[0,{n}] a", lambda n: n + 2), ("G[0,{n}] a", lambda n: n + 2), ("F[{n},{n}] a", lambda n: n + 2),
    ("G(a -> G[0,{n}] !b)", lambda n: n + 2),
])
@pytest.mark.parametrize("n", [3, 50, 5000])
def test_state_counts_of_bounded_families(text, states, n):
    assert len(compile_formula(text.format(n=n), ABC).delta) == states(n)


@pytest.mark.parametrize("text", ["G(a -> F[0,9] b)", "G[0,6](a -> F[0,6] b)", "F[0,8] G[0,8] a",
                                  "G[5,10] F[0,5] a", nest("F[0,1]", "a", 20), "G(a -> F[2,6] b)"])
def test_bounded_automata_are_minimal(text):
    assert minimality_problems(compile_formula(text, ABC)) == []


@pytest.mark.parametrize("text, states, limit_s", [
    ("G(a -> F[0,10000] b)", 10_002, 3.0),
    ("G[0,30](a -> F[0,30] b)", 497, 1.0),
    (nest("F[0,1]", "a", 200), 202, 1.0),
    ("F[0,80] G[0,80] a", 3322, 2.0),
    ("G[100,200] F[0,100] a", 5252, 2.0),
    ("F[0,10000] a | G[0,10000] !b", 20_002, 3.0),
    ("G(F[0,10000] a -> F[0,9999] a)", 10_002, 3.0),  # needs F[0,j] a & G[0,k] !a (j <= k) found contradictory
    ("G[0,10000] a & G a", 2, 1.0),
    ("F[9000,10000] a | F[0,10000] a", 10_002, 1.0),
    ("F[178,241] F[174,208] b", 451, 1.0),  # 12 s before adjacent windows were merged
    ("F[74,212] F G[74,212] b", 76, 1.0),  # over 60 s before F of a formula true at the end became true
])
def test_large_bounds_compile_fast(text, states, limit_s):
    """These took seconds to minutes, or were refused, when bounds were unrolled (the limits are
    generous for a loaded machine; most take well under a tenth of them)."""
    start = time.perf_counter()
    aut = compile_formula(text, ABC)
    assert time.perf_counter() - start < limit_s
    assert states is None or len(aut.delta) == states


# ------------------------------------------------------------------------------------------ caps

def test_bounds_over_the_cap_are_located_errors():
    with pytest.raises(SpecSemanticError) as err:
        parse_formula("G(a -> F[0,20000000] b)")
    assert err.value.span.location() == "<formula>:1:12"
    assert f"cap of {MAX_BOUND}" in err.value.message
    assert parse_formula(f"F[{MAX_BOUND},{MAX_BOUND}] a").bounds == (MAX_BOUND, MAX_BOUND)


def spec_text(rules: list[str], limits: str = "") -> str:
    items = "".join(f"  - {r!r}\n".replace("'", '"') if not r.startswith("{") else f"  - {r}\n" for r in rules)
    return ("name: drafts\nsegments:\n  question: {tag: \"Question:\", by: env, input: task}\n"
            "  thought: {tag: \"Thought:\"}\n  draft: {tag: \"Draft:\"}\n  answer: {tag: \"Answer:\"}\n"
            f"{limits}behavior:\n{items}")


def test_bound_cap_in_a_spec_is_located_at_the_number():
    with pytest.raises(SpecSemanticError) as err:
        ltlagent.load(spec_text(["G(draft -> F[0,20000000] answer)"]), name="s.yaml")
    assert err.value.render().splitlines()[0] == f"s.yaml:8:21: temporal bound 20000000 over the cap of {MAX_BOUND}"


def x_chain(k: int) -> str:
    return "X " * k + "answer"


def test_state_cap_is_located_at_the_rule_and_names_it():
    spec = ltlagent.load(spec_text(["F answer", f"G(draft -> {x_chain(14)})"], "limits: {max_states: 3000}\n"),
                         name="s.yaml")
    with pytest.raises(AutomatonTooLarge) as err:
        ltlagent.compile(spec)
    lines = err.value.render().splitlines()
    assert lines[0].startswith("s.yaml:10:6: rule 2 (G(draft -> X X X")
    assert "needs more than 3000 states" in lines[0]
    assert lines[2].lstrip().startswith("^")
    assert "limits: {max_states: N}" in err.value.hint and "3000" in err.value.hint


def test_raising_max_states_lets_the_rule_compile():
    rules = [f"G(draft -> {x_chain(12)})"]
    with pytest.raises(AutomatonTooLarge):
        ltlagent.compile(ltlagent.load(spec_text(rules, "limits: {max_states: 2000}\n")))
    compiled = ltlagent.compile(ltlagent.load(spec_text(rules, "limits: {max_states: 20000}\n")))
    assert len(compiled.automaton.delta) > 2000


# ------------------------------------------------------------------------------ within the others

ONE_DRAFT = '{pattern: "question thought* draft thought* answer+"}'


def test_a_rule_too_large_alone_compiles_within_the_others():
    """G(draft -> X^20 answer) alone needs over 2^20 states; beside a pattern allowing one draft, few."""
    spec = ltlagent.load(spec_text([f"G(draft -> {x_chain(20)})", ONE_DRAFT]))
    start = time.perf_counter()
    compiled = ltlagent.compile(spec)
    assert time.perf_counter() - start < 5.0
    aut = compiled.automaton
    assert len(aut.delta) == 41
    ok = ("question", "thought", "draft") + ("answer",) * 20
    assert aut.accepts(ok) and not aut.accepts(ok[:-1]) and not aut.accepts(ok[:-2] + ("thought", "answer"))
    formula = parse_formula(f"G(draft -> {x_chain(20)})")
    rnd = random.Random(7)
    for _ in range(300):
        trace = ("question",) + tuple(rnd.choice(("thought", "thought", "answer")) for _ in range(rnd.randint(0, 8)))
        trace += ("draft",) + tuple(rnd.choice(("thought", "answer", "answer", "answer"))
                                    for _ in range(rnd.randint(0, 24)))
        assert aut.accepts(trace) == (holds(formula, trace) and one_draft(trace)), trace


def one_draft(trace) -> bool:
    """Whether a trace matches the pattern ``question thought* draft thought* answer+``."""
    return re.fullmatch(r"qt*dt*a+", "".join(name[0] for name in trace)) is not None


def test_within_gives_the_product_language():
    """Same language and states as the plain product of the rules built alone (a cap too small for the
    rule alone forces the construction within the pattern)."""
    rules = [f"G(draft -> {x_chain(9)})", ONE_DRAFT]
    small = ltlagent.compile(ltlagent.load(spec_text(rules, "limits: {max_states: 300}\n")))
    spec = ltlagent.load(spec_text(rules))
    alone = [ltlagent.compiler.api.rule_automaton(r, spec.alphabet) for r in spec.behavior]
    assert len(alone[0].delta) > 300  # too large alone for the cap of 300
    plain = product(alone[0], alone[1])
    assert language_difference(small.automaton, plain) is None
    assert len(small.automaton.delta) == len(plain.delta)
    assert small.part_sizes[1] == len(alone[1].delta)


def test_conjunction_falls_back_to_the_plain_product():
    """A part too large within the others (but not alone with the whole cap) is built alone."""
    alphabet = ("a", "b")
    small = compile_formula("F a", alphabet)
    big = compile_formula("G(a -> F[0,6000] b)", alphabet)
    calls = []

    def picky(cap, context):  # too large within a context, fine alone with enough states
        calls.append(context is None)
        if context is not None or cap < len(big.delta):
            raise AutomatonTooLarge(f"needs more than {cap} states")
        return big

    result, sizes = conjunction([lambda cap, context: small, picky], alphabet, 100_000)
    assert calls == [True, False, True]  # alone within the budget, within the others, alone again
    assert language_difference(result, product(small, big)) is None
    assert sizes == [len(small.delta), len(big.delta)]
    assert len(big.delta) > ALONE_BUDGET


def test_conjunction_names_the_part_that_passes_the_cap():
    alphabet = ("a", "b")
    ok = compile_formula("F a", alphabet)

    def never(cap, context):
        raise AutomatonTooLarge(f"the formula automaton needs more than {cap} states")

    with pytest.raises(AutomatonTooLarge) as err:
        conjunction([lambda cap, context: ok, never, lambda cap, context: ok], alphabet, 500)
    assert err.value.index == 1 and "500" in err.value.message

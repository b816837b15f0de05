"""Property tests of the LTLf front end and the DFA construction.

* the compiled automaton agrees with the reference evaluator ``holds`` on every trace up to length 4
  and on random longer ones;
* parse(print(x)) == x for formulas and segment patterns;
* compiled automata are minimal, trimmed partial DFAs (checked by an independent table-filling oracle);
* segment-pattern automata agree with Python's ``re.fullmatch``;
* precedence / associativity / keyword lexing / located errors / semantic corner cases as unit tests.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))

from strategies import (  # noqa: E402
    ALPHABET,
    all_traces,
    encode,
    formulas,
    language_difference,
    minimality_problems,
    pattern_regex,
    patterns,
    traces,
)

import ltlagent  # noqa: E402
from ltlagent import compile_formula, holds  # noqa: E402
from ltlagent.compiler.ast import Binary, Const, Last, PAtom, PRepeat, Prop, PSeq, Unary  # noqa: E402
from ltlagent.compiler.automaton import equivalent_states  # noqa: E402
from ltlagent.compiler.errors import SpecSemanticError, SpecSyntaxError  # noqa: E402
from ltlagent.compiler.ltl import format_formula, parse_formula  # noqa: E402
from ltlagent.compiler.patterns import format_pattern, parse_pattern, pattern_automaton  # noqa: E402
from tiers import examples as scaled  # noqa: E402

SHORT_TRACES = tuple(all_traces(ALPHABET, 4))  # 1 + 5 + 25 + 125 + 625 traces, the empty one included


def examples(n: int) -> settings:
    return settings(max_examples=scaled(n), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def compiled(f):
    return compile_formula(format_formula(f), ALPHABET)


# ------------------------------------------------------------------------------------------ oracle

@examples(500)
@given(f=formulas(max_leaves=10), longer=st.lists(traces(min_size=5, max_size=7), min_size=10, max_size=30))
def test_automaton_agrees_with_reference_evaluator(f, longer):
    text = format_formula(f)
    aut = compile_formula(text, ALPHABET)
    for trace in SHORT_TRACES + tuple(longer):
        expected = holds(f, trace)
        assert aut.accepts(trace) == expected, f"{text!r} on {list(trace)}: holds={expected}"


@examples(300)
@given(f=formulas(), trace=traces(min_size=1, max_size=7))
def test_negation_complements_on_nonempty_traces(f, trace):
    """!f accepts exactly the non-empty traces f rejects (both by the automaton and the evaluator)."""
    neg = Unary("!", f)
    assert compiled(neg).accepts(trace) == (not compiled(f).accepts(trace))
    assert holds(neg, trace) == (not holds(f, trace))


@examples(60)
@given(f=formulas())
def test_empty_trace_is_rejected(f):
    assert not holds(f, ())
    assert not compiled(f).accepts(())


# -------------------------------------------------------------------------------------- round trips

@examples(600)
@given(f=formulas(max_leaves=12))
def test_formula_round_trip(f):
    text = format_formula(f)
    assert parse_formula(text) == f, text
    assert format_formula(parse_formula(text)) == text


@examples(500)
@given(p=patterns(max_leaves=10))
def test_pattern_round_trip(p):
    text = format_pattern(p)
    assert parse_pattern(text) == p, text
    assert format_pattern(parse_pattern(text)) == text


KEYWORDS = {"X", "WX", "F", "G", "U", "R", "W", "true", "false", "last"}
SEGMENT_NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,5}(-[A-Za-z0-9_]{1,3}){0,2}", fullmatch=True).filter(
    lambda name: name not in KEYWORDS)


@examples(300)
@given(segment=SEGMENT_NAMES, option=st.one_of(st.none(), SEGMENT_NAMES, st.text(max_size=6)))
def test_proposition_names_round_trip(segment, option):
    """Hyphenated names, keyword-prefixed names and arbitrary (quoted, escaped) options survive printing."""
    prop = Prop(segment, option)
    f = Binary("U", prop, Unary("!", Unary("X", prop)))
    assert parse_formula(format_formula(f)) == f, format_formula(f)
    assert parse_pattern(format_pattern(PRepeat(PAtom(prop), 1, None))) == PRepeat(PAtom(prop), 1, None)


def test_printer_uses_minimal_parentheses():
    cases = {
        "(a U b) U c": "(a U b) U c",
        "a U (b U c)": "a U b U c",
        "(a -> b) -> c": "(a -> b) -> c",
        "((a & b)) | c": "a & b | c",
        "a & (b | c)": "a & (b | c)",
        "!(a U b)": "!(a U b)",
        "(!a) U b": "!a U b",
        "X (a U b)": "X (a U b)",
        "F[1,3] (a)": "F[1,3] a",
        "s.x -> F s": "s.x -> F s",
        "(a <-> b) <-> c": "a <-> b <-> c",
        "a <-> (b <-> c)": "a <-> (b <-> c)",
    }
    for text, printed in cases.items():
        assert format_formula(parse_formula(text)) == printed, text


# ---------------------------------------------------------------------------------------- minimality

@examples(300)
@given(f=formulas(max_leaves=10))
def test_formula_automaton_is_minimal_and_trimmed(f):
    aut = compiled(f)
    assert equivalent_states(aut) == [], format_formula(f)
    assert minimality_problems(aut) == [], format_formula(f)


@examples(300)
@given(p=patterns(max_leaves=8))
def test_pattern_automaton_is_minimal_and_trimmed(p):
    aut = pattern_automaton(p, ALPHABET)
    assert equivalent_states(aut) == [], format_pattern(p)
    assert minimality_problems(aut) == [], format_pattern(p)


def test_minimality_oracle_detects_redundant_states():
    """The oracle itself must reject a non-minimal, untrimmed automaton."""
    aut = ltlagent.Automaton(("a",), 0, frozenset({1, 2}), ((1,), (2,), (2,), (3,)))
    problems = " ".join(minimality_problems(aut))
    assert "equivalent state pairs" in problems and "unreachable" in problems and "cannot reach" in problems


# -------------------------------------------------------------------------------------------- patterns

@examples(400)
@given(p=patterns(max_leaves=8), longer=st.lists(traces(min_size=5, max_size=7), max_size=20))
def test_pattern_automaton_agrees_with_python_re(p, longer):
    text = format_pattern(p)
    aut = pattern_automaton(parse_pattern(text), ALPHABET)
    regex = re.compile(pattern_regex(p))
    assert not aut.accepts(())
    for trace in SHORT_TRACES[1:] + tuple(longer):
        expected = regex.fullmatch(encode(trace)) is not None
        assert aut.accepts(trace) == expected, f"{text!r} ~ /{regex.pattern}/ on {list(trace)}"


def test_pattern_examples():
    aut = pattern_automaton(parse_pattern("a (s.x b){0,2} c"), ALPHABET)
    assert aut.accepts(["a", "c"])
    assert aut.accepts(["a", "s.x", "b", "s.x", "b", "c"])
    assert not aut.accepts(["a", "s.y", "b", "c"])
    assert not aut.accepts(["a", "s.x", "b", "s.x", "b", "s.x", "b", "c"])
    assert parse_pattern("a b | c") == parse_pattern("(a b) | c")
    assert parse_pattern("a b*") == PSeq((PAtom(Prop("a")), PRepeat(PAtom(Prop("b")), 0, None)))
    assert pattern_automaton(parse_pattern("a{0}"), ALPHABET).is_empty


# ---------------------------------------------------------------------------- precedence and lexing

@pytest.mark.parametrize("text, grouped", [
    ("a U b U c", "a U (b U c)"),
    ("a R b R c", "a R (b R c)"),
    ("a W b U c", "a W (b U c)"),
    ("a -> b -> c", "a -> (b -> c)"),
    ("a & b | c", "(a & b) | c"),
    ("a | b & c", "a | (b & c)"),
    ("a & b & c", "(a & b) & c"),
    ("a | b | c", "(a | b) | c"),
    ("a <-> b <-> c", "(a <-> b) <-> c"),
    ("!a U b", "(!a) U b"),
    ("X a U b", "(X a) U b"),
    ("F[1,2] a U b", "(F[1,2] a) U b"),
    ("a <-> b -> c", "a <-> (b -> c)"),
    ("a -> b | c", "a -> (b | c)"),
    ("a & b U c", "a & (b U c)"),
    ("G a -> F b", "(G a) -> (F b)"),
    ("! X a", "!(X a)"),
    ("X ! a", "X (!a)"),
])
def test_precedence_and_associativity(text, grouped):
    assert parse_formula(text) == parse_formula(grouped)


def test_associativity_is_not_vacuous():
    assert parse_formula("a U b U c") != parse_formula("(a U b) U c")
    assert parse_formula("a -> b -> c") != parse_formula("(a -> b) -> c")
    assert parse_formula("a & b | c") != parse_formula("a & (b | c)")
    assert parse_formula("a U b U c") == Binary("U", Prop("a"), Binary("U", Prop("b"), Prop("c")))
    assert parse_formula("a & b | c") == Binary("|", Binary("&", Prop("a"), Prop("b")), Prop("c"))


@pytest.mark.parametrize("text", ["Gate", "lasting", "Xa", "WXy", "truex", "Falsey", "Until", "Right", "W2", "G_1"])
def test_keywords_never_swallow_identifiers(text):
    assert parse_formula(text) == Prop(text)


def test_keyword_prefixed_identifiers_under_operators():
    assert parse_formula("F truex") == Unary("F", Prop("truex"))
    assert parse_formula("G Gate") == Unary("G", Prop("Gate"))
    assert parse_formula("X Xa U lasting") == Binary("U", Unary("X", Prop("Xa")), Prop("lasting"))
    assert parse_formula("WX WXy") == Unary("WX", Prop("WXy"))
    assert parse_formula("last") == Last()
    assert parse_formula("true & false") == Binary("&", Const(True), Const(False))
    assert parse_formula("F[1,3] a") == Unary("F", Prop("a"), (1, 3))
    assert parse_formula("G[0,0] s.x") == Unary("G", Prop("s", "x"), (0, 0))
    assert parse_formula("a->b") == Binary("->", Prop("a"), Prop("b"))
    assert parse_formula("a-b -> c") == Binary("->", Prop("a-b"), Prop("c"))


@pytest.mark.parametrize("parse, text, error, line, col", [
    (parse_formula, "G(a ->", SpecSyntaxError, 1, 7),        # unexpected end: just past the last token
    (parse_formula, "G(a ->   ", SpecSyntaxError, 1, 7),     # trailing blanks do not move it
    (parse_formula, "F[3,1] a", SpecSemanticError, 1, 3),    # the bound
    (parse_formula, "a $ b", SpecSyntaxError, 1, 3),         # the bad character
    (parse_formula, "a & & b", SpecSyntaxError, 1, 5),       # the second &
    (parse_formula, "a &\n  & b", SpecSyntaxError, 2, 3),    # second line
    (parse_formula, "(a U b", SpecSyntaxError, 1, 7),
    (parse_formula, "a b", SpecSyntaxError, 1, 3),
    (parse_formula, "F[1] a", SpecSyntaxError, 1, 4),
    (parse_pattern, "a{3,1}", SpecSemanticError, 1, 3),
    (parse_pattern, "a{1001}", SpecSemanticError, 1, 3),
    (parse_pattern, "a |", SpecSyntaxError, 1, 4),
    (parse_pattern, "(a b", SpecSyntaxError, 1, 5),
    (parse_pattern, "| a", SpecSyntaxError, 1, 1),
    (parse_pattern, "a{1,2,3}", SpecSyntaxError, 1, 6),
    (parse_pattern, "a b\n  | )", SpecSyntaxError, 2, 5),
])
def test_errors_are_located(parse, text, error, line, col):
    with pytest.raises(error) as info:
        parse(text)
    assert info.value.span is not None
    assert (info.value.span.line, info.value.span.col) == (line, col), info.value.render()


def test_error_rendering_points_at_the_offender():
    with pytest.raises(SpecSyntaxError) as info:
        parse_formula("a & & b")
    rendered = info.value.render()
    assert rendered.startswith("<formula>:1:5:")
    assert "    a & & b\n        ^" in rendered


def test_unknown_proposition_is_a_semantic_error():
    with pytest.raises(SpecSemanticError) as info:
        compile_formula("a U zz", ALPHABET)
    assert info.value.span.col == 5
    with pytest.raises(SpecSemanticError):
        compile_formula("s.z", ALPHABET)
    with pytest.raises(SpecSemanticError):
        compile_formula("a.x", ALPHABET)


# ------------------------------------------------------------------------------ semantic corner cases

def same_language(x: str, y: str) -> None:
    witness = language_difference(compile_formula(x, ALPHABET), compile_formula(y, ALPHABET))
    assert witness is None, f"{x!r} and {y!r} differ on {list(witness)}"


def test_negated_last_is_strong_next_true():
    """Regression: to_core once turned a negated ``last`` into X false, making ``!last`` unsatisfiable."""
    aut = compile_formula("!last", ALPHABET)
    assert aut.accepts(["a", "a"])  # holds(!last, [a, a]) is True
    same_language("!last", "X true")
    same_language("last -> a", "X true | a")
    same_language("X X X true", "!(last | X last | X X last)")


def test_strong_next_needs_a_next_step():
    aut = compile_formula("X true", ALPHABET)
    assert not any(aut.accepts([a]) for a in ALPHABET)
    assert all(aut.accepts(t) for t in all_traces(ALPHABET, 3, min_len=2))
    assert not holds(parse_formula("X true"), ["a"])


def test_weak_next_false_is_last():
    same_language("WX false", "last")
    aut = compile_formula("last", ALPHABET)
    assert all(aut.accepts([a]) for a in ALPHABET)
    assert not any(aut.accepts(t) for t in all_traces(ALPHABET, 3, min_len=2))
    assert holds(parse_formula("WX false"), ["b"]) and not holds(parse_formula("WX false"), ["b", "b"])


def test_negation_needs_a_step():
    assert not holds(parse_formula("!a"), [])
    assert not compile_formula("!a", ALPHABET).accepts([])
    assert compile_formula("!a", ALPHABET).accepts(["b"])
    aut = compile_formula("X !a", ALPHABET)
    assert not any(aut.accepts([x]) for x in ALPHABET)
    assert aut.accepts(["a", "b"]) and not aut.accepts(["b", "a"])
    assert not holds(parse_formula("X !a"), ["b"])


def test_always_false_is_unsatisfiable():
    aut = compile_formula("G false", ALPHABET)
    assert aut.accepting == frozenset() and aut.is_empty
    assert len(aut.states) == 1
    assert not any(aut.accepts(t) for t in all_traces(ALPHABET, 3))


def test_choice_segment_propositions():
    aut = compile_formula("s", ALPHABET)
    assert aut.accepts(["s.x"]) and aut.accepts(["s.y"]) and not aut.accepts(["a"])
    aut = compile_formula("s.x", ALPHABET)
    assert aut.accepts(["s.x"]) and not aut.accepts(["s.y"])
    same_language("s", "s.x | s.y")
    same_language("s.x & s.y", "false")


@pytest.mark.parametrize("x, y", [
    ("F[0,0] a", "a"),
    ("G[0,0] a", "a"),
    ("F[1,1] a", "X a"),
    ("G[1,1] a", "WX a"),
    ("F[1,2] a", "X a | X X a"),
    ("G[1,2] a", "WX a & WX WX a"),
    ("F[0,2] a", "a | X a | X X a"),
    ("last", "!X true"),
    ("F a", "true U a"),
    ("G a", "!F !a"),
    ("G a", "false R a"),
    ("a W b", "a U b | G a"),
    ("a R b", "!(!a U !b)"),
    ("a <-> b", "(a -> b) & (b -> a)"),
    ("a -> b", "!a | b"),
    ("WX a", "!X !a"),
    ("a & !a", "false"),
    ("a | !a", "true"),
    ("F last", "true"),
    ("G F a", "F (a & last)"),
    ("F G a", "F (a & last)"),
    ("X X X true", "F[3,3] true"),
    ("X X X true", "X X X (last | X true)"),
])
def test_language_equivalences(x, y):
    same_language(x, y)


def test_language_difference_oracle_finds_witnesses():
    witness = language_difference(compile_formula("F a", ALPHABET), compile_formula("G a", ALPHABET))
    assert witness is not None and len(witness) == 2
    assert holds(parse_formula("F a"), witness) != holds(parse_formula("G a"), witness)

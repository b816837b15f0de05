"""The front end's edges (issue 9): inputs that used to end in an internal error are located SpecErrors,
in-process as on the command line; the source line of an error never carries raw control characters."""
from __future__ import annotations

import json

import pytest

import ltlagent
from ltlagent.compiler.source import Source, Span, printable

SPEC = 'name: r\nsegments:\n  a: {tag: "A:"}\n  c: {tag: "C:", choice: [x, "y z"]}\nbehavior:\n  - %s\n'


@pytest.mark.parametrize("char", ["\x00", "\x7f", "\x1a", "\x1b", "\x01", "\ud800", "\ufffe"])
def test_characters_yaml_forbids_are_located_spec_errors(char):
    text = SPEC % ('"G a"  # comment ' + char + " more")
    with pytest.raises(ltlagent.SpecSyntaxError) as err:
        ltlagent.load(text)
    assert err.value.span.line == 6
    assert text.splitlines()[5].index(char) + 1 == err.value.span.col
    assert "YAML forbids the character \\" in err.value.message
    assert char not in str(err.value)


@pytest.mark.parametrize("formula, col, problem", [
    ('c."\\q" U a', 3, "invalid \\escape"),
    ('c."\\u12" U a', 4, "invalid \\uXXXX escape"),
    ('c."a\nb" U a', 4, "raw control character"),
])
def test_bad_quoted_options_are_located_in_formulas_and_patterns(formula, col, problem):
    with pytest.raises(ltlagent.SpecSyntaxError) as err:
        ltlagent.compile_formula(formula, ["a", "c.x", "c.y z"])
    assert err.value.span.col == col + 1 and problem in err.value.message
    with pytest.raises(ltlagent.SpecSyntaxError) as err:
        ltlagent.load(SPEC % ("{pattern: %s}" % json.dumps(formula.replace(" U ", " "))))
    assert problem in err.value.message and err.value.span.line == 6


def test_an_impossible_date_is_a_located_error():
    with pytest.raises(ltlagent.SpecSemanticError) as err:
        ltlagent.load("name: r\ndescription: 2024-13-45\nsegments:\n  a: {tag: 'A:'}\n")
    assert (err.value.span.line, err.value.span.col) == (2, 14)
    assert "month must be in 1..12" in err.value.message


def test_a_lone_surrogate_escape_is_a_located_error():
    with pytest.raises(ltlagent.SpecSemanticError, match="lone surrogate \\\\ud800"):
        ltlagent.load('name: "\\ud800"\nsegments:\n  a: {tag: "A:"}\n')


def test_deep_yaml_is_a_located_error_not_a_recursion_error():
    with pytest.raises(ltlagent.SpecSyntaxError, match="nested more than 100"):
        ltlagent.load("name: r\nsegments: " + "[" * 5000 + "]" * 5000 + "\n")


def deep_sexpr(n: int, op: str = "next question") -> str:
    return ('(define d (:states (question (:text "Q:")) (answer (:text "A:")))\n'
            f'  (:behavior {("(" + op + " ") * n}answer{")" * n}))')


def test_deep_sexpressions_are_located_errors_and_nested_sequences_flatten():
    with pytest.raises(ltlagent.SpecSyntaxError, match="nested more than 100 lists deep") as err:
        ltlagent.load(deep_sexpr(250))
    assert err.value.span.line == 2
    spec = ltlagent.load(deep_sexpr(90))
    assert spec.behavior[0].text == " ".join(["question"] * 90 + ["answer"])
    assert ltlagent.compile(spec).automaton.accepts(["question"] * 90 + ["answer"])


def test_crlf_and_cr_spec_text_reads_as_lf(tmp_path):
    text = SPEC % "G(c -> X a)"
    for newline in ("\r\n", "\r"):
        path = tmp_path / "spec.yaml"
        path.write_bytes(text.replace("\n", newline).encode())
        assert ltlagent.load(path).behavior == ltlagent.load(text).behavior
        with pytest.raises(ltlagent.SpecError) as err:
            ltlagent.load(path.read_bytes().decode().replace("G(c", "G(e"))
        assert (err.value.span.line, err.value.span.col) == (6, 7)


def test_carets_escape_control_characters_and_stay_under_the_span():
    source = Source("f", "ab\x00\x1b[2Jcd\x7fX tail")
    caret = Span(source, 10, 11).caret()  # the X
    line, marker = caret.splitlines()
    assert line.strip() == "ab\\x00\\x1b[2Jcd\\x7fX tail"
    assert line[marker.index("^")] == "X" and marker.count("^") == 1
    assert printable("tab\tok\n") == "tab\tok\n"


def test_carets_cut_long_lines_around_the_span():
    source = Source("f", "x" * 5000 + "Y" + "z" * 5000)
    line, marker = Span(source, 5000, 5001).caret().splitlines()
    assert len(line) < 200 and line[marker.index("^")] == "Y"
    assert line.strip().startswith("…") and line.endswith("…")

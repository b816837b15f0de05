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


# --------------------------------------------------------------------------------------- messages

def test_a_grammar_with_a_start_rule_and_a_syntax_error_gets_no_start_rule_hint():
    with pytest.raises(ltlagent.SpecSemanticError) as err:
        ltlagent.load("name: t\nsegments:\n  a: {tag: 'A:', grammar: 'start: \"a\" |)'}\n")
    assert err.value.message.startswith("invalid Lark grammar") and err.value.hint is None


def test_an_unsatisfiable_spec_names_a_smallest_conflicting_set_of_rules():
    from ltlagent.compiler.analysis import conflicting_rules

    spec = ltlagent.load("name: u\nsegments:\n  a: {tag: 'A:'}\n  b: {tag: 'B:'}\n  c: {tag: 'C:'}\nbehavior:\n"
                         "  - G(a -> X b)\n  - F c\n  - a\n  - G !b\n  - G(c -> last)\n")
    core = conflicting_rules(spec)
    assert [r.text for r in core] == ["G(a -> X b)", "a", "G !b"]
    for i in range(len(core)):  # minimal: every rule of the core is needed
        rest = [r for j, r in enumerate(core) if j != i]
        assert ltlagent.compile(spec.__class__(**{**spec.__dict__, "behavior": tuple(rest)})).automaton.accepting
    assert conflicting_rules(ltlagent.load("name: s\nsegments:\n  a: {tag: 'A:'}\nbehavior:\n  - F a\n")) == []


def cli(args):
    import contextlib
    import io

    from ltlagent.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = main(args)
    return code, out.getvalue()


def test_version_and_help_screens():
    from importlib.metadata import version

    assert cli(["--version"]) == (0, f"ltlagent {version('ltlagent')}\n")
    for command in ("compile", "check", "verify", "show", "run", "eval"):
        code, text = cli([command, "--help"])
        assert code == 0 and "<bool>" not in text and "╭" not in text
    assert ".png, .pdf or .svg" in " ".join(cli(["eval", "--help"])[1].split())


def test_a_bad_plot_extension_is_a_usage_error():
    from paths import SPECS

    code, text = cli(["eval", str(SPECS / "cot.yaml"), "--data", "x.jsonl", "--task", "gsm8k", "--plot", "a.gif"])
    assert code == 2 and "--plot" in text and ".png" in text


def test_conversion_bars_stay_off_when_stderr_is_not_a_terminal(capsys):
    import types

    from tqdm.auto import tqdm

    from ltlagent.runtime.models import _bars_only_on_a_terminal

    module = types.SimpleNamespace(tqdm=tqdm)
    with _bars_only_on_a_terminal(module):
        list(module.tqdm(range(3), desc="converting"))
    assert "converting" not in capsys.readouterr().err
    assert module.tqdm is tqdm
    list(module.tqdm(range(3), desc="converting"))
    assert "converting" in capsys.readouterr().err  # so the check above could fail


@pytest.mark.parametrize("newline", ["\r\n", "\r", "\n"])
def test_prompt_files_with_any_line_endings_split_into_their_examples(tmp_path, newline):
    from ltlagent.compiler.verify import check_example, load_examples

    spec = ltlagent.compile(ltlagent.load("name: qa\nsegments:\n  q: {tag: '[Question]', by: env, input: task}\n"
                                          "  a: {tag: '[Answer]'}\nbehavior:\n  - pattern: q a\n"))
    path = tmp_path / "prompts.txt"
    path.write_bytes("[Question] q1\n[Answer] a1\n---\n[Question] q2\n[Answer] a2\n".replace("\n", newline).encode())
    examples = load_examples(path)
    assert [text.split() for text, _ in examples] == [["[Question]", "q1", "[Answer]", "a1"],
                                                      ["[Question]", "q2", "[Answer]", "a2"]]
    assert all(check_example(spec, text, where).ok for text, where in examples)
    assert examples[1][1].span(0, 1).line == 4

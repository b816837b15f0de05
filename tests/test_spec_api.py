"""Spec loading, the public API, the JSON artifact, the checks and prompt verification."""
from __future__ import annotations

import json
import textwrap

import pytest

import ltlagent
from ltlagent.compiler.analysis import analyse, environment_game, satisfiable
from ltlagent.compiler.errors import ArtifactError, SpecSemanticError, SpecSyntaxError
from ltlagent.compiler.verify import check_example, split_segments

from paths import SPECS

REFLEXION = textwrap.dedent("""\
    name: reflexion-mini
    segments:
      question: {tag: "Question:", by: env, input: task}
      attempt: {tag: "Attempt:"}
      evaluation: {tag: "Evaluation:", by: env, choice: [pass, fail], tool: judge}
      reflection: {tag: "Reflection:"}
      answer: {tag: "Answer:"}
    tools:
      judge: {function: "mymod:judge"}
    behavior:
      - pattern: question (attempt evaluation reflection){1,3} answer
      - G(evaluation.fail -> X reflection) | G(evaluation -> X reflection)
      - G(evaluation.pass -> X (reflection & X answer))
    limits: {max_segments: 12}
""")


def test_load_path_and_text_agree():
    path = SPECS / "react.yaml"
    from_path, from_text = ltlagent.load(path), ltlagent.load(path.read_text())
    assert from_path == from_text
    assert from_path.source.name == str(path) and from_text.source.name == "<string>"


def test_alphabet_expands_choice_options():
    spec = ltlagent.load(SPECS / "react.yaml")
    assert spec.alphabet == ("question", "thought", "action.Search", "action.Lookup", "action_input",
                             "observation", "final_thought", "answer")
    aut = ltlagent.compile(spec).automaton
    with pytest.raises(KeyError):
        aut.step(aut.initial, "action")  # a choice segment is read through its options


def test_option_propositions_constrain_the_automaton():
    aut = ltlagent.compile_formula("G(s.x -> X b) & F b", ["s.x", "s.y", "b"])
    assert aut.accepts(["s.y", "b"]) and aut.accepts(["s.x", "b"])
    assert not aut.accepts(["s.x", "s.y", "b"])


def test_compile_formula_api():
    aut = ltlagent.compile_formula("G(a -> X b)", ["a", "b", "c"])
    assert aut.initial in aut.states
    assert aut.step(aut.initial, "a") is not None
    assert aut.step(aut.step(aut.initial, "a"), "c") is None
    assert aut.accepts(["c", "a", "b"]) and not aut.accepts(["a"]) and not aut.accepts([])
    with pytest.raises(SpecSemanticError, match="undeclared proposition 'd'"):
        ltlagent.compile_formula("F d", ["a"])


def test_state_cap_raises_instead_of_exhausting_memory():
    from ltlagent.compiler.errors import AutomatonTooLarge

    with pytest.raises(AutomatonTooLarge, match="more than 20 states"):
        ltlagent.compile_formula("F(a & X X X X X X X X X X X X X X X X X X X X X X X X X X true)", ["a", "b"], cap=20)


def test_artifact_round_trip_and_version_check(tmp_path):
    compiled = ltlagent.compile(ltlagent.load(SPECS / "react.yaml"))
    target = tmp_path / "react.json"
    compiled.save(target)
    again = ltlagent.load_artifact(target)
    assert again.automaton == compiled.automaton and again.spec == compiled.spec
    assert again.to_json() == compiled.to_json()
    data = json.loads(target.read_text())
    assert data["format"] == "ltlagent.compiled-spec" and data["version"] == 1
    data["version"] = 99
    target.write_text(json.dumps(data))
    with pytest.raises(ArtifactError, match="version 99"):
        ltlagent.load_artifact(target)


def test_rules_are_intersected():
    spec = ltlagent.load(SPECS / "react.yaml")
    aut = ltlagent.compile(spec).automaton
    step = ["thought", "action.Search", "action_input", "observation"]
    assert aut.accepts(["question", *step, "final_thought", "answer"])
    assert not aut.accepts(["question", "final_thought", "answer"])  # pattern needs one step
    assert not aut.accepts(["question", *step * 6, "final_thought", "answer"])  # at most five


def test_yaml_positions_in_errors():
    text = "name: t\nsegments:\n  a: {tag: 'A:'}\nbehavior:\n  - 'G(a -> X zz)'\n"
    with pytest.raises(SpecSemanticError) as caught:
        ltlagent.load(text)
    assert (caught.value.span.line, caught.value.span.col) == (5, 15)  # under "zz" inside the quotes
    assert "^^" in caught.value.render()


def test_yaml_syntax_error_is_located():
    with pytest.raises(SpecSyntaxError) as caught:
        ltlagent.load("name: t\nsegments: [a\n")
    assert caught.value.span.location().startswith("<string>:3:")


def test_unknown_tool_is_an_error():
    text = REFLEXION.replace("tool: judge", "tool: jugde")
    with pytest.raises(SpecSemanticError, match="unknown tool 'jugde'"):
        ltlagent.load(text)


def test_environment_game_robust_and_spoilable():
    compiled = ltlagent.compile(ltlagent.load(REFLEXION))
    assert environment_game(compiled).level == "ok"
    strict = REFLEXION.replace("{1,3} answer", "{1,3} answer\n  - G(answer -> Y_PASS)")
    strict = strict.replace("  - G(answer -> Y_PASS)", "  - '!answer U (evaluation.pass & X(reflection & X answer))'")
    finding = environment_game(ltlagent.compile(ltlagent.load(strict)))
    assert finding.level == "error"
    play = finding.detail[0]
    assert play.count("@evaluation.fail") == 3  # the environment fails every attempt


def test_unsatisfiable_spec_is_reported():
    text = "name: t\nsegments:\n  a: {tag: 'A:'}\nbehavior:\n  - G a\n  - F !a\n"
    finding = satisfiable(ltlagent.compile(ltlagent.load(text)))
    assert finding.level == "error"
    levels = {f.check: f.level for f in analyse(ltlagent.compile(ltlagent.load(text)))}
    assert levels["limits"] == "error"


def test_split_segments_prefers_longest_tag_and_line_starts():
    spec = ltlagent.load(SPECS / "react.yaml")
    text = "Question: q\nThought: Final Thought: is inline\nFinal Thought: done\nAnswer: x\n"
    pieces, preamble = split_segments(text, spec.segments)
    assert preamble is None
    assert [p.segment.name for p in pieces] == ["question", "thought", "final_thought", "answer"]
    assert pieces[1].content == "Final Thought: is inline"


def test_verify_reports_first_violation_with_allowed_segments():
    compiled = ltlagent.compile(ltlagent.load(SPECS / "react.yaml"))
    good = compiled.spec.prompt.examples[0]
    assert check_example(compiled, good.text, good.where).ok
    bad = good.text.replace("Action: Search\nAction Input: First", "Action: Search\nObservation: First", 1)
    result = check_example(compiled, bad, good.where)
    assert not result.ok
    assert result.violation.message == "segment 'observation' is not allowed here"
    assert result.violation.allowed == ("action_input",)
    line = next(i for i, l in enumerate(compiled.spec.source.text.splitlines(), 1) if "Action Input: First" in l)
    assert result.violation.span.line == line  # located inside the YAML file
    assert result.violation.span.source.name.endswith("react.yaml")


@pytest.mark.parametrize("spec_file", sorted(SPECS.glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_specs_check_and_verify(spec_file):
    compiled = ltlagent.compile(ltlagent.load(spec_file))
    assert all(f.level == "ok" for f in analyse(compiled)), analyse(compiled)
    for example in compiled.spec.prompt.examples:
        assert check_example(compiled, example.text, example.where).ok

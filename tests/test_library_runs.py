"""Every agent of the library runs for real: the tiny model (real SmolLM2 tokenizer) through the agent API
with the real tools over the demo document store; every run satisfies its spec, and the composite env
tools (ReWOO's solver, PASS's summaries, Reflexion's evaluator) do their contracted work. The eight
reference s-expression specs run unchanged through ``ltlagent run --prompt-file``."""
from __future__ import annotations

import json

import pytest

import ltlagent
from ltlagent.cli import main
from ltlagent.compiler.automaton import shortest_accepted
from ltlagent.runtime.agent import Agent, Runtime
from ltlagent.runtime.engines import Sampling
from ltlagent.runtime.tools import DocStore, ToolBox
from ltlagent.runtime.trace import verdict

from paths import REPO, SPECS, reference_spec_paths

pytestmark = pytest.mark.model  # whole episodes on the tiny model: make test-fast skips them

DOCS = REPO / "specs" / "docs" / "demo.jsonl"
QUESTION = "Which river flows through the city where the Eiffel Tower stands?"


@pytest.fixture(scope="module")
def loaded(tiny_model_path):
    """The tiny model on the transformers engine."""
    from ltlagent.runtime.engines.transformers import TransformersEngine
    from ltlagent.runtime.models import load_model

    return TransformersEngine(load_model(str(tiny_model_path), progress=lambda message: None), "cpu", 2)


@pytest.fixture(scope="module")
def runtime(loaded, tmp_path_factory):
    return Runtime.for_engine(loaded, tmp_path_factory.mktemp("idx"))


def run(name, loaded, runtime, seed=0, **kwargs):
    compiled = ltlagent.compile(ltlagent.load(SPECS / f"{name}.yaml"))
    agent = Agent(compiled, loaded, runtime)
    toolbox = ToolBox.for_spec(compiled.spec, docs=DocStore.from_jsonl(DOCS), builtins=("search", "lookup"))
    temperature = 0.0 if seed == 0 else 1.0
    result = agent.run(QUESTION, toolbox, Sampling(temperature, 1.0, seed), **kwargs)
    assert verdict(compiled, result)["satisfied"], (name, seed, result.letters)
    return result


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rewoo_solver_answers_every_planned_step(loaded, runtime, seed):
    result = run("rewoo", loaded, runtime, seed)
    plan, evidence = result.segments[1], result.segments[2]
    steps = plan.text.count("#E")
    assert evidence.tool["name"] == "rewoo_solver" and evidence.tool["ok"], evidence.tool
    assert [f"#E{i} = " in evidence.text for i in range(1, steps + 1)] == [True] * steps
    assert evidence.text.startswith("#E1 = ")


@pytest.mark.parametrize("name", ["pass", "pass_list"])
@pytest.mark.parametrize("seed", [0, 1])
def test_pass_steps_report_every_call(name, loaded, runtime, seed):
    result = run(name, loaded, runtime, seed)
    reports = [r for r in result.segments if r.name in ("summary", "results")]
    assert reports and all(r.tool["ok"] for r in reports)
    for i, record in enumerate(result.segments):
        if record.name in ("summary", "results"):
            start = max(j for j in range(i) if result.segments[j].name == "plan")
            calls = [r.text for r in result.segments[start:i] if r.name == "action_input"]
            assert record.tool["input"] == result.segments[start].text
            if name == "pass_list":
                parts = [f"({k}) " for k in range(1, len(calls) + 1)]
                assert record.text.startswith("(1) ") and all(p in record.text for p in parts)
            else:
                positions = [record.text.find(" ".join(c.split()) + ": ") for c in calls]
                assert positions[0] == 0 and -1 not in positions, (calls, record.text)


def test_reflexion_evaluator_grades_each_proposed_answer(loaded, runtime):
    failing = run("reflexion", loaded, runtime, reference="a reference no model would guess")
    evaluations = [r for r in failing.segments if r.name == "evaluation"]
    assert [r.option for r in evaluations] == ["fail"] * len(evaluations) and evaluations
    assert failing.letters[-2:] == ["reflection", "answer"]
    proposed = next(r.text for r in failing.segments if r.name == "proposed_answer")
    passing = run("reflexion", loaded, runtime, reference=proposed)  # greedy: the same first proposal
    assert [r.option for r in passing.segments if r.name == "evaluation"] == ["pass"]
    assert passing.letters[-2:] == ["evaluation.pass", "answer"]
    assert next(r.text for r in passing.segments if r.name == "proposed_answer") == proposed


def test_chat_takes_user_turns(loaded, runtime):
    turns = iter(["Where does the Seine flow?", "thanks"])
    result = run("chat", loaded, runtime, ask_user=lambda segment: next(turns, "bye"))
    assert result.segments[0].name == "user" and result.segments[0].text == "Where does the Seine flow?"


def test_react_with_calculator(loaded, runtime):
    result = run("react_calc", loaded, runtime)
    calls = [r.tool for r in result.segments if r.tool]
    assert calls and all(c["name"] in ("Search", "Lookup", "Calculate") for c in calls)
    assert all(c["ok"] or c["text"].startswith(f"Tool {c['name']} failed: ") for c in calls)  # observed, not raised


def test_reflexion_without_a_reference_stops_with_a_clear_error(tiny_model_path, capsys, tmp_path):
    code = main(["run", str(SPECS / "reflexion.yaml"), "--task", QUESTION, "--docs", str(DOCS),
                 "--model", str(tiny_model_path), "--trace", str(tmp_path / "t.jsonl")])
    err = capsys.readouterr().err
    assert code == 1 and "No reference answer" in err and "--reference" in err and "Traceback" not in err
    assert f"partial trace: {tmp_path / 't.jsonl'}" in err


def prompt_file_for(compiled, path):
    """A one-example prompt file: a shortest accepted trace of the spec, each segment with some content."""
    lines = []
    for letter in shortest_accepted(compiled.automaton):
        segment = compiled.spec.segment(letter.split(".", 1)[0])
        content = letter.split(".", 1)[1] if "." in letter else "Paris"
        lines.append(f"{segment.tag} {content}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.skipif(not reference_spec_paths(), reason="reference specs not found")
@pytest.mark.parametrize("spec", reference_spec_paths(), ids=lambda p: p.stem)
def test_reference_specs_run_unchanged_with_prompts_from_a_file(spec, tiny_model_path, tmp_path, capsys):
    compiled = ltlagent.compile(ltlagent.load(spec))
    prompts = prompt_file_for(compiled, tmp_path / "prompt.txt")
    assert main(["verify", str(spec), str(prompts)]) == 0, capsys.readouterr()
    capsys.readouterr()
    trace = tmp_path / "trace.jsonl"
    code = main(["run", str(spec), "--task", QUESTION, "--docs", str(DOCS), "--model", str(tiny_model_path),
                 "--prompt-file", str(prompts), "--trace", str(trace)])
    assert code == 0, capsys.readouterr().err
    summary = json.loads(trace.read_text().splitlines()[-1])
    assert summary["verdict"]["satisfied"] and summary["spec"] == compiled.spec.name


@pytest.mark.skipif(not reference_spec_paths(), reason="reference specs not found")
def test_run_warns_about_missing_or_broken_examples(tiny_model_path, tmp_path, capsys):
    react = next(p for p in reference_spec_paths() if p.stem == "react")
    base = ["run", str(react), "--task", QUESTION, "--docs", str(DOCS), "--model", str(tiny_model_path),
            "--trace", str(tmp_path / "t.jsonl")]
    assert main(base) == 0
    assert "warning: the spec has no few-shot examples and no --prompt-file" in capsys.readouterr().err
    bad = tmp_path / "bad.txt"
    bad.write_text("[Question] q\n[Observation] o\n", encoding="utf-8")
    assert main(base + ["--prompt-file", str(bad)]) == 0
    err = capsys.readouterr().err
    assert f"warning: {bad}:2:1: example 1 breaks the spec: segment 'observation' is not allowed here" in err


def test_an_action_naming_no_tool_says_so():
    from ltlagent.runtime.environment import default_fallback

    toolbox = ToolBox.for_spec(ltlagent.load(SPECS / "react.yaml"), docs=DocStore.from_jsonl(DOCS))
    spec = ltlagent.load(SPECS / "react.yaml")
    record = lambda name, text: type("R", (), {"name": name, "text": text, "option": None, "by": "model"})()
    text = default_fallback(toolbox)(spec.segment("observation"), [record("action", "search."),
                                                                  record("action_input", "Paris")])
    assert text == "No tool named 'search.'. Available tools: Search, Lookup."

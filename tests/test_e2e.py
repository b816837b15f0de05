"""End to end with real components: the embedded SmolLM2 model, the real tokenizer, the shipped document
store and tools, and the real `ltlagent run` command in a subprocess."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import ltlagent
from ltlagent.runtime.agent import Agent, Runtime
from ltlagent.runtime.tools import DocStore, ToolBox

from paths import REPO, SPECS, reference_spec_paths

DOCS = SPECS / "docs" / "demo.jsonl"
QUESTIONS = [
    "Which river flows through the city where the Eiffel Tower stands?",
    "Who designed the Eiffel Tower?",
]


def cli(*args, env_extra=None, timeout=600):
    env = {**os.environ, "NO_COLOR": "1", "HF_HUB_OFFLINE": "1", **(env_extra or {})}
    env.pop("LTLAGENT_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "ltlagent", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def react_agent(embedded_model, tmp_path_factory):
    compiled = ltlagent.compile(ltlagent.load(SPECS / "react.yaml"))
    from ltlagent.runtime.engines.transformers import TransformersEngine

    engine = TransformersEngine(embedded_model, "cpu", 2)
    return Agent(compiled, engine, Runtime.for_engine(engine, tmp_path_factory.mktemp("indexes")))


@pytest.mark.parametrize("question", QUESTIONS)
def test_embedded_model_runs_react_within_the_spec(react_agent, question):
    from ltlagent.runtime.trace import verdict

    toolbox = ToolBox.for_spec(react_agent.compiled.spec, docs=DocStore.from_jsonl(DOCS))
    result = react_agent.run(question, toolbox)
    assert verdict(react_agent.compiled, result)["satisfied"], result.transcript
    assert result.letters[0] == "question" and result.letters[-1] == "answer"
    observations = [r for r in result.segments if r.name == "observation"]
    assert observations and all(r.tool and r.tool["name"] in ("Search", "Lookup") for r in observations)
    assert all(r.text for r in observations)  # real tool output, never empty
    assert result.forward_passes < result.tokens_fed  # forced tokens and env text went in batches


def test_cli_run_json_trace(embedded_conversion, tmp_path):
    cache_root, _, _ = embedded_conversion
    trace = tmp_path / "trace.jsonl"
    done = cli("run", "specs/react.yaml", "--task", QUESTIONS[0], "--docs", str(DOCS), "--json",
               "--trace", str(trace), env_extra={"LTLAGENT_CACHE": str(cache_root)})
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert lines == [json.loads(line) for line in trace.read_text().splitlines()]
    segments, summary = lines[:-1], lines[-1]
    assert summary["type"] == "summary" and summary["verdict"]["satisfied"]
    assert summary["segments"] == len(segments) and summary["model"] == "SmolLM2-135M-Instruct"
    for field in ("name", "option", "text", "by", "state_before", "state_after", "tokens", "forward_passes",
                  "seconds"):
        assert all(field in s for s in segments)
    assert [s["state_after"] for s in segments[:-1]] == [s["state_before"] for s in segments[1:]]
    assert "Traceback" not in done.stderr


def test_cli_run_streams_segments_with_a_local_model_dir(tiny_model_path, tmp_path):
    done = cli("run", "specs/react.yaml", "--task", QUESTIONS[1], "--docs", str(DOCS),
               "--model", str(tiny_model_path), "--trace", str(tmp_path / "t.jsonl"), "--seed", "3",
               "--temperature", "0.7")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("⟵ Question: " + QUESTIONS[1])
    assert "Thought:" in done.stdout and "⟵ Observation:" in done.stdout
    assert "satisfied:" in done.stderr


@pytest.mark.skipif(not reference_spec_paths(), reason="reference specs not found")
def test_reference_spec_runs_unchanged(tiny_model_path, tmp_path):
    react = next(p for p in reference_spec_paths() if p.stem == "react")
    done = cli("run", str(react), "--task", QUESTIONS[0], "--docs", str(DOCS), "--model", str(tiny_model_path),
               "--json", "--trace", str(tmp_path / "t.jsonl"))
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.splitlines()[-1])
    assert summary["verdict"]["satisfied"]


def test_missing_model_is_a_clear_error(tmp_path):
    done = cli("run", "specs/react.yaml", "--task", "q", "--model", str(tmp_path / "nowhere"))
    assert done.returncode == 1
    assert "nowhere" in done.stderr and "Traceback" not in done.stderr


def test_bad_document_store_is_a_clear_error(tmp_path, tiny_model_path):
    bad = tmp_path / "docs.jsonl"
    bad.write_text("{not json\n")
    done = cli("run", "specs/react.yaml", "--task", "q", "--docs", str(bad), "--model", str(tiny_model_path))
    assert done.returncode == 1
    assert f"{bad}:1" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.skipif(not (REPO.parent / "shared" / "data").is_dir(), reason="no shared data")
def test_cli_eval_writes_results_and_resumes(tiny_model_path, tmp_path):
    data = REPO.parent / "shared" / "data" / "hotpotqa_distractor_dev70.jsonl"  # the real file, as CI has it
    out = tmp_path / "results.jsonl"
    args = ["eval", "specs/react.yaml", "--data", str(data), "--task", "hotpotqa", "--limit", "2", "--out", str(out),
            "--model", str(tiny_model_path)]
    done = cli(*args)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 2 and all(r["satisfied"] is True and 0.0 <= r["f1"] <= 1.0 for r in rows)
    assert all(r["letters"][0] == "question" and r["letters"][-1] == "answer" for r in rows)
    assert "[2/2]" in done.stderr and "satisfied" in done.stdout
    again = cli(*args[:-2], "--limit", "3", "--resume", "--model", str(tiny_model_path))
    assert again.returncode == 0, again.stderr
    ids = [json.loads(line)["id"] for line in out.read_text().splitlines()]
    assert ids[:2] == [r["id"] for r in rows] and len(ids) == 3 and len(set(ids)) == 3


def test_cli_eval_ablation_table_and_plot(tiny_model_path, tmp_path):
    data = REPO / "tests" / "data" / "gsm8k_mini.jsonl"
    base = ["eval", "specs/direct.yaml", "specs/cot.yaml", "--data", str(data), "--task", "gsm8k",
            "--out", str(tmp_path / "res"), "--model", str(tiny_model_path)]
    assert cli(*base).returncode == 0
    done = cli(*base, "--unconstrained", "--plot", str(tmp_path / "plot.png"))
    assert done.returncode == 0, done.stderr
    for name in ("direct", "cot"):
        free = [json.loads(line) for line in (tmp_path / "res" / f"{name}-gsm8k-unconstrained.jsonl").read_text().splitlines()]
        assert len(free) == 2 and all({"parse_failed", "satisfied", "accuracy", "stopped_by"} <= set(r) for r in free)
        assert all(r["satisfied"] is False for r in free if r["parse_failed"])
    table = [line.split() for line in done.stdout.splitlines()[1:-1]]
    assert done.stdout.splitlines()[-1] == f"plot: {tmp_path / 'plot.png'}"
    assert table[0][:4] == ["agent", "mode", "items", "acc"] and "parse" in table[0]
    assert [row[:3] for row in table[1:]] == [["direct", "constrained", "2"], ["direct", "unconstrained", "2"],
                                             ["cot", "constrained", "2"], ["cot", "unconstrained", "2"]]
    assert table[1][4] == "100%" and table[3][4] == "100%"  # constrained runs always satisfy their spec
    assert (tmp_path / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_eval_rejects_several_specs_into_one_file(tmp_path):
    done = cli("eval", "specs/direct.yaml", "specs/cot.yaml", "--data", "x.jsonl", "--task", "gsm8k",
               "--out", str(tmp_path / "r.jsonl"))
    assert done.returncode == 2 and "results directory" in done.stderr

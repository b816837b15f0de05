"""The evaluation harness's bookkeeping: results paths, per-run means (one denominator rule for the table
and the progress line), the table, plot checks, graders, answers; and ``ltlagent eval`` refusing bad input
before any item runs."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from ltlagent.cli import main
from ltlagent.runtime.decode import SegmentRecord
from ltlagent.runtime.eval.datasets import Item
from ltlagent.runtime.eval.loop import Tally, answer_segments, evaluate, final_answer, grader
from ltlagent.runtime.eval.report import (ReportError, Row, both_modes, check_plot, means, results_path, summarize,
                                          table)

import ltlagent
from paths import REPO, SPECS

GSM8K = REPO / "tests" / "data" / "gsm8k_mini.jsonl"


def test_results_paths():
    assert results_path(Path("res"), "react", "hotpotqa", False) == Path("res/react-hotpotqa.jsonl")
    assert results_path(Path("res"), "react", "gsm8k", True) == Path("res/react-gsm8k-unconstrained.jsonl")
    assert results_path(Path("r.jsonl"), "react", "gsm8k", True) == Path("r-unconstrained.jsonl")
    assert results_path(Path("res"), "../a/b c", "gsm8k", False) == Path("res/_a_b_c-gsm8k.jsonl")
    assert both_modes(Path("res/x-gsm8k-unconstrained.jsonl")) == both_modes(Path("res/x-gsm8k.jsonl")) == [
        ("constrained", Path("res/x-gsm8k.jsonl")), ("unconstrained", Path("res/x-gsm8k-unconstrained.jsonl"))]


def test_means_count_failed_runs_as_wrong_and_leave_them_out_of_costs():
    rows = [{"em": 1.0, "satisfied": True, "parse_failed": False, "seconds": 2.0, "model_tokens": 10},
            {"em": 0.0, "satisfied": False, "parse_failed": True, "seconds": 4.0, "model_tokens": 30},
            {"em": 0.0, "satisfied": False, "error": "DecodeError: boom", "seconds": 9.0}]
    m = means(rows)
    assert m["em"] == pytest.approx(1 / 3) and m["satisfied"] == pytest.approx(1 / 3)
    assert m["parse_failed"] == pytest.approx(1 / 3) and m["errors"] == pytest.approx(1 / 3)
    assert m["seconds"] == 3.0 and m["model_tokens"] == 20.0
    assert "errors" not in means(rows[:2])
    tally = Tally()
    for row in rows:
        tally.add(row)
    assert tally.count == 3 and tally.means() == m  # the progress line and the table agree


def test_summarize_reads_this_runs_items_and_skips_torn_lines(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps({"id": "a", "accuracy": 1.0}) + "\n" + json.dumps({"id": "b", "accuracy": 0.0})
                    + "\n" + '{"id": "c", "accur')
    assert summarize("cot", "constrained", path).items == 2
    row = summarize("cot", "constrained", path, ids={"a", "z"})
    assert row == Row("cot", "constrained", 1, {"accuracy": 1.0})
    assert summarize("cot", "constrained", path, ids={"z"}) is None
    assert summarize("cot", "constrained", tmp_path / "missing.jsonl") is None


def test_table_shows_the_columns_any_row_has():
    text = table([Row("react", "constrained", 20, {"em": 0.1, "satisfied": 1.0, "seconds": 8.25}),
                  Row("react", "unconstrained", 20, {"em": 0.05, "satisfied": 0.35, "parse_failed": 0.5})])
    lines = [line.split() for line in text.splitlines()]
    assert lines[0] == ["agent", "mode", "items", "EM", "satisfied", "parse", "fail", "s/item"]
    assert lines[1] == ["react", "constrained", "20", "0.100", "100%", "-", "8.2"]
    assert lines[2] == ["react", "unconstrained", "20", "0.050", "35%", "50%", "-"]


def test_plot_checks(tmp_path, monkeypatch):
    with pytest.raises(ReportError, match="draws .png, .pdf, .svg"):
        check_plot(tmp_path / "p.xyz")
    import importlib.util
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ReportError, match=r"pip install 'ltlagent\[plot\]'"):
        check_plot(tmp_path / "p.png")


def test_graders_and_answers():
    assert grader("hotpotqa")("the Seine", "Seine") and not grader("hotpotqa")("Paris", "Seine")
    assert grader("gsm8k")("so 30 eggs", "5 * 6 = 30\n#### 30") and not grader("gsm8k")("31", "#### 30")
    spec = ltlagent.load(SPECS / "reflexion.yaml")
    assert answer_segments(spec) == ("answer",)
    record = lambda name, text: SegmentRecord(name, name, None, text, "model", 0, 0, 0, 0, 0, 0.0)
    runs = [record("proposed_answer", "Paris"), record("answer", "Seine"), record("reflection", "r")]
    assert final_answer(runs, ("answer",)) == "Seine"
    assert final_answer(runs[:1], ("answer",)) == ""  # no answer written: nothing to score
    assert final_answer(runs, ()) == "r"  # a spec without an answer segment: the last model text


def test_evaluate_tallies_only_the_items_asked_for(tmp_path):
    out = tmp_path / "r.jsonl"
    out.write_text(json.dumps({"id": "old", "accuracy": 1.0, "satisfied": True}) + "\n")
    items = [Item("1", "q", "#### 7"), Item("2", "q", "#### 8")]
    tally = evaluate(items, "gsm8k", lambda item, k: {"prediction": "7", "satisfied": True}, out,
                     resume=True)
    assert tally.count == 2 and tally.means()["accuracy"] == 0.5
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == ["old", "1", "2"]


def test_eval_refuses_two_specs_of_one_name_before_running(tmp_path, capsys):
    copy = tmp_path / "react.yaml"
    copy.write_text((SPECS / "react.yaml").read_text())
    code = main(["eval", str(SPECS / "react.yaml"), str(copy), "--data", str(GSM8K), "--task", "gsm8k",
                 "--out", str(tmp_path / "res"), "--model", str(tmp_path / "no-model")])
    assert code == 1 and "several specs are named 'react'" in capsys.readouterr().err
    assert not (tmp_path / "res").exists()


def test_eval_refuses_a_bad_plot_file_before_running(tmp_path, capsys):
    code = main(["eval", str(SPECS / "cot.yaml"), "--data", str(GSM8K), "--task", "gsm8k",
                 "--out", str(tmp_path / "res"), "--plot", str(tmp_path / "p.txt"), "--model", str(tmp_path / "m")])
    assert code == 2 and "p.txt: --plot draws" in capsys.readouterr().err  # a usage error
    assert not (tmp_path / "res").exists()


def test_eval_finds_a_bad_later_spec_before_running(tmp_path, tiny_model_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text('name: bad\nsegments:\n  q: {tag: "Q:", by: env, input: task}\n'
                   '  a: {tag: "A:", regex: "x\\\\bx"}\n'  # a word boundary: the runtime cannot decode it
                   'behavior:\n  - pattern: q a\n')
    code = main(["eval", str(SPECS / "cot.yaml"), str(bad), "--data", str(GSM8K), "--task", "gsm8k",
                 "--out", str(tmp_path / "res"), "--model", str(tiny_model_path)])
    err = capsys.readouterr().err
    assert code == 1 and "word boundaries" in err and "Traceback" not in err and "internal error" not in err
    assert not (tmp_path / "res").exists()


def test_the_plot_draws_values_counts_and_costs_side_by_side(tmp_path):
    from ltlagent.runtime.eval.report import item_counts, panels, plot

    rows = [Row("react", "constrained", 20, {"em": 0.1, "f1": 0.2, "satisfied": 1.0, "parse_failed": 0.0,
                                             "seconds": 8.1, "model_tokens": 164}),
            Row("react", "unconstrained", 18, {"em": 0.0, "f1": 0.05, "satisfied": 0.05, "parse_failed": 0.35,
                                               "seconds": 41.7, "model_tokens": 520}),
            Row("cot", "constrained", 20, {"em": 0.0, "f1": 0.0, "satisfied": 1.0, "seconds": 1.8,
                                           "model_tokens": 37})]
    assert panels(rows) == ["em", "f1", "satisfied", "parse_failed", "seconds", "model_tokens"]
    assert item_counts(rows) == {"react": "n=20 / 18", "cot": "n=20"}
    path = tmp_path / "sub" / "p.png"
    plot(rows, path, "hotpotqa")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    import matplotlib.image

    pixels = matplotlib.image.imread(path)
    assert pixels.shape[1] > 1000 and pixels.std() > 0.05  # a real chart, not a blank canvas
    svg = tmp_path / "p.svg"
    plot(rows, svg, "hotpotqa")
    import re

    texts = re.findall(r"<!-- (.*?) -->", svg.read_text())  # matplotlib names each drawn text in a comment
    for label in ("n=20 / 18", "n=20", "0.10", "100%", "5%", "35%", "41.7", "520", "seconds per item",
                  "model tokens per item", "constrained", "unconstrained"):
        assert label in texts, label


def test_summary_rows_carry_their_item_counts_and_a_user_metric(tmp_path):
    path = tmp_path / "r.jsonl"
    rows = [{"id": str(i), "overlap": i / 4, "metrics": ["overlap"], "satisfied": True, "seconds": 1.0}
            for i in range(4)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    row = summarize("cot", "constrained", path)
    assert row.items == 4 and row.means["overlap"] == pytest.approx(0.375)
    head = table([row]).splitlines()[0].split()
    assert head[:5] == ["agent", "mode", "items", "overlap", "satisfied"]


def test_old_result_rows_without_runs_or_metric_names_still_summarise(tmp_path):
    path = tmp_path / "old.jsonl"
    path.write_text(json.dumps({"id": "1", "question": "q", "gold": "#### 3", "prediction": "3", "satisfied": True,
                                "parse_failed": False, "segments": 3, "model_tokens": 40, "seconds": 2.0,
                                "accuracy": 1.0}) + "\n")
    row = summarize("cot", "constrained", path)
    assert row.items == 1 and row.means == {"accuracy": 1.0, "satisfied": 1.0, "parse_failed": 0.0, "seconds": 2.0,
                                            "model_tokens": 40.0, "segments": 3.0}


def test_episode_fields_keep_the_whole_run():
    from ltlagent.runtime.decode import RunResult
    from ltlagent.runtime.eval.rows import episode_fields

    records = [SegmentRecord("question", "question", None, "Who?", "env", 0, 1, 3, 3, 1, 0.0),
               SegmentRecord("action", "action.Search", "Search", "Search", "model", 1, 2, 2, 0, 2, 0.1),
               SegmentRecord("observation", "observation", None, "Paris is...", "env", 2, 3, 4, 4, 1, 0.0,
                             {"name": "Search", "input": "Paris", "ok": True, "error": None, "text": "Paris is...",
                              "seconds": 0.01}),
               SegmentRecord("answer", "answer", None, "Paris", "model", 3, 4, 2, 0, 2, 0.1)]
    prompt = "Instructions\n\n"
    result = RunResult(records, "end", 4, True, 4, 6, 13, 1.25, prompt + "Question: Who?\n...Answer: Paris\n")
    fields = episode_fields(result, "Paris", True, None, prompt)
    assert fields["transcript"] == "Question: Who?\n...Answer: Paris\n" and fields["segments"] == 4
    assert [s["letter"] for s in fields["trace"]] == result.letters == fields["letters"]
    assert fields["trace"][1] == {"name": "action", "letter": "action.Search", "option": "Search", "text": "Search",
                                  "by": "model", "tokens": 2}
    assert fields["trace"][2]["tool"] == {"name": "Search", "input": "Paris", "ok": True, "error": None}
    assert json.loads(json.dumps(fields)) == fields

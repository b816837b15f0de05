"""Evaluation metrics, datasets and the resumable loop (the loop is driven by a fake run function)."""
from __future__ import annotations

import json

import pytest

from ltlagent.runtime.eval.datasets import DatasetError, Item, load_items
from ltlagent.runtime.eval.loop import done_ids, evaluate
from ltlagent.runtime.eval.metrics import exact_match, f1, gsm8k_gold, normalize_answer, numeric_match

from paths import SHARED

DATA = SHARED / "data"


@pytest.mark.parametrize("prediction, gold, em, f", [
    ("The Eiffel Tower!", "eiffel tower", 1.0, 1.0),
    ("Seine river", "the Seine", 0.0, 2 / 3),
    ("yes", "no", 0.0, 0.0),
    ("", "Paris", 0.0, 0.0),
])
def test_hotpotqa_metrics(prediction, gold, em, f):
    assert exact_match(prediction, gold) == em
    assert f1(prediction, gold) == pytest.approx(f)


def test_normalisation_and_gsm8k_numbers():
    assert normalize_answer("  An Apple, a Day ") == "apple day"
    assert gsm8k_gold("so 9 * 2 = 18\n#### 1,018") == 1018
    assert numeric_match("The answer is $1,018.", 1018) == 1.0
    assert numeric_match("about 17", 18) == 0.0
    with pytest.raises(ValueError):
        gsm8k_gold("no marker")


@pytest.mark.skipif(not DATA.is_dir(), reason=f"no shared data at {DATA}")
def test_shared_datasets_load():
    hotpot = load_items(DATA / "hotpotqa_distractor_dev70.jsonl", "hotpotqa")
    assert len(hotpot) == 70 and all(len(i.context) == 10 for i in hotpot)
    gsm = load_items(DATA / "gsm8k_test_first1000.jsonl", "gsm8k", limit=50)
    assert len(gsm) == 50 and gsm8k_gold(gsm[0].answer) == 18


def test_bad_dataset_line_is_located(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"question": "q", "answer": "#### 3"}\n{"q": 1}\n')
    with pytest.raises(DatasetError, match=r"d.jsonl:2:"):
        load_items(path, "gsm8k")


def test_loop_writes_incrementally_and_resumes(tmp_path):
    items = [Item(str(i), f"q{i}", "#### 4") for i in range(5)]
    out = tmp_path / "results.jsonl"
    calls = []

    def run(item, k):
        calls.append(item.id)
        if item.id == "2":
            raise KeyboardInterrupt  # an interruption mid-evaluation
        return {"prediction": "4", "satisfied": True}

    with pytest.raises(KeyboardInterrupt):
        evaluate(items, "gsm8k", run, out)
    assert done_ids(out) == {"0", "1"}  # what finished is on disk
    calls.clear()
    tally = evaluate(items, "gsm8k", lambda item, k: {"prediction": "4", "satisfied": True}, out,
                     resume=True)
    assert done_ids(out) == {str(i) for i in range(5)}
    assert tally.count == 5 and tally.means()["accuracy"] == 1.0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["0", "1", "2", "3", "4"]


def test_a_failing_run_is_recorded_not_fatal(tmp_path):
    out = tmp_path / "r.jsonl"
    tally = evaluate([Item("a", "q", "Paris")], "hotpotqa", lambda item, k: 1 / 0, out)
    row = json.loads(out.read_text())
    assert row["error"].startswith("ZeroDivisionError") and row["em"] == 0.0 and tally.count == 1


def test_gsm8k_data_read_as_hotpotqa_is_refused(tmp_path):
    from paths import REPO

    with pytest.raises(DatasetError, match=r"gsm8k_mini.jsonl:1: this looks like GSM8K data .*use --task gsm8k"):
        load_items(REPO / "tests" / "data" / "gsm8k_mini.jsonl", "hotpotqa")

"""Evaluation tasks: FEVER, any JSONL file (``--task custom --fields``), ``--metric``; bad data located as
``file:line: message`` (exit 1), bad options as usage errors (exit 2), through the real command line."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from ltlagent.runtime.eval.datasets import DatasetError, Item, load_items
from ltlagent.runtime.eval.rows import item_row
from ltlagent.runtime.eval.tasks import (FEVER_LABELS, MetricError, TaskError, as_scores, make_task, parse_fields)

from paths import REPO, SHARED, SPECS

DATA = REPO / "tests" / "data"
FEVER = SHARED / "data" / "fever_dev_first1000.jsonl"


def cli(*args, cwd=REPO, env=None, timeout=120):
    """``python -m ltlagent ARGS`` in a subprocess."""
    return subprocess.run([sys.executable, "-m", "ltlagent", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "NO_COLOR": "1", **(env or {})})


# --- tasks and fields ------------------------------------------------------------------------------

def test_fever_items_are_claims_with_labels():
    items = load_items(DATA / "fever_mini.jsonl", "fever")
    assert [(i.id, i.answer) for i in items] == [("1", "SUPPORTS"), ("2", "REFUTES"), ("3", "NOT ENOUGH INFO")]
    assert items[0].question == "The Loire is a river in France." and items[0].context is None


@pytest.mark.skipif(not FEVER.is_file(), reason=f"no shared data at {FEVER}")
def test_shared_fever_dev_loads():
    items = load_items(FEVER, "fever")
    assert len(items) == 1000 and len({i.id for i in items}) == 1000
    assert {i.answer for i in items} == set(FEVER_LABELS)
    assert items[1].question == "Tilda Swinton is a vegan."


def test_custom_fields_name_the_question_answer_id_and_documents():
    task = make_task("custom", "question=prompt, answer=target,id=qid,context=docs")
    items = load_items(DATA / "custom_mini.jsonl", task)
    assert [i.id for i in items] == ["c1", "c2"]
    assert items[1].answer == "8" and items[0].context[0][0] == "Paris"
    numbered = load_items(DATA / "custom_mini.jsonl", make_task("custom", "question=prompt,answer=target"))
    assert [i.id for i in numbered] == ["1", "2"] and numbered[0].context is None  # ids by line


def test_fields_override_a_built_in_task():
    task = make_task("hotpotqa", "question=prompt,answer=target")
    assert (task.fields.question, task.fields.answer, task.fields.id, task.metric.name) == \
           ("prompt", "target", "_id", "em_f1")
    assert make_task("gsm8k", metric="label").metric.name == "label"


@pytest.mark.parametrize("text, message", [
    ("question", "is not ROLE=FIELD"),
    ("question=,answer=b", "is not ROLE=FIELD"),
    ("query=a,answer=b", "unknown role 'query'"),
    ("question=a,question=b", "role 'question' is given twice"),
])
def test_bad_fields_are_usage_errors(text, message):
    with pytest.raises(TaskError, match=message) as caught:
        parse_fields(text)
    assert caught.value.flag == "--fields"


@pytest.mark.parametrize("args, flag, message", [
    (("trivia",), "--task", "unknown task 'trivia'; use hotpotqa, gsm8k, fever, custom"),
    (("custom",), "--fields", "--task custom needs --fields question=FIELD,answer=FIELD"),
    (("custom", "question=q"), "--fields", "needs --fields question=FIELD,answer=FIELD"),
    (("fever", None, "bleu"), "--metric", "unknown metric 'bleu'; use em_f1, numeric, label or module:function"),
    (("fever", None, "no_such_module_xyz:f"), "--metric", "cannot find module 'no_such_module_xyz'"),
    (("fever", None, "json:no_such_function"), "--metric", "module 'json' has no attribute 'no_such_function'"),
    (("fever", None, "json:__name__"), "--metric", "is not callable"),
    (("fever", None, "json:"), "--metric", "is not of the form module:function"),
])
def test_bad_tasks_and_metrics_name_their_option(args, flag, message):
    with pytest.raises(TaskError) as caught:
        make_task(*args)
    assert caught.value.flag == flag and message in str(caught.value)


# --- bad data: file:line ---------------------------------------------------------------------------

@pytest.mark.parametrize("task, line, message", [
    ("fever", "not json", ":2: not JSON: Expecting value (column 1)"),
    ("fever", "[1, 2]", ":2: expected a JSON object, got a list"),
    ("fever", '{"id": 9, "claim": "c"}', ":2: no field 'label' (the answer; name another with --fields)"),
    ("fever", '{"id": 9, "claim": ["c"], "label": "REFUTES"}', ":2: field 'claim' (the question) is a list"),
    ("fever", '{"id": 9, "claim": "c", "label": "FALSE"}', ":2: label 'FALSE' is not one of SUPPORTS, REFUTES"),
    ("fever", '{"id": 1, "claim": "c", "label": "REFUTES"}', ":2: id '1' was already used on line 1"),
    ("fever", '{"id": {"a": 1}, "claim": "c", "label": "REFUTES"}', ":2: field 'id' (the id) is an object"),
    ("gsm8k", '{"question": "q", "answer": "7"}', ":2: GSM8K answer without '####'"),
    ("hotpotqa", '{"question": "q", "answer": "a", "context": "Paris"}', ":2: field 'context': 'context' must be"),
])
def test_bad_data_is_located(tmp_path, task, line, message):
    first = {"fever": '{"id": 1, "claim": "c", "label": "SUPPORTS"}',
             "gsm8k": '{"question": "q", "answer": "#### 3"}', "hotpotqa": '{"question": "q", "answer": "a"}'}[task]
    path = tmp_path / "d.jsonl"
    path.write_text(first + "\n" + line + "\n")
    with pytest.raises(DatasetError) as caught:
        load_items(path, task)
    assert str(caught.value).startswith(str(path) + ":") and message in str(caught.value)


def test_named_fields_must_be_present_and_numeric_golds_need_a_number(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"q": "x", "a": "seven"}\n')
    with pytest.raises(DatasetError, match=r"d.jsonl:1: no field 'key' \(the id"):
        load_items(path, make_task("custom", "question=q,answer=a,id=key"))
    with pytest.raises(DatasetError, match=r"d.jsonl:1: the answer 'seven' has no number \(--metric numeric"):
        load_items(path, make_task("custom", "question=q,answer=a", "numeric"))
    path.write_bytes(b'{"q": "\xff", "a": "b"}\n')
    with pytest.raises(DatasetError, match=r"d.jsonl: not UTF-8 text"):
        load_items(path, make_task("custom", "question=q,answer=a"))


def test_bad_data_through_the_cli_exits_1_without_a_traceback(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": 1, "claim": "c", "label": "SUPPORTS"}\n{"id": 2, "claim": 5, "label": "REFUTES"}\n')
    done = cli("eval", SPECS / "fever_direct.yaml", "--data", path, "--task", "fever", "--out", tmp_path / "res",
               "--model", tmp_path / "no-model")
    assert done.returncode == 1, done.stderr
    assert f"{path}:2: field 'claim' (the question) is a number; expected a string" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "res").exists()


@pytest.mark.parametrize("args, message", [
    (["--task", "custom"], "--task custom needs --fields"),
    (["--task", "custom", "--fields", "prompt=q"], "unknown role 'prompt'"),
    (["--task", "fever", "--metric", "rouge"], "unknown metric 'rouge'"),
    (["--task", "fever", "--metric", "nowhere_xyz:score"], "cannot find module 'nowhere_xyz' (--metric nowhere_xyz"),
    (["--task", "fever", "--samples", "3"], "give --temperature above 0"),
])
def test_bad_options_are_usage_errors_before_anything_loads(tmp_path, args, message):
    done = cli("eval", SPECS / "fever_direct.yaml", "--data", DATA / "fever_mini.jsonl", *args,
               "--out", tmp_path / "res", "--model", tmp_path / "no-model")
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "res").exists()


# --- metrics -----------------------------------------------------------------------------------------

def test_label_metric_scores_the_option_loosely():
    task = make_task("fever")
    assert task.metric.score("NOT ENOUGH INFO", "NOT ENOUGH INFO") == {"accuracy": 1.0}
    assert task.metric.score(" not enough  info.", "NOT ENOUGH INFO") == {"accuracy": 1.0}
    assert task.metric.score("SUPPORTS", "REFUTES") == {"accuracy": 0.0}
    assert task.metric.grade("refutes", "REFUTES") and not task.metric.grade("", "REFUTES")


def test_numeric_metric_reads_plain_numbers_and_gsm8k_answers():
    metric = make_task("custom", "question=q,answer=a", "numeric").metric
    assert metric.score("so 1,200 in all", "1200") == {"accuracy": 1.0}
    assert metric.score("12", "3 * 4 = 12\n#### 12") == {"accuracy": 1.0}
    assert metric.score("13", "12") == {"accuracy": 0.0} and metric.vote_key("x 8.0") == metric.vote_key("8")


def _user_module(tmp_path, monkeypatch, body: str) -> str:
    (tmp_path / "my_metrics_mod.py").write_text(body)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("my_metrics_mod", None)
    return "my_metrics_mod"


def test_a_user_metric_scores_rows_under_its_names(tmp_path, monkeypatch):
    module = _user_module(tmp_path, monkeypatch, "def overlap(p, g):\n    return float(p.lower() in g.lower())\n"
                                                 "def both(p, g):\n    return {'exact': p == g, 'length': len(p)}\n")
    item = Item("i1", "q", "The Seine")
    row = item_row(item, make_task("custom", "question=q,answer=a", f"{module}:overlap"), [{"prediction": "seine"}])
    assert row["overlap"] == 1.0 and row["metrics"] == ["overlap"]
    row = item_row(item, make_task("hotpotqa", metric=f"{module}:both"), [{"prediction": "Seine"}])
    assert (row["exact"], row["length"], row["metrics"]) == (0.0, 5.0, ["exact", "length"])


@pytest.mark.parametrize("body, message", [
    ("def bad(p, g):\n    return 'yes'\n", "returned 'yes' (str); it must return a number or a non-empty dict"),
    ("def bad(p, g):\n    return {'seconds': 1}\n", "returned the score 'seconds', which is a field of the result"),
    ("def bad(p, g):\n    raise KeyError('x')\n", "raised KeyError: 'x'"),
])
def test_a_failing_user_metric_is_a_clear_error_naming_the_item(tmp_path, monkeypatch, body, message):
    module = _user_module(tmp_path, monkeypatch, body)
    task = make_task("custom", "question=q,answer=a", f"{module}:bad")
    with pytest.raises(MetricError) as caught:
        item_row(Item("i7", "q", "a"), task, [{"prediction": "a"}])
    assert str(caught.value).startswith(f"--metric {module}:bad ") and message in str(caught.value)
    assert "(item 'i7')" in str(caught.value)


def test_metric_results_become_float_scores():
    assert as_scores(True, "m:f", "f") == {"f": 1.0} and as_scores({"a": 2}, "m:f", "f") == {"a": 2.0}
    for bad in (None, [1.0], {}, {"a": "x"}, float("nan")):
        with pytest.raises(MetricError):
            as_scores(bad, "m:f", "f")


def test_a_metric_named_like_a_row_field_is_refused(tmp_path, monkeypatch):
    module = _user_module(tmp_path, monkeypatch, "def satisfied(p, g):\n    return 1.0\n")
    with pytest.raises(TaskError, match="would score into the result rows' own field 'satisfied'"):
        make_task("fever", metric=f"{module}:satisfied")


def test_fever_rows_score_the_answer_option(tmp_path):
    row = item_row(Item("3", "c", "NOT ENOUGH INFO"), make_task("fever"),
                   [{"prediction": "NOT ENOUGH INFO", "satisfied": True}])
    assert row["accuracy"] == 1.0 and json.loads(json.dumps(row)) == row

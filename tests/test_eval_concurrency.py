"""Many episodes at once (``--concurrency``) and self-consistency (``--samples``): the loop driven by fake
episodes that finish out of order, fail, or are interrupted; resume after any interruption point; the
majority vote; per-episode tools; the refusal on local engines through the real command line; and a whole
``ltlagent eval --concurrency 3`` on a fake concurrent engine (the tiny model, driven from several
threads), which writes the same rows as one episode at a time."""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from ltlagent.runtime.eval.datasets import Item, load_items
from ltlagent.runtime.eval.loop import cut_torn_line, done_ids, evaluate, run_jobs
from ltlagent.runtime.eval.rows import combine, majority
from ltlagent.runtime.eval.tasks import make_task
from ltlagent.runtime.eval.metrics import normalize_answer

import ltlagent
from paths import REPO, SPECS
from test_eval_tasks import cli
from tiers import examples

DATA = REPO / "tests" / "data"


def lines(path: Path) -> list[dict]:
    """Every line of a results file as JSON (fails on a torn or non-JSON line)."""
    return [json.loads(line) for line in path.read_text().splitlines()]


# --- the worker pool -------------------------------------------------------------------------------

def test_jobs_finish_out_of_order_with_at_most_n_in_flight():
    running, most, lock = [0], [0], threading.Lock()

    def work(job):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(job)
        with lock:
            running[0] -= 1
        return job * 10

    jobs = [0.3, 0.05, 0.2, 0.01, 0.1, 0.02]
    finished = list(run_jobs(jobs, work, concurrency=3))
    assert sorted(finished) == sorted((j, j * 10) for j in jobs)
    assert [j for j, _ in finished] != jobs  # out of order: the short jobs overtake the long first one
    assert most[0] == 3


def test_a_base_exception_in_a_worker_stops_the_pool():
    started = []

    def work(job):
        started.append(job)
        if job == 1:
            raise KeyboardInterrupt
        time.sleep(0.05)
        return job

    with pytest.raises(KeyboardInterrupt):
        list(run_jobs(list(range(20)), work, concurrency=2))
    time.sleep(0.2)
    assert len(started) < 20  # no job started after the interruption reached the consumer


# --- the loop --------------------------------------------------------------------------------------

def items(n: int, answer: str = "#### 4") -> list[Item]:
    return [Item(str(i), f"q{i}", answer) for i in range(n)]


def test_concurrent_items_are_written_as_they_finish_and_a_failure_is_recorded(tmp_path):
    out = tmp_path / "r.jsonl"
    delays = {"0": 0.25, "1": 0.0, "2": 0.1, "3": 0.0, "4": 0.05}
    seen = []

    def run(item, k):
        time.sleep(delays[item.id])
        if item.id == "3":
            raise ValueError("tool broke")
        return {"prediction": "4", "satisfied": True, "seconds": delays[item.id]}

    tally = evaluate(items(5), "gsm8k", run, out, concurrency=3, on_result=lambda r, t: seen.append(t.count))
    rows = lines(out)
    assert sorted(r["id"] for r in rows) == ["0", "1", "2", "3", "4"] and rows[0]["id"] != "0"
    assert seen == [1, 2, 3, 4, 5] and tally.count == 5
    failed = next(r for r in rows if r["id"] == "3")
    assert failed["error"] == "ValueError: tool broke" and failed["accuracy"] == 0.0
    assert tally.means()["accuracy"] == pytest.approx(0.8) and tally.means()["errors"] == pytest.approx(0.2)
    again = evaluate(items(5), "gsm8k", lambda item, k: pytest.fail("nothing is left to run"), out, resume=True,
                     concurrency=3)
    assert again.count == 5


def test_an_interrupted_concurrent_run_keeps_what_finished_and_resumes(tmp_path):
    out = tmp_path / "r.jsonl"

    def run(item, k):
        if item.id == "4":
            time.sleep(0.1)
            raise KeyboardInterrupt
        time.sleep(0.01 * (int(item.id) % 3))
        return {"prediction": "4", "satisfied": True}

    with pytest.raises(KeyboardInterrupt):
        evaluate(items(30), "gsm8k", run, out, concurrency=4)
    finished = done_ids(out)
    assert finished and "4" not in finished and len(finished) < 30
    assert len(lines(out)) == len(finished)  # whole lines only
    evaluate(items(30), "gsm8k", lambda item, k: {"prediction": "4"}, out, resume=True, concurrency=4)
    assert sorted(r["id"] for r in lines(out)) == sorted(str(i) for i in range(30))


@settings(max_examples=examples(60), deadline=None)
@given(n=st.integers(1, 8), cut=st.floats(0, 1), concurrency=st.integers(1, 4), samples=st.integers(1, 3))
def test_resume_after_a_kill_at_any_byte_keeps_each_id_once(tmp_path_factory, n, cut, concurrency, samples):
    """A kill can stop the writer anywhere, even mid-line: the next resume runs exactly the items whose
    lines are not whole, and every id ends up in the file once."""
    out = tmp_path_factory.mktemp("kill") / "r.jsonl"
    run = lambda item, k: {"prediction": str(k % 2), "satisfied": True}  # noqa: E731
    evaluate(items(n), "gsm8k", run, out, concurrency=concurrency, samples=samples)
    data = out.read_bytes()
    out.write_bytes(data[:int(len(data) * cut)])
    kept = done_ids(out)
    ran = []
    evaluate(items(n), "gsm8k", lambda item, k: ran.append(item.id) or run(item, k), out, resume=True,
             concurrency=concurrency, samples=samples)
    ids = [r["id"] for r in lines(out)]
    assert sorted(ids) == sorted(str(i) for i in range(n))
    assert set(ran) == {str(i) for i in range(n)} - kept and len(ran) == samples * len(set(ran))


def test_a_torn_last_line_is_cut_off(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"id": "a"}\n{"id": "b", "pre')
    cut_torn_line(path)
    assert path.read_text() == '{"id": "a"}\n'
    path.write_text('{"id": "a"}\n')
    cut_torn_line(path)
    assert path.read_text() == '{"id": "a"}\n'
    path.write_text('{"id": "a"}\n{"id": "b"}')  # whole, but for its newline: kept, as resume counts it
    cut_torn_line(path)
    assert path.read_text() == '{"id": "a"}\n{"id": "b"}\n'


# --- self-consistency --------------------------------------------------------------------------------

answers = st.lists(st.sampled_from(["Paris", "paris.", "the Paris", "Lyon", "", "Nice", " "]), min_size=1,
                   max_size=9)


@settings(max_examples=examples(300), deadline=None)
@given(answers)
def test_majority_vote_picks_the_most_frequent_answer_first_met_on_ties(answers):
    chosen, votes = majority(answers, normalize_answer)
    keys = [normalize_answer(a) for a in answers]
    voters = [i for i, a in enumerate(answers) if a.strip()] or list(range(len(answers)))
    assert chosen in voters and sum(votes.values()) == len(voters)
    assert votes[keys[chosen]] == max(votes.values())
    # nothing voted as often as the winner appears before it, and it is its key's first occurrence
    assert all(votes[keys[i]] < votes[keys[chosen]] for i in voters if i < chosen and keys[i] != keys[chosen])
    assert chosen == min(i for i in voters if keys[i] == keys[chosen])


def test_majority_vote_examples():
    assert majority(["Lyon", "Paris", "paris", "Lyon"], normalize_answer)[0] == 0  # tie: the first met
    assert majority(["", "Nice", "", ""], normalize_answer) == (1, {"nice": 1})  # empty answers do not vote
    assert majority(["", ""], normalize_answer) == (0, {"": 2})


def test_samples_are_combined_into_one_row(tmp_path):
    out = tmp_path / "r.jsonl"
    per_sample = {0: ("Lyon", False), 1: ("Paris", True), 2: ("the paris", True), 3: ("", True)}

    def run(item, k):
        time.sleep(0.02 * (3 - k))  # later samples finish first
        if k == 3:
            raise RuntimeError("engine hiccup")
        prediction, satisfied = per_sample[k]
        return {"prediction": prediction, "satisfied": satisfied, "parse_failed": False, "segments": 2 + k,
                "model_tokens": 10, "seconds": 1.0, "seed": k}

    evaluate([Item("a", "q", "Paris")], "hotpotqa", run, out, samples=4, concurrency=3)
    (row,) = lines(out)
    assert row["prediction"] == "Paris" and row["em"] == 1.0 and row["votes"] == {"lyon": 1, "paris": 2}
    assert row["satisfied"] == 0.5 and row["model_tokens"] == 30 and row["segments"] == 3.0
    assert [s["seed"] for s in row["samples"][:3]] == [0, 1, 2] and row["samples"][3]["error"].startswith("Runtime")
    assert "error" not in row  # one failed sample is not a failed item


def test_every_sample_failing_fails_the_item():
    fields = combine([{"prediction": "", "satisfied": False, "error": "E: 1"}] * 2, normalize_answer)
    assert fields["error"] == "E: 1" and fields["satisfied"] == 0.0


# --- per-episode tools -----------------------------------------------------------------------------

class BrowsingAgent:
    """A fake agent whose episodes Search the item's page, wait until every episode has searched, then
    Lookup: with a shared browser they would read each other's open page."""

    prompt_format, prompt_format_note = "completion", None

    def __init__(self, compiled, parties: int):
        self.compiled, self.barrier = compiled, threading.Barrier(parties, timeout=10)

    def prompt(self, task, examples=None):
        from ltlagent.runtime.prompts import RenderedPrompt

        return RenderedPrompt("")

    def run(self, task, toolbox, **kwargs):
        from ltlagent.runtime.decode import RunResult, SegmentRecord

        title, keyword = task.split("|")
        found = toolbox.call("Search", title).text
        self.barrier.wait()
        looked = toolbox.call("Lookup", keyword).text
        record = lambda name, text: SegmentRecord(name, name, None, text, "env", 0, 0, 0, 0, 0, 0.0)  # noqa: E731
        return RunResult([record("observation", found), record("answer", looked)], "end", 0, True, 0, 0, 0, 0.0,
                         found + "\n" + looked)


@pytest.mark.parametrize("shared_store", [False, True])
def test_concurrent_episodes_do_not_share_an_open_page(tmp_path, shared_store):
    from ltlagent.evaluator import EvalOptions, _item_runner
    from ltlagent.runtime.tools import DocStore

    pages = {"Paris": ["Paris is in France.", "The Seine flows through Paris."],
             "Rome": ["Rome is in Italy.", "The Tiber flows through Rome."]}
    context = [[title, sentences] for title, sentences in pages.items()]
    work = [Item("p", "Paris|flows", "x", context), Item("r", "Rome|flows", "x", context)]
    store = DocStore.from_context(context) if shared_store else None
    agent = BrowsingAgent(ltlagent.compile(ltlagent.load(SPECS / "react.yaml")), parties=2)
    options = EvalOptions(data=Path("-"), task="hotpotqa", concurrency=2)
    run = _item_runner(agent, store, options, make_task("hotpotqa"))
    out = tmp_path / "r.jsonl"
    evaluate(work, "hotpotqa", run, out, concurrency=2)
    found = {r["id"]: r["prediction"] for r in lines(out)}
    assert found == {"p": "(Result 1 / 1) The Seine flows through Paris.",
                     "r": "(Result 1 / 1) The Tiber flows through Rome."}


# --- the command line ------------------------------------------------------------------------------

@pytest.mark.parametrize("engine", ["auto", "llamacpp", "transformers"])
def test_concurrency_on_a_local_engine_is_refused_before_any_item_runs(tmp_path, engine):
    done = cli("eval", SPECS / "fever_direct.yaml", "--data", DATA / "fever_mini.jsonl", "--task", "fever",
               "--concurrency", "4", "--engine", engine, "--model", tmp_path / "no-model",
               "--out", tmp_path / "res")
    assert done.returncode == 2, done.stderr
    assert "need a serving engine (--engine vllm or --engine openai)" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "res").exists()


class ConcurrentTiny:
    """The tiny transformers model flagged as safe to drive from several threads (tests only)."""

    concurrent = True


def _open_tiny(concurrent: bool):
    def open_engine(options, progress=None):
        from ltlagent.runtime.engines.transformers import TransformersEngine

        engine = TransformersEngine.open(options, progress)
        if concurrent:
            engine.__class__ = type("ConcurrentTinyEngine", (TransformersEngine, ConcurrentTiny), {})
        return engine
    return open_engine


def test_a_non_concurrent_engine_is_refused_after_it_loads(tmp_path, tiny_model_path, monkeypatch, capsys):
    from ltlagent import cli as cli_module
    from ltlagent.runtime import engines

    monkeypatch.setattr(engines, "choose", lambda options: "serving")  # passes the up-front check
    monkeypatch.setattr(engines, "open_engine", _open_tiny(concurrent=False))
    code = cli_module.main(["eval", str(SPECS / "fever_direct.yaml"), "--data", str(DATA / "fever_mini.jsonl"),
                            "--task", "fever", "--concurrency", "2", "--model", str(tiny_model_path),
                            "--out", str(tmp_path / "res")])
    assert code == 2 and "TransformersEngine engine holds one model context" in capsys.readouterr().err
    assert not (tmp_path / "res").exists()


def test_eval_with_concurrency_writes_the_rows_of_a_sequential_run(tmp_path, tiny_model_path, monkeypatch, capsys):
    from ltlagent import cli as cli_module
    from ltlagent.runtime import engines

    monkeypatch.setattr(engines, "open_engine", _open_tiny(concurrent=True))
    monkeypatch.setattr(engines, "choose", lambda options: "tiny")
    common = [str(SPECS / "fever_direct.yaml"), "--data", str(DATA / "fever_mini.jsonl"), "--task", "fever",
              "--model", str(tiny_model_path)]
    assert cli_module.main(["eval", *common, "--out", str(tmp_path / "one.jsonl")]) == 0
    assert cli_module.main(["eval", *common, "--out", str(tmp_path / "three.jsonl"), "--concurrency", "3",
                            "--plot", str(tmp_path / "p.png")]) == 0
    assert "[3/3]" in capsys.readouterr().err
    keep = ("id", "prediction", "letters", "trace", "transcript", "satisfied", "accuracy", "model_tokens")
    by_id = lambda path: {r["id"]: {k: r[k] for k in keep} for r in lines(path)}  # noqa: E731
    assert by_id(tmp_path / "three.jsonl") == by_id(tmp_path / "one.jsonl")
    rows = lines(tmp_path / "three.jsonl")
    assert all(r["satisfied"] and r["trace"][0]["name"] == "claim" and r["transcript"].startswith("Claim: ")
               and r["trace"][-1]["option"] == r["prediction"] for r in rows)
    assert (tmp_path / "p.png").stat().st_size > 10_000


def test_samples_run_through_the_cli(tmp_path, tiny_model_path, monkeypatch):
    from ltlagent import cli as cli_module
    from ltlagent.runtime import engines

    monkeypatch.setattr(engines, "open_engine", _open_tiny(concurrent=True))
    monkeypatch.setattr(engines, "choose", lambda options: "tiny")
    out = tmp_path / "s.jsonl"
    assert cli_module.main(["eval", str(SPECS / "fever_direct.yaml"), "--data", str(DATA / "fever_mini.jsonl"),
                            "--task", "fever", "--model", str(tiny_model_path), "--samples", "3",
                            "--temperature", "1.0", "--seed", "5", "--concurrency", "2", "--out", str(out)]) == 0
    rows = lines(out)
    assert [len(r["samples"]) for r in rows] == [3, 3, 3] and all(r["satisfied"] == 1.0 for r in rows)
    assert all([s["seed"] for s in r["samples"]] == [5, 6, 7] for r in rows)
    assert all(r["prediction"] in [s["prediction"] for s in r["samples"]] for r in rows)
    assert sorted(r["id"] for r in rows) == [i.id for i in load_items(DATA / "fever_mini.jsonl", "fever")]


def test_a_failing_user_metric_stops_eval_with_a_clear_error(tmp_path, tiny_model_path, monkeypatch, capsys):
    from ltlagent import cli as cli_module

    (tmp_path / "bad_metric_mod.py").write_text("def score(p, g):\n    return [p]\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    code = cli_module.main(["eval", str(SPECS / "fever_direct.yaml"), "--data", str(DATA / "fever_mini.jsonl"),
                            "--task", "fever", "--metric", "bad_metric_mod:score", "--engine", "transformers",
                            "--model", str(tiny_model_path), "--out", str(tmp_path / "r.jsonl")])
    err = capsys.readouterr().err
    assert code == 1 and "--metric bad_metric_mod:score returned [" in err and "(item '1')" in err
    assert "Traceback" not in err and lines(tmp_path / "r.jsonl") == []

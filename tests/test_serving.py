"""The serving engines (vllm, openai): the same guarantee over HTTP, and every server failure a clear error.

* A real vLLM CPU server on the embedded model (tests/serving.py starts it and stops it by its PID): every
  shipped and reference spec decodes under adversarial logit biases, on the vllm engine (the server masks
  under ``structured_outputs``) and on the openai engine (plain completions, checked and completed here),
  each run re-checked by the independent verdict; the prefix cache serves most prompt tokens; the
  ablation, the CLI and replicas work.
* A scripted fake server: random text (the openai engine still yields satisfying runs), a server that
  ignores the constraint (detected), refused connections, HTTP errors, timeouts, non-JSON answers.
"""
from __future__ import annotations

import json
import random
import re
import subprocess
import sys
import time

import pytest
from hypothesis import given, settings, strategies as st

import ltlagent
from ltlagent.runtime.adversarial import RandomBias
from ltlagent.runtime.agent import Runtime, prompt_text
from ltlagent.compiler.cfg import content_bnf
from ltlagent.runtime.constraints import content_regex
from ltlagent.runtime.engines import EngineError, EngineOptions, Sampling
from ltlagent.runtime.engines.remote import ConstraintIgnored, alternatives, literal_regex, portable_regex
from ltlagent.runtime.index import TokenTrie
from ltlagent.runtime.models import cache_dir
from ltlagent.runtime.trace import verdict

from paths import REPO, SPECS
from serving import FakeServer, completion, needs_vllm
from test_decode import SPEC_SOURCES, RandomEnv
from tiers import FAST, examples

REGEXES = sorted({content_regex(s) for source in SPEC_SOURCES.values()
                  for s in ltlagent.load(source).segments if s.by == "model" and s.content.kind not in ("choice", "call")
                  and content_bnf(s.content.kind, s.content.value, s.end) is None})  # context-free: sent as a grammar


# -- regexes the servers read as we do ------------------------------------------------------------------


@settings(max_examples=examples(200), deadline=None)
@given(st.data())
def test_portable_regex_is_the_same_language(data):
    regex = data.draw(st.sampled_from([r for r in REGEXES if len(r) < 400]))
    text = data.draw(st.from_regex(re.compile(regex, re.S), fullmatch=True))
    assert re.fullmatch(portable_regex(regex), text, re.S)
    assert "\n" not in portable_regex(regex)  # xgrammar refuses literal newlines in character classes
    broken = text + "\x00"
    assert bool(re.fullmatch(regex, broken, re.S)) == bool(re.fullmatch(portable_regex(regex), broken, re.S))


@settings(max_examples=examples(300), deadline=None)
@given(st.text(min_size=1, max_size=20), st.text(max_size=20))
def test_literal_regex_matches_its_text_only(text, other):
    assert re.fullmatch(literal_regex(text), text)
    assert bool(re.fullmatch(literal_regex(text), other)) == (other == text)


@given(st.lists(st.lists(st.integers(0, 5), min_size=1, max_size=4), min_size=1, max_size=6, unique_by=tuple))
def test_alternatives_are_the_tries_sequences(sequences):
    try:
        trie = TokenTrie([(i, s) for i, s in enumerate(sequences)])
    except ValueError:  # one sequence is a prefix of another: no trie
        return
    assert sorted((k, tuple(s)) for k, s in alternatives(trie)) == sorted((i, tuple(s)) for i, s in enumerate(sequences))


# -- a scripted server -----------------------------------------------------------------------------------


def _engine(kind: str, urls, model, **options):
    from ltlagent.runtime.engines import open_engine

    return open_engine(EngineOptions(engine=kind, model=str(model), urls=tuple(urls), **options))


def _runs(engine, name: str, seeds, adversarial: bool = False):
    """Decode ``name`` with each seed on ``engine`` and check every run independently; returns them."""
    results = [_episode(engine, name, seed, adversarial) for seed in seeds]
    for result in results:
        _check(name, result)
    return results


def _episode(engine, name: str, seed: int, adversarial: bool = False):
    compiled = ltlagent.compile(ltlagent.load(SPEC_SOURCES[name]))
    decoder = Runtime.for_engine(engine, cache_dir() / "indexes").decoder(compiled)
    vocab = engine.vocab
    spiky = [vocab.eos_id] + vocab.encode("\n") + vocab.encode(" Answer:")
    sampling = Sampling(1.0, 0.9, seed) if seed % 2 else Sampling()
    adversary = RandomBias(len(vocab.token_bytes), seed, spiky) if adversarial else None
    return decoder.run(engine.session(adversary=adversary), engine.ops.sampler(sampling), RandomEnv(seed),
                       prompt_text(compiled.spec))


def _check(name: str, result) -> None:
    compiled = ltlagent.compile(ltlagent.load(SPEC_SOURCES[name]))
    check = verdict(compiled, result)
    assert check["satisfied"], (name, check, result.letters)
    assert len(result.segments) <= compiled.spec.limits.max_segments
    assert result.model_tokens <= compiled.spec.limits.max_tokens
    assert result.stopped_by in ("eos", "end")


WORDS = ["Thought:", "Action:", "Answer:", "Observation:", " Search", " Finish", "\n", " yes", " no", " 42",
         "[", "]", " Paris", "{", "}", '"', ":", ",", "é", "  ", "#E1 =", "Plan:", "Then:"]


def random_text_server(seed: int):
    """An adversarial server: each answer is random words (tags, brackets, newlines), sometimes empty or
    cut by the length limit, whatever was asked."""
    rng = random.Random(seed)

    def answer(body):
        if rng.random() < 0.1:
            return completion("", "stop")
        text = "".join(rng.choice(WORDS) for _ in range(rng.randint(0, 12)))
        return completion(text, rng.choice(["stop", "length"]))
    return answer


@pytest.mark.parametrize("name", sorted(SPEC_SOURCES))
def test_openai_engine_runs_satisfy_the_spec_whatever_the_server_writes(name, tiny_model_path):
    with FakeServer(random_text_server(len(name))) as server:
        engine = _engine("openai", [server.url], tiny_model_path, retries=2)
        results = _runs(engine, name, range(2 if FAST else 4))
    assert sum(r.engine["retries"] for r in results) > 0  # random text breaks the spec, and was resampled
    assert sum(r.engine["requests"] for r in results) == len(server.bodies)  # every answer was counted


def test_openai_engine_keeps_answers_that_fit_and_retries_those_that_do_not(tiny_model_path):
    answers = iter(["xyz", " Paris\n"] + [" Paris\n"] * 50)

    def answer(body):
        return completion(next(answers), "stop")
    spec = ltlagent.compile(ltlagent.load(SPECS / "direct.yaml"))
    with FakeServer(answer) as server:
        engine = _engine("openai", [server.url], tiny_model_path)
        decoder = Runtime.for_engine(engine, cache_dir() / "indexes").decoder(spec)
        result = decoder.run(engine.session(), Sampling(), RandomEnv(0), prompt_text(spec.spec))
    assert verdict(spec, result)["satisfied"]
    assert result.engine["retries"] >= 1
    assert any(r.text == "Paris" for r in result.segments if r.by == "model")


def test_vllm_engine_detects_a_server_that_ignores_the_constraint(tiny_model_path):
    with FakeServer(lambda body: completion("certainly not a tag", "stop", token_ids=[1, 2, 3])) as server:
        engine = _engine("vllm", [server.url], tiny_model_path)
        spec = ltlagent.compile(ltlagent.load(SPECS / "react.yaml"))
        decoder = Runtime.for_engine(engine, cache_dir() / "indexes").decoder(spec)
        with pytest.raises(ConstraintIgnored, match="ignores"):
            decoder.run(engine.session(), Sampling(), RandomEnv(0), prompt_text(spec.spec))
    assert server.bodies and all("structured_outputs" in b and "guided_regex" not in b for b in server.bodies)


def test_vllm_engine_completes_a_content_cut_off_by_its_budget(tiny_model_path):
    """The server stops at max_tokens in the middle of a content: the client completes it validly."""
    spec = ltlagent.compile(ltlagent.load(SPECS / "direct.yaml"))

    def answer(body):
        regex = body["structured_outputs"]["regex"]
        if regex.startswith("("):  # a tag choice: the first alternative
            text = re.findall(r"\(([^|)]*)", regex)[0].replace("\\", "")
            return completion(text, "stop", token_ids=[])
        ids = engine.vocab.encode(" a very long answer that goes on")[: body["max_tokens"]]
        return completion(engine.vocab.text(ids), "length", token_ids=ids)
    with FakeServer(answer) as server:
        engine = _engine("vllm", [server.url], tiny_model_path)
        decoder = Runtime.for_engine(engine, cache_dir() / "indexes").decoder(spec)
        result = decoder.run(engine.session(), Sampling(), RandomEnv(0), prompt_text(spec.spec))
    assert verdict(spec, result)["satisfied"], result.transcript
    assert result.engine["completed"] >= 1


def test_server_failures_are_clear_errors(tiny_model_path):
    with pytest.raises(EngineError, match="cannot reach the server"):
        _engine("vllm", ["http://127.0.0.1:9/v1"], tiny_model_path)
    with FakeServer(lambda body: (500, {"error": {"message": "the model fell over"}})) as server:
        engine = _engine("openai", [server.url], tiny_model_path)
        with pytest.raises(EngineError, match="HTTP 500.*the model fell over"):
            _runs(engine, "direct", [0])

    def slow(body):
        time.sleep(3)
        return completion("", "stop")
    with FakeServer(slow) as server:
        engine = _engine("openai", [server.url], tiny_model_path, timeout=0.5)
        started = time.perf_counter()
        with pytest.raises(EngineError, match="no answer within 0.5 s"):
            _runs(engine, "direct", [0])
        assert time.perf_counter() - started < 3
    with FakeServer(lambda body: (200, b"<html>not json</html>")) as server:
        engine = _engine("openai", [server.url], tiny_model_path)
        with pytest.raises(EngineError, match="not JSON"):
            _runs(engine, "direct", [0])


def test_the_model_name_must_be_served(tiny_model_path):
    with FakeServer(lambda body: completion("", "stop")) as server:
        with pytest.raises(EngineError, match="does not serve 'other'.*fake-model"):
            _engine("openai", [server.url], tiny_model_path, model_name="other")
        engine = _engine("openai", [server.url], tiny_model_path)
        assert engine.served_name == "fake-model"


def test_replicas_share_the_episodes(tiny_model_path):
    with FakeServer(random_text_server(1)) as one, FakeServer(random_text_server(2)) as two:
        engine = _engine("openai", [one.url, two.url], tiny_model_path)
        _runs(engine, "direct", range(4))
    assert one.bodies and two.bodies  # both replicas answered
    assert abs(len({b["prompt"] for b in one.bodies}) - len({b["prompt"] for b in two.bodies})) <= 4


def cli(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "ltlagent", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)


def test_cli_serving_usage_errors_exit_2():
    spec = str(SPECS / "direct.yaml")
    for args, message in ((["--engine", "vllm"], "needs the server's address"),
                          (["--engine", "llamacpp", "--url", "http://127.0.0.1:1/v1"], "--url is for the serving"),
                          (["--url", "localhost:8000"], "not an http")):
        done = cli("run", spec, "--task", "x", *args)
        assert done.returncode == 2 and message in done.stderr, done.stderr


def test_cli_unreachable_server_exits_1_with_a_clear_message():
    done = cli("run", str(SPECS / "direct.yaml"), "--task", "x", "--engine", "openai", "--url",
               "http://127.0.0.1:9/v1")
    assert done.returncode == 1
    assert "cannot reach the server" in done.stderr and "Traceback" not in done.stderr


# -- the real vLLM server --------------------------------------------------------------------------------


def _embedded(kind, url, **options):
    from ltlagent.runtime.engines import open_engine

    return open_engine(EngineOptions(engine=kind, urls=(url,), **options))


CONCURRENT = 8  # episodes in flight on the server: they run batched, and the engine's concurrency is exercised


@pytest.fixture(scope="module")
def served_runs(vllm_url):
    """Every spec's adversarial episodes on both serving engines against the real server, run
    ``CONCURRENT`` at a time: {(engine, spec): result or the exception it raised}."""
    from concurrent.futures import ThreadPoolExecutor

    engines = {"vllm": _embedded("vllm", vllm_url), "openai": _embedded("openai", vllm_url, retries=1)}
    jobs = [(kind, name, seed) for name in sorted(SPEC_SOURCES) for kind, seed in (("vllm", 1), ("openai", 0))]

    def run(job):
        kind, name, seed = job
        try:
            return _episode(engines[kind], name, seed, adversarial=True)
        except Exception as err:  # reported by the spec's own test
            return err
    with ThreadPoolExecutor(CONCURRENT) as pool:
        return {(kind, name): result for (kind, name, _), result in zip(jobs, pool.map(run, jobs))}


@needs_vllm
@pytest.mark.parametrize("name", sorted(SPEC_SOURCES))
@pytest.mark.parametrize("kind", ["vllm", "openai"])
def test_served_runs_satisfy_the_spec_under_adversarial_biases(kind, name, served_runs):
    result = served_runs[(kind, name)]
    if isinstance(result, Exception):
        raise result
    _check(name, result)


@needs_vllm
def test_the_prefix_cache_serves_the_shared_transcript(vllm_url):
    engine = _embedded("vllm", vllm_url)
    result, = _runs(engine, "react", [0])
    counters = result.engine
    assert counters["requests"] >= 5
    assert counters["cached_prompt_tokens"] is not None, "start the server with --enable-prompt-tokens-details"
    assert counters["cached_prompt_tokens"] > 0.5 * counters["prompt_tokens"], counters


@needs_vllm
def test_vllm_unconstrained_ablation_stops_at_env_tags(vllm_url):
    from ltlagent.runtime.agent import Agent
    from ltlagent.runtime.tools import DocStore, ToolBox

    compiled = ltlagent.compile(ltlagent.load(SPECS / "react.yaml"))
    agent = Agent.load(compiled, EngineOptions(engine="vllm", urls=(vllm_url,)))
    toolbox = ToolBox.for_spec(compiled.spec, docs=DocStore.from_jsonl(SPECS / "docs" / "demo.jsonl"),
                               builtins=("search", "lookup", "calculator"))
    free = agent.run_free("Which river flows through Paris?", toolbox)
    result = free.result
    assert result.engine["requests"] >= 1 and result.model_tokens <= compiled.spec.limits.max_tokens
    filled = [r for r in result.segments if r.by == "env" and r.name != "question"]
    assert result.engine["requests"] <= 1 + len(filled)  # one call per chunk; a chunk goes on only after a tool
    assert result.stopped_by in ("eos", "final", "task tag", "call budget", "budget")


@needs_vllm
def test_cli_runs_on_vllm_and_records_the_counters(vllm_url, tmp_path):
    trace = tmp_path / "t.jsonl"
    done = cli("run", str(SPECS / "react.yaml"), "--docs", str(SPECS / "docs" / "demo.jsonl"), "--task",
               "Which river flows through the city where the Eiffel Tower stands?", "--engine", "vllm", "--url",
               vllm_url, "--trace", str(trace))
    assert done.returncode == 0, done.stderr
    summary = json.loads(trace.read_text().splitlines()[-1])
    assert summary["verdict"]["satisfied"] and summary["engine"] == "vllm"
    assert summary["engine_counters"]["requests"] == summary["forward_passes"] > 0


@needs_vllm
def test_cli_eval_keeps_episodes_in_flight_on_replicas_and_resumes(vllm_url, tmp_path):
    """--concurrency 4 over two --url replicas (the same server twice): every item's row is written, each
    once, all satisfied; a second run with --resume and more items runs only the new ones."""
    data = tmp_path / "claims.jsonl"
    claims = [{"id": i, "claim": f"Claim number {i} is true.", "label": "SUPPORTS"} for i in range(6)]
    data.write_text("".join(json.dumps(c) + "\n" for c in claims))
    out = tmp_path / "results"
    base = ["eval", str(SPECS / "fever_direct.yaml"), "--data", str(data), "--task", "fever", "--out", str(out),
            "--engine", "vllm", "--url", vllm_url, "--url", vllm_url, "--concurrency", "4"]
    done = cli(*base, "--limit", "4")
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in (out / "fever_direct-fever.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in rows) == ["0", "1", "2", "3"] and all(r["satisfied"] for r in rows)
    done = cli(*base, "--resume")
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in (out / "fever_direct-fever.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in rows) == [str(i) for i in range(6)]


def test_malformed_answers_and_non_http_servers_are_clear_errors(tiny_model_path):
    import socket
    import threading

    for answer in ({"choices": [{"text": "x"}], "usage": {"prompt_tokens": "n/a"}},
                   {"choices": [{"text": "x", "token_ids": [None]}]}, {"choices": []}, {"usage": []}):
        with FakeServer(lambda body, answer=answer: (200, answer)) as server:
            engine = _engine("openai", [server.url], tiny_model_path)
            with pytest.raises(EngineError, match="malformed answer"):
                _runs(engine, "direct", [0])
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)

    def banner():  # an SSH-like server: not HTTP at all
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            conn.sendall(b"SSH-2.0-OpenSSH_9\r\n")
            conn.close()
    threading.Thread(target=banner, daemon=True).start()
    try:
        with pytest.raises(EngineError, match="the connection failed|cannot reach"):
            _engine("openai", [f"http://127.0.0.1:{listener.getsockname()[1]}/v1"], tiny_model_path)
    finally:
        listener.close()

"""The engine seam: every engine decodes under the same guarantee, and their vocabularies agree.

* The llama.cpp engine's vocabulary, read from the embedded GGUF, is the transformers tokenizer's token
  for token, and tags, options and content of every shipped and reference spec encode identically.
* Every finished run satisfies its spec (re-checked independently) under adversarial scores, on every
  engine: transformers in float32 and bfloat16 on the CPU, and the real llama.cpp engine on the embedded
  GGUF (the model runs; its scores are replaced by random ones of the same kind).
* Sessions rewind exactly, llama.cpp reuses a shared prompt prefix, ``auto`` picks as documented, and
  every misuse is a clear error.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import ltlagent
from ltlagent.runtime.adversarial import Adversarial
from ltlagent.runtime.agent import Runtime, prompt_text
from ltlagent.runtime.engines import EngineError, EngineOptions, Sampling, choose
from ltlagent.runtime.engines import llamacpp
from ltlagent.runtime.trace import verdict

from paths import REPO, SPECS
from test_decode import SPEC_SOURCES, RandomEnv

needs_llamacpp = pytest.mark.skipif(not llamacpp.available() and not os.environ.get("CI"),
                                    reason="llama-cpp-python is not installed (make setup-llamacpp)")


@pytest.fixture(scope="module")
def llama_engine():
    """The embedded GGUF on the llama.cpp engine, 2 threads (CI installs it: there a missing engine fails)."""
    from ltlagent.runtime.engines.llamacpp import LlamaCppEngine

    return LlamaCppEngine.open(EngineOptions(engine="llamacpp", threads=2), None)


@pytest.fixture(scope="module", params=["float32", "bfloat16"])
def transformers_engine(request, tiny_model_path):
    """The tiny model on the transformers engine, on the CPU, in each dtype."""
    from ltlagent.runtime.engines.transformers import TransformersEngine

    return TransformersEngine.open(EngineOptions(engine="transformers", model=str(tiny_model_path), device="cpu",
                                                 dtype=request.param, threads=2), None)


# -- one vocabulary --------------------------------------------------------------------------------------


@needs_llamacpp
def test_gguf_vocabulary_is_the_transformers_tokenizers(llama_engine, tiny_tokenizer):
    from ltlagent.runtime.vocab import Vocab

    hf = Vocab.of_tokenizer(tiny_tokenizer, tiny_tokenizer.eos_token_id)
    gguf = llama_engine.vocab
    assert len(gguf.token_bytes) == len(hf.token_bytes) == 49152
    differing = [i for i, (a, b) in enumerate(zip(gguf.token_bytes, hf.token_bytes)) if a != b]
    assert differing == []
    assert gguf.eos_id == hf.eos_id and gguf.hash == hf.hash  # so both engines share the index cache
    assert hf.eos_id in gguf.eos_ids


def _texts(compiled) -> list[str]:
    """What the decoder encodes for a spec: tags, options with their framing, sample contents."""
    texts = []
    for segment in compiled.spec.segments:
        texts += [segment.tag, segment.end, f" {segment.tag}"]
        texts += [f" {option}{segment.end}" for option in segment.options]
    texts += [" Paris, France.\n", " 2+2 = 4 — é ☃ \u2581x\n", "\n\n  tabs\tand <|im_end|> literal\n", ""]
    return texts


@needs_llamacpp
@pytest.mark.parametrize("name", sorted(SPEC_SOURCES))
def test_tags_options_and_content_encode_identically(name, llama_engine, tiny_tokenizer):
    from ltlagent.runtime.vocab import Vocab

    hf = Vocab.of_tokenizer(tiny_tokenizer, tiny_tokenizer.eos_token_id)
    compiled = ltlagent.compile(ltlagent.load(SPEC_SOURCES[name]))
    for text in _texts(compiled):
        ids = llama_engine.vocab.encode(text)
        assert ids == hf.encode(text), text
        assert llama_engine.vocab.text(ids) == text  # and they decode back to the very text


# -- the guarantee on every engine -----------------------------------------------------------------------


def _adversarial_runs(engine, name: str, seeds) -> None:
    compiled = ltlagent.compile(ltlagent.load(SPEC_SOURCES[name]))
    decoder = Runtime.for_engine(engine).decoder(compiled)
    vocab = engine.vocab
    spiky = [vocab.eos_id] + vocab.encode("\n") + vocab.encode(" Answer:")
    for seed in seeds:
        sampling = Sampling(1.0, 0.9, seed) if seed % 2 else Sampling()
        source = Adversarial(engine.session(), len(vocab.token_bytes), engine.ops, seed, spiky)
        result = decoder.run(source, engine.ops.sampler(sampling), RandomEnv(seed), prompt_text(compiled.spec))
        check = verdict(compiled, result)
        assert check["satisfied"], (name, seed, check, result.letters)
        assert len(result.segments) <= compiled.spec.limits.max_segments
        assert result.model_tokens <= compiled.spec.limits.max_tokens
        assert result.forward_passes > 0 and result.stopped_by in ("eos", "end")


@pytest.mark.parametrize("name", sorted(SPEC_SOURCES))
def test_transformers_engine_runs_satisfy_the_spec_under_adversarial_scores(name, transformers_engine):
    float32 = transformers_engine.describe()["dtype"] == "float32"
    _adversarial_runs(transformers_engine, name, (0, 1) if float32 else (1,))  # bf16 on a CPU is slow


@needs_llamacpp
@pytest.mark.parametrize("name", sorted(SPEC_SOURCES))
def test_llamacpp_engine_runs_satisfy_the_spec_under_adversarial_scores(name, llama_engine):
    _adversarial_runs(llama_engine, name, (1,))  # the real 135M model runs: one sampled episode per spec


@needs_llamacpp
def test_llamacpp_greedy_run_is_the_models_own_choice(llama_engine):
    """With the real scores, greedy free text is what llama.cpp's own argmax would write."""
    compiled = ltlagent.compile(ltlagent.load(SPECS / "react.yaml"))
    decoder = Runtime.for_engine(llama_engine).decoder(compiled)
    from ltlagent.runtime.environment import Environment

    result = decoder.run(llama_engine.session(), llama_engine.ops.sampler(Sampling()),
                         Environment("Who designed the Eiffel Tower?"), prompt_text(compiled.spec))
    assert verdict(compiled, result)["satisfied"]
    thought = next(r for r in result.segments if r.name == "thought")
    session = llama_engine.session()
    before = result.transcript[: result.transcript.index(thought.text) - 1]
    scores = session.feed(llama_engine.vocab.encode(before))
    first = llama_engine.vocab.encode(" " + thought.text)[0]
    assert int(np.argmax(scores)) == first or llama_engine.vocab.token_bytes[int(np.argmax(scores))] is None


# -- sessions ---------------------------------------------------------------------------------------------


def _rewound_and_fresh(engine):
    """Scores after feeding a, b, rewinding to a and feeding c; and a fresh session's after a + c."""
    encode = engine.vocab.encode
    first, cut, then = encode("Question: where is"), encode(" Observation: fake"), encode(" the tower")
    session = engine.session()
    session.feed(first)
    session.feed(cut)
    session.rewind(len(first))
    rewound = np.array(session.feed(then), dtype=np.float32)
    assert session.length == len(first + then)
    with pytest.raises(ValueError):
        session.rewind(session.length + 1)
    return rewound, np.array(engine.session().feed(first + then), dtype=np.float32)


@needs_llamacpp
def test_llamacpp_rewind_forgets_the_cut_tokens(llama_engine):
    rewound, expected = _rewound_and_fresh(llama_engine)
    assert int(rewound.argmax()) == int(expected.argmax())
    assert np.allclose(rewound, expected, atol=0.05)  # batch shapes differ: llama.cpp's sums are not bit-equal


@needs_llamacpp
def test_llamacpp_reuses_a_shared_prompt_prefix_across_episodes(llama_engine):
    prompt = llama_engine.vocab.encode("Answer the question.\n\nQuestion: Who designed the Eiffel Tower?\n")
    first = llama_engine.session()
    a = np.array(first.feed(prompt))
    second = llama_engine.session()
    b = np.array(second.feed(prompt))
    assert second.tokens_reused == len(prompt) - 1 and second.tokens_fed == len(prompt)
    assert np.allclose(a, b, atol=0.05) and int(a.argmax()) == int(b.argmax())
    with pytest.raises(EngineError, match="ended"):
        first.feed(prompt[:1])  # one context: the older session is over


def test_transformers_rewind_and_dtype(transformers_engine):
    import torch

    scores = transformers_engine.session().feed([1, 2])
    assert scores.dtype == np.float32 and scores.shape == (len(transformers_engine.vocab.token_bytes),)
    bf16 = transformers_engine.loaded.model.dtype == torch.bfloat16
    rewound, expected = _rewound_and_fresh(_Float(transformers_engine))
    assert np.allclose(rewound, expected, atol=0.05 if bf16 else 1e-4)
    assert transformers_engine.describe()["dtype"] == str(transformers_engine.loaded.model.dtype).split(".")[1]


class _Float:
    """An engine whose sessions return float32 numpy scores (bfloat16 tensors have no numpy view)."""

    def __init__(self, engine):
        self.engine, self.vocab = engine, engine.vocab

    def session(self):
        inner = self.engine.session()

        class Session:
            length = property(lambda _: inner.length)
            feed = staticmethod(lambda ids: np.asarray(inner.feed(ids), dtype=np.float32))
            rewind = staticmethod(inner.rewind)
        return Session()


# -- samplers ----------------------------------------------------------------------------------------------


def test_numpy_and_torch_samplers_agree_when_greedy_and_stay_in_the_allowed_set():
    import torch

    from ltlagent.runtime.engines.arrays import NumpySampler, TorchSampler

    rng = np.random.default_rng(0)
    for trial in range(50):
        scores = rng.standard_normal(1000).astype(np.float32)
        allowed = np.sort(rng.choice(1000, size=int(rng.integers(2, 300)), replace=False))
        greedy = NumpySampler(Sampling()).pick(scores, allowed)
        assert greedy == TorchSampler(Sampling()).pick(torch.from_numpy(scores), torch.from_numpy(allowed))
        assert greedy == allowed[np.argmax(scores[allowed])]
        for sampler, s, a in ((NumpySampler(Sampling(1.0, 0.5, trial)), scores, allowed),
                              (TorchSampler(Sampling(1.0, 0.5, trial)), torch.from_numpy(scores), torch.from_numpy(allowed))):
            picked = sampler.pick(s, a)
            assert picked in set(allowed.tolist())
        # a nucleus this small keeps only the most likely allowed token
        assert NumpySampler(Sampling(1.0, 1e-9, trial)).pick(scores, allowed) == greedy


# -- choosing and refusing ---------------------------------------------------------------------------------


def test_auto_picks_llamacpp_for_gguf_models_when_installed(monkeypatch, tiny_model_path):
    monkeypatch.setattr(llamacpp, "available", lambda: True)
    monkeypatch.setattr("ltlagent.runtime.engines._gpu_visible", lambda: False)
    assert choose(EngineOptions()) == "llamacpp"                       # the embedded GGUF
    assert choose(EngineOptions(model="some/model.Q4.gguf")) == "llamacpp"
    assert choose(EngineOptions(model=str(tiny_model_path))) == "transformers"  # a transformers directory
    assert choose(EngineOptions(dtype="bfloat16")) == "transformers"    # a dtype is a transformers choice
    assert choose(EngineOptions(engine="transformers")) == "transformers"
    monkeypatch.setattr(llamacpp, "available", lambda: False)
    assert choose(EngineOptions()) == "transformers"


def test_engine_misuse_is_a_clear_error(monkeypatch, tiny_model_path):
    from ltlagent.runtime.engines import open_engine

    with pytest.raises(EngineError, match="unknown engine 'sglang'"):
        EngineOptions(engine="sglang")
    with pytest.raises(EngineError, match="--url is for the serving engines"):
        EngineOptions(engine="llamacpp", urls=("http://127.0.0.1:1/v1",))
    with pytest.raises(EngineError, match="needs the server's address"):
        open_engine(EngineOptions(engine="vllm"))
    if llamacpp.available():
        with pytest.raises(EngineError, match="reads .gguf files"):
            open_engine(EngineOptions(engine="llamacpp", model=str(tiny_model_path)))
        with pytest.raises(EngineError, match="--dtype applies to the transformers engine"):
            open_engine(EngineOptions(engine="llamacpp", dtype="float16"))
    monkeypatch.setattr(llamacpp, "available", lambda: False)
    with pytest.raises(EngineError, match=r"pip install 'ltlagent\[llamacpp\]'"):
        open_engine(EngineOptions(engine="llamacpp"))


def test_no_gpu_here_is_a_clear_error():
    import torch

    from ltlagent.runtime.engines.transformers import resolve_device

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(EngineError, match="--device cuda"):
        resolve_device("cuda")
    assert resolve_device("auto") in ("cpu", "mps")


def cli(*args, timeout=600):
    env = {**os.environ, "NO_COLOR": "1", "HF_HUB_OFFLINE": "1"}
    env.pop("LTLAGENT_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "ltlagent", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_cli_engine_usage_errors_exit_2():
    for flag, value in (("--engine", "sglang"), ("--device", "tpu"), ("--dtype", "int4")):
        done = cli("run", "specs/direct.yaml", "--task", "x", flag, value)
        assert done.returncode == 2 and flag in done.stderr and "Traceback" not in done.stderr


@pytest.mark.model
@needs_llamacpp
def test_cli_runs_on_llamacpp_and_records_the_engine(tmp_path):
    trace = tmp_path / "t.jsonl"
    done = cli("run", "specs/react.yaml", "--task", "Who designed the Eiffel Tower?", "--docs",
               "specs/docs/demo.jsonl", "--engine", "llamacpp", "--threads", "1", "--json", "--trace", str(trace))
    assert done.returncode == 0, done.stderr
    summary = [json.loads(line) for line in done.stdout.splitlines()][-1]
    assert summary["verdict"]["satisfied"] and summary["engine"] == "llamacpp" and summary["threads"] == 1
    assert summary["dtype"] == "gguf" and summary["gguf"].endswith(".gguf")
    assert "Traceback" not in done.stderr and "warning" not in done.stderr.lower().replace("warning: the spec", "")


@pytest.mark.model
def test_cli_transformers_engine_prints_no_deprecation_noise(tiny_model_path, tmp_path):
    done = cli("run", "specs/direct.yaml", "--task", "What is 2+2?", "--engine", "transformers", "--model",
               str(tiny_model_path), "--dtype", "bfloat16", "--device", "cpu", "--trace", str(tmp_path / "t.jsonl"))
    assert done.returncode == 0, done.stderr
    assert "satisfied" in done.stderr
    for noise in ("FutureWarning", "deprecated", "past_key_values", "Traceback"):
        assert noise not in done.stderr, done.stderr
    summary = json.loads((tmp_path / "t.jsonl").read_text().splitlines()[-1])
    assert summary["engine"] == "transformers" and summary["dtype"] == "bfloat16" and summary["device"] == "cpu"


@needs_llamacpp
def test_llamacpp_unconstrained_ablation_rewinds_at_env_tags(llama_engine):
    """The ablation on llama.cpp: free generation, cut and rewound at env tags, parsed post hoc."""
    from ltlagent.runtime.agent import Agent
    from ltlagent.runtime.tools import DocStore, ToolBox

    compiled = ltlagent.compile(ltlagent.load(SPECS / "react.yaml"))
    agent = Agent(compiled, llama_engine, Runtime.for_engine(llama_engine))
    toolbox = ToolBox.for_spec(compiled.spec, docs=DocStore.from_jsonl(REPO / "specs" / "docs" / "demo.jsonl"))
    free = agent.run_free("Who designed the Eiffel Tower?", toolbox)
    result = free.result
    assert result.transcript.startswith("Question: Who designed the Eiffel Tower?\n")
    assert result.model_tokens > 0 and result.stopped_by in ("eos", "final", "task tag", "call budget", "budget")
    observations = [r for r in result.segments if r.name == "observation"]
    assert all(r.by == "env" for r in observations)
    if free.parse_failure is None and result.accepted:
        assert verdict(compiled, result)["satisfied"]


@pytest.mark.model
@needs_llamacpp
def test_cli_eval_on_llamacpp_writes_results(tmp_path):
    out = tmp_path / "results"
    done = cli("eval", "specs/direct.yaml", "--data", "tests/data/hotpotqa_mini.jsonl", "--task", "hotpotqa",
               "--limit", "2", "--out", str(out), "--engine", "llamacpp")
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in (out / "direct-hotpotqa.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(row["satisfied"] for row in rows)

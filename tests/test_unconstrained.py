"""The ablation's free decoding: stop sequences at env tags, the environment called on the post-hoc parse,
episodes ended at a final segment, a budget or a task tag, and transcripts parsed like ``verify`` does.
Scripted fake models for the mechanics; the tiny real model for the KV-cache rewind."""
from __future__ import annotations

import pytest

import ltlagent
from ltlagent.runtime.agent import Runtime, prompt_text
from ltlagent.runtime.environment import Environment
from ltlagent.runtime.adversarial import RandomLogits
from samplers import Sampler
from ltlagent.runtime.tools import DocStore, ToolBox
from ltlagent.runtime.trace import verdict
from ltlagent.runtime.unconstrained import CALL_TOKENS, FreeRunner, final_letters, parse

from paths import REPO, SPECS

DOCS = DocStore.from_jsonl(REPO / "specs" / "docs" / "demo.jsonl")
TASK = "Which river flows through Paris?"


class ScriptedChunks:
    """A fake model preferring the tokens of its script in order (each part tokenised alone): it moves on
    when its wanted token is fed, or when the runner rewound (the token completed a stop tag)."""

    def __init__(self, tokenizer, *parts: str):
        import torch

        self.torch, self.vocab_size = torch, len(tokenizer)
        self.wanted = [t for part in parts for t in tokenizer.encode(part)]
        self.position = self.forward_passes = self.tokens_fed = self.length = 0
        self.rewinds: list[int] = []
        self.rewound = False

    def feed(self, ids):
        self.forward_passes += 1
        self.tokens_fed += len(ids)
        self.length += len(ids)
        if self.rewound or list(ids) == [self.current()]:
            self.position += 1
        self.rewound = False
        logits = self.torch.zeros(self.vocab_size)
        logits[self.current()] = 10.0
        return logits

    def current(self) -> int:
        return self.wanted[min(self.position, len(self.wanted) - 1)]

    def rewind(self, length):
        self.rewinds.append(self.length - length)
        self.length, self.rewound = length, True


@pytest.fixture(scope="module")
def vocab(tiny_tokenizer):
    return Runtime.for_tokenizer(tiny_tokenizer, tiny_tokenizer.eos_token_id).vocab


def free_run(spec_name, tokenizer, vocab, *parts, reference=None):
    compiled = ltlagent.compile(ltlagent.load(SPECS / f"{spec_name}.yaml"))
    toolbox = ToolBox.for_spec(compiled.spec, docs=DOCS)
    source = ScriptedChunks(tokenizer, *parts)
    runner = FreeRunner(compiled, vocab, (tokenizer.eos_token_id,))
    free = runner.run(source, Sampler(), Environment(TASK, toolbox, reference=reference), prompt_text(compiled.spec))
    return compiled, free, source


def test_env_tags_stop_generation_and_the_tool_sees_the_parsed_action(tiny_tokenizer, vocab):
    compiled, free, source = free_run(
        "react", tiny_tokenizer, vocab,
        "Thought: I search Paris.\nAction: Search\nAction Input: Paris\nObservation:",
        "Final Thought: It is the Seine.\nAnswer: Seine\n", "Question: never reached\n")
    transcript = free.result.transcript
    assert transcript.startswith(f"Question: {TASK}\nThought: I search Paris.\n")
    assert f"Observation: {DOCS.get('Paris').sentences[0]}" in transcript  # the real tool, not the model
    assert "never reached" not in transcript  # the answer ended the episode
    assert source.rewinds and source.rewinds[0] > 0  # the cache forgot the tokens after the cut
    assert free.parse_failure is None and free.result.stopped_by == "final"
    assert free.result.letters == ["question", "thought", "action.Search", "action_input", "observation",
                                   "final_thought", "answer"]
    assert verdict(compiled, free.result)["satisfied"] and free.result.accepted


def test_an_answer_before_any_observation_is_parsed_and_judged(tiny_tokenizer, vocab):
    compiled, free, _ = free_run("react", tiny_tokenizer, vocab, "Thought: I know it.\nAnswer: Seine\n")
    assert free.parse_failure is None and free.result.stopped_by == "final"
    check = verdict(compiled, free.result)
    assert not check["satisfied"] and not check["automaton_accepts"]
    assert {r["rule"] for r in check["rules"] if not r["holds"]} >= {"!answer U observation"}


@pytest.mark.parametrize("parts, failure", [
    (("A: Seine\n",), "untagged text after 'question'"),
    (("Thought: go\nAction: Browse\nAction Input: x\nObservation:",), "'action' is no option: 'Browse'"),
])
def test_parse_failures_are_reported(tiny_tokenizer, vocab, parts, failure):
    _, free, _ = free_run("react", tiny_tokenizer, vocab, *parts, "Answer: Seine\n")
    assert free.parse_failure is not None and free.parse_failure.startswith(failure)
    assert not free.result.accepted


def test_a_model_that_never_stops_hits_the_call_budget(tiny_tokenizer, vocab):
    _, free, _ = free_run("react", tiny_tokenizer, vocab, "Thought:" + " and so on" * 400)
    assert free.result.stopped_by == "call budget" and free.result.model_tokens == CALL_TOKENS


def test_a_task_tag_ends_the_episode(tiny_tokenizer, vocab):
    _, free, _ = free_run("cot", tiny_tokenizer, vocab, "Thought: hmm\n", "Question: another one\nAnswer: 3\n")
    assert free.result.stopped_by == "task tag" and "another" not in free.result.transcript


def test_final_letters():
    def finals(name):
        return final_letters(ltlagent.compile(ltlagent.load(SPECS / f"{name}.yaml")).automaton)
    assert finals("react") == {"answer"} and finals("direct") == {"answer"} and finals("rewoo") == {"answer"}
    assert finals("reflexion") == {"answer"}


def test_parse_locates_states_and_failures():
    compiled = ltlagent.compile(ltlagent.load(SPECS / "react.yaml"))
    records, failure = parse(compiled, "Question: q\nThought: t\nAction: Search\nAction Input: x\n")
    assert failure is None and [r.letter for r in records] == ["question", "thought", "action.Search", "action_input"]
    assert all(r.state_after >= 0 for r in records)
    assert [r.state_before for r in records[1:]] == [r.state_after for r in records[:-1]]
    records, failure = parse(compiled, "hello\nQuestion: q\n")
    assert failure.startswith("text before the first tag")


def test_free_runs_under_random_logits_end_within_budgets_and_never_pick_padding(tiny_tokenizer, vocab):
    compiled = ltlagent.compile(ltlagent.load(SPECS / "react.yaml"))
    runner = FreeRunner(compiled, vocab, (tiny_tokenizer.eos_token_id,))
    spiky = tiny_tokenizer.encode("\nObservation:") + tiny_tokenizer.encode("\nAnswer:") + [tiny_tokenizer.eos_token_id]
    padded = len(tiny_tokenizer) + 64  # a model whose vocab_size pads the tokenizer's (as Qwen's do)
    stops = set()
    for seed in range(6):
        env = Environment(TASK, ToolBox.for_spec(compiled.spec, docs=DOCS))
        free = runner.run(RandomLogits(padded, seed, spiky), Sampler(1.0, 0.9, seed), env, "")
        assert free.result.model_tokens <= min(compiled.spec.limits.max_tokens, CALL_TOKENS * len(free.result.segments) + CALL_TOKENS)
        assert free.result.transcript.startswith(f"Question: {TASK}\n")
        stops.add(free.result.stopped_by)
        if free.parse_failure is None and free.result.accepted:
            assert free.result.letters[-1] == "answer"
    assert stops <= {"eos", "final", "budget", "call budget", "task tag"} and stops


def test_a_newline_token_carrying_more_text_ends_the_answer_at_the_newline(tiny_tokenizer, vocab):
    newline_plus = vocab.token_bytes.index(b"\n   ")  # a newline token that carries blanks after it
    compiled = ltlagent.compile(ltlagent.load(SPECS / "direct.yaml"))
    source = ScriptedChunks(tiny_tokenizer, "Answer: Seine")
    source.wanted.append(newline_plus)
    source.wanted += tiny_tokenizer.encode("Extra words")
    runner = FreeRunner(compiled, vocab, (tiny_tokenizer.eos_token_id,))
    free = runner.run(source, Sampler(), Environment(TASK), prompt_text(compiled.spec))
    assert free.result.stopped_by == "final" and free.result.transcript.endswith("Answer: Seine\n")
    assert free.parse_failure is None and free.result.segments[-1].text == "Seine"


def test_rewind_forgets_the_cut_tokens(tiny_model_path, tiny_tokenizer):
    import numpy as np
    from transformers import AutoModelForCausalLM

    from ltlagent.runtime.engines.transformers import TransformersSession as ModelSession

    model = AutoModelForCausalLM.from_pretrained(tiny_model_path, local_files_only=True).eval()
    first, cut, then = (tiny_tokenizer.encode(t) for t in ("Question: where", " Observation: fake", " is it"))
    session = ModelSession(model)
    session.feed(first)
    session.feed(cut)
    session.rewind(len(first))
    assert session.length == len(first)
    rewound = session.feed(then)
    fresh = ModelSession(model)
    expected = fresh.feed(first + then)
    assert np.allclose(rewound, expected, atol=1e-4)

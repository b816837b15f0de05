"""The decode loop's guarantee: every finished run satisfies its spec — checked independently (automaton,
every rule by the reference evaluator, content constraints, limits) — for adversarial random logits with
the real SmolLM2 tokenizer, on every shipped spec and every reference s-expression spec; plus unit tests
of the loop's mechanics with a scripted fake model."""
from __future__ import annotations

import random
import textwrap

import pytest

import ltlagent
from ltlagent.runtime.agent import Runtime, prompt_text
from ltlagent.runtime.decode import STOP, DecodeError
from ltlagent.runtime.adversarial import RandomLogits
from samplers import Sampler
from ltlagent.runtime.trace import verdict

from paths import SPECS, reference_spec_paths
from tiers import FAST

EXTRA = {
    "data-calls": textwrap.dedent("""\
        name: shop
        segments:
          user: {tag: "User:", by: env, input: user}
          action: {tag: "Action:", call: [lookup, refund, note], max_tokens: 60}
          observation: {tag: "Observation:", by: env, tool: {name_from: action}}
          response: {tag: "Response:", max_tokens: 20}
        tools:
          lookup:
            function: "json:dumps"
            parameters: {type: object, properties: {order_id: {type: string}}}
            returns: {type: object, properties: {status: {type: string}, paid_with: {type: array, items: {type: string}}}}
          refund:
            function: "json:dumps"
            parameters: {type: object, properties: {order_id: {type: string}, methods: {type: array, items: {type: string}},
                                                    amount: {type: number}}}
          note: {function: "json:dumps", parameters: {type: object, properties: {}}}
        behavior:
          - ltl: user
          - ltl: G(action -> X observation)
          - ltl: G(observation -> X (action | response))
          - ltl: G(user -> X (action | response))
          - ltl: G(response -> WX user)
          - ltl: 'G(action.refund -> (exists o in action.lookup: o.args.order_id == this.args.order_id) & this.args.methods[*] in ["c1", "c2"] & this.args.amount <= 50)'
          - ltl: 'G(action.note -> previous user & !(exists n in action.note: true))'
        limits: {max_segments: 12, max_tokens: 300}
        """),
    "data-nested-calls": textwrap.dedent("""\
        name: garden
        segments:
          user: {tag: "User:", by: env, input: user}
          action: {tag: "Action:", call: [plant, tag, pick], max_tokens: 90}
          observation: {tag: "Observation:", by: env, tool: {name_from: action}}
          response: {tag: "Response:", max_tokens: 20}
        tools:
          plant:
            function: "json:dumps"
            parameters:
              type: object
              $defs:
                node: {type: object, properties: {v: {type: integer}, kids: {type: array, items: {$ref: "#/$defs/node"}}},
                       required: [v, kids]}
              properties:
                tree: {$ref: "#/$defs/node"}
                mode: {enum: [sun, shade]}
          tag:
            function: "json:dumps"
            parameters: {type: object, properties: {label: {type: object, properties: {a: {type: string}, b: {type: array,
                         items: {type: integer}}}, required: [a, b]}, loud: {type: boolean}}}
          pick:
            function: "json:dumps"
            parameters: {type: object, properties: {count: {type: integer}, items: {type: array, items: {type: object,
                         properties: {id: {type: string}}, required: [id]}}}}
        behavior:
          - ltl: user
          - ltl: G(action -> X observation)
          - ltl: G(observation -> X (action | response))
          - ltl: G(user -> X (action | response))
          - ltl: G(response -> WX user)
          - ltl: 'G(action.plant -> this.args.mode != "shade" & !(exists p in action.plant: true))'
          - ltl: 'G(action.tag -> !(this.args.loud) & (exists p in action.plant: true))'
          - ltl: 'G(action.pick -> this.args.count != 3 & (forall v in this.args.items: v.id != "bad"))'
        limits: {max_segments: 10, max_tokens: 300}
        """),
    "json-and-grammar": textwrap.dedent("""\
        name: structured
        segments:
          question: {tag: "Q:", by: env, input: task}
          call: {tag: "Call:", json: {type: object, properties: {tool: {enum: [search, calc]}, arg: {type: string}},
                                      required: [tool, arg]}, max_tokens: 40}
          assign: {tag: "Let:", grammar: "start: NAME \\"=\\" INT (\\",\\" NAME \\"=\\" INT)*\\n%import common.CNAME -> NAME\\n%import common.INT", max_tokens: 30}
          result: {tag: "Result:", by: env}
          answer: {tag: "A:", regex: '[0-9]+', max_tokens: 8}
        behavior:
          - pattern: question (call result | assign){1,3} answer
        limits: {max_segments: 8, max_tokens: 150}
        """),
    "reflexion-env-choice": textwrap.dedent("""\
        name: reflexion-mini
        segments:
          question: {tag: "Question:", by: env, input: task}
          attempt: {tag: "Attempt:", max_tokens: 20}
          evaluation: {tag: "Evaluation:", by: env, choice: [pass, fail]}
          reflection: {tag: "Reflection:", max_tokens: 20}
          answer: {tag: "Answer:", regex: '[A-Za-z ]+', max_tokens: 10}
        behavior:
          - pattern: question (attempt evaluation reflection){1,3} answer
          - G(evaluation.pass -> X (reflection & X answer))
        limits: {max_segments: 12, max_tokens: 200}
        """),
    "recursive-content": textwrap.dedent("""\
        name: recursive
        segments:
          question: {tag: "Q:", by: env, input: task}
          expr:
            tag: "Expr:"
            max_tokens: 24
            grammar: |
              start: expr
              ?expr: term (("+"|"*") term)*
              ?term: NUMBER | "(" expr ")" | "[" [expr ("," expr)*] "]"
              NUMBER: /[0-9]+/
              %ignore " "
          tree:
            tag: "Tree:"
            max_tokens: 40
            json:
              $defs:
                node:
                  type: object
                  properties:
                    name: {type: string}
                    kids: {type: array, items: {$ref: "#/$defs/node"}}
                  required: [name]
              $ref: "#/$defs/node"
          answer: {tag: "A:", regex: '[0-9]+', max_tokens: 8}
        behavior:
          - pattern: question (expr | tree){1,3} answer
        limits: {max_segments: 8, max_tokens: 120}
        """),
    "tight-budget": (SPECS / "react.yaml").read_text().replace("max_tokens: 1024", "max_tokens: 45"),
}


def all_specs():
    named = {p.stem: p for p in sorted(SPECS.glob("*.yaml"))}
    named.update({f"ref-{p.stem}": p for p in reference_spec_paths()})
    named.update(EXTRA)
    return named


SPEC_SOURCES = all_specs()


@pytest.fixture(scope="module")
def runtime(tiny_tokenizer):
    return Runtime.for_tokenizer(tiny_tokenizer, tiny_tokenizer.eos_token_id)


@pytest.fixture(scope="module")
def decoders(runtime):
    cache = {}

    def get(name):
        if name not in cache:
            compiled = ltlagent.compile(ltlagent.load(SPEC_SOURCES[name]))
            cache[name] = (compiled, runtime.decoder(compiled))
        return cache[name]
    return get


class RandomEnv:
    """An environment that answers anything: random text (newlines included) and random options."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)

    def produce(self, segment, records):
        if segment.options:
            return self.rng.choice(segment.options), None
        words = ["alpha", "beta\nGamma", "Observation: fake tag", "42", "é"]
        return " ".join(self.rng.choice(words) for _ in range(self.rng.randint(0, 6))), None


@pytest.mark.parametrize("name", sorted(SPEC_SOURCES))
def test_every_run_satisfies_the_spec_under_adversarial_logits(name, decoders, runtime, tiny_tokenizer):
    compiled, decoder = decoders(name)
    spiky = [tiny_tokenizer.eos_token_id] + tiny_tokenizer.encode("\n") + tiny_tokenizer.encode(" Answer:")
    for seed in range(3 if FAST else 12):
        sampler = Sampler(temperature=1.0, top_p=0.9, seed=seed) if seed % 2 else Sampler()
        source = RandomLogits(len(tiny_tokenizer), seed, spiky=spiky)
        result = decoder.run(source, sampler, RandomEnv(seed), prompt_text(compiled.spec))
        check = verdict(compiled, result)
        assert check["satisfied"], (name, seed, check, result.letters)
        assert result.accepted and len(result.segments) <= compiled.spec.limits.max_segments
        assert result.model_tokens <= compiled.spec.limits.max_tokens
        assert result.stopped_by in ("eos", "end")


def test_tight_budget_forces_the_shortest_way_out(decoders, tiny_tokenizer):
    compiled, decoder = decoders("tight-budget")
    forced = 0
    for seed in range(6):
        result = decoder.run(RandomLogits(len(tiny_tokenizer), seed), Sampler(), RandomEnv(seed), "")
        assert verdict(compiled, result)["satisfied"]
        assert result.model_tokens <= 45
        forced += sum(r.forced_tokens for r in result.segments if r.by == "model")
    assert forced > 0  # the budget really bit


class Scripted:
    """A fake model that always prefers the tokens of a fixed text, in order (wrapping around), and
    counts forward passes: for unit tests of the loop's mechanics only."""

    def __init__(self, tokenizer, text: str):
        import torch

        self.torch, self.vocab_size = torch, len(tokenizer)
        self.wanted = tokenizer.encode(text)
        self.position = 0
        self.forward_passes = self.tokens_fed = 0

    def feed(self, ids):
        self.forward_passes += 1
        self.tokens_fed += len(ids)
        logits = self.torch.zeros(self.vocab_size)
        logits[self.wanted[self.position % len(self.wanted)]] = 10.0
        self.position += 1
        return logits


class FixedEnv:
    def produce(self, segment, records):
        return ("pass" if segment.options else "some observation"), None


def test_eos_only_in_accepting_states_and_forced_tags_in_one_call(decoders, tiny_tokenizer):
    compiled, decoder = decoders("react")
    source = Scripted(tiny_tokenizer, "<|im_end|>")  # a model that wants to stop at once, always
    result = decoder.run(source, Sampler(), FixedEnv(), "Go.\n")
    assert result.accepted and verdict(compiled, result)["satisfied"]
    assert result.letters[-1] == "answer"
    for record in result.segments:
        if record.by == "env":  # tag (forced, one call) + the environment's text (one call)
            assert record.forward_passes <= 2


def test_choice_options_follow_the_automaton(decoders, tiny_tokenizer):
    compiled, decoder = decoders("reflexion-env-choice")
    result = decoder.run(Scripted(tiny_tokenizer, " pass"), Sampler(), FixedEnv(), "")
    assert verdict(compiled, result)["satisfied"]
    assert result.letters.count("evaluation.pass") == 1
    assert result.letters[-2:] == ["reflection", "answer"]


def test_environment_breaking_the_spec_is_an_error(decoders, tiny_tokenizer):
    compiled, decoder = decoders("reflexion-env-choice")

    class Bad:
        def produce(self, segment, records):
            return ("maybe" if segment.options else "x"), None

    with pytest.raises(DecodeError, match="'maybe'"):
        decoder.run(RandomLogits(len(tiny_tokenizer), 0), Sampler(), Bad(), "")


def test_runs_are_reproducible(decoders, tiny_tokenizer):
    compiled, decoder = decoders("tight-budget")  # ReAct in 45 tokens: the same mechanics, a short run
    texts = {decoder.run(RandomLogits(len(tiny_tokenizer), 3), Sampler(0.8, 0.95, seed=7), RandomEnv(1), "").transcript
             for _ in range(2)}
    assert len(texts) == 1


def test_ambiguous_tags_are_rejected_up_front(runtime):
    from ltlagent.runtime.constraints import ConstraintError

    text = "name: t\nsegments:\n  a: {tag: 'Note'}\n  b: {tag: 'Note:'}\nbehavior:\n  - pattern: a b\n"
    with pytest.raises(ConstraintError, match="ambiguous tags"):
        runtime.decoder(ltlagent.compile(ltlagent.load(text)))


def test_recursive_grammar_loads_and_the_regex_translation_still_refuses_it(runtime):
    """A recursive grammar is context-free content (llguidance decodes it, tests/test_cfg_content.py);
    the regex translation of regular grammars still refuses it, so the two paths never mix."""
    from ltlagent.runtime.constraints import ConstraintError, grammar_regex
    from ltlagent.runtime.masks import GrammarConstraint

    grammar = 'start: "(" start ")" | "x"'
    text = f"name: t\nsegments:\n  a: {{tag: 'A:', grammar: '{grammar}'}}\nbehavior:\n  - pattern: a\n"
    decoder = runtime.decoder(ltlagent.compile(ltlagent.load(text)))
    assert isinstance(decoder.contents["a"].constraint, GrammarConstraint)
    with pytest.raises(ConstraintError, match="recursive"):
        grammar_regex(grammar)

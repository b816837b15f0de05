"""The vLLM engine: episodes decoded by a vLLM server, the constraint of each step sent in the request's
``structured_outputs`` so that the server masks its own sampling (xgrammar or guidance).

One request per decision of the decode loop: which segment comes next (a regex over the candidate tags,
empty where the run may stop: the model then ends with EOS), which option of a choice, and each model
segment's content (its content regex, ``max_tokens`` = the segment's budget). A segment that is the only
way on costs no request; its tag joins the context. Answers are checked against the same token index a
local engine masks with: a server that ignores the constraint is detected and reported, never trusted; a
content cut off by ``max_tokens`` is completed here with the shortest valid continuation within budget.
The prompt of each request is the episode's token ids, so the server's prefix cache reuses their KV.

Why one request per segment and not per model turn: a turn's constraint would be the automaton's language
over tags and contents up to the next environment segment, budgets included, as one grammar per state
and budget; per-segment requests reuse the content regexes (compiled once by the server, cached) and cost
one round trip each, which the benchmark measures (``bench/bench_serving.py``).
"""
from __future__ import annotations

from ..steps import complete_within
from .base import EngineError
from .remote import (ConstraintIgnored, RemoteEngine, RequestSteps, alternatives, literal_regex, sampling_fields,
                     walk_index)


class VllmSteps(RequestSteps):
    """The decode loop's steps (see ``runtime.steps``) as constrained completions requests."""

    def request(self, regex, max_tokens: int) -> dict:
        """A completion under ``regex`` (a regex, or a content constraint's ``structured()`` fields: a
        regex, or a Lark grammar for vLLM's guidance backend)."""
        structured = {"regex": regex} if isinstance(regex, str) else regex
        body = {"prompt": self.session.prompt(), "max_tokens": max(1, max_tokens), "return_token_ids": True,
                "structured_outputs": structured,
                **sampling_fields(self.sampling, self.session.counters.requests)}
        return self.session.complete(body)

    def walk(self, trie, stop_token=None):
        """One of the trie's sequences (tags or options; STOP as the model's EOS), chosen by the server
        under a regex of their texts; the chosen one joins the context in its own tokens."""
        options = alternatives(trie)
        if (forced := self.only_way(options)) is not None:
            return forced
        texts = {key: ("" if ids == [stop_token] else self.d.vocab.text(ids)) for key, ids in options}
        regex = "(" + "|".join(literal_regex(t) for t in texts.values()) + ")"
        most = max(len(t.encode()) for t in texts.values()) + 1
        choice = self.request(regex, most)
        text = choice.get("text") or ""
        chosen = [key for key, t in texts.items() if t == text]
        if not chosen:
            raise ConstraintIgnored(f"{self.session.client.url}: asked for one of {list(texts.values())!r}, the "
                                    f"server wrote {text!r}: it ignores structured_outputs (an older vLLM, or "
                                    f"not vLLM?); use --engine openai for servers without constrained decoding")
        key = chosen[0]
        ids = dict(options)[key]
        if texts[key] == "":
            return key, []
        self.prefill(ids)
        return key, ids

    def content(self, content, budget: int):
        """The segment's content from the server under its constraint (a regex, or a Lark grammar for
        context-free content), checked token by token against the same constraint here (outlines-core
        index or llguidance matcher); cut off by the budget, completed here with the shortest valid
        continuation."""
        choice = self.request(content.constraint.structured(), budget)
        ids = list(choice["token_ids"])
        if not ids and choice.get("text"):
            raise EngineError(f"{self.session.client.url}: the server returns no token ids; vLLM >= 0.10 "
                              f"does with return_token_ids (use --engine openai for other servers)")
        while ids and ids[-1] in self.d.vocab.eos_ids:
            ids.pop()
        accepted, cursor = walk_index(content, ids)
        reason = choice.get("finish_reason")
        if reason not in ("stop", "length"):
            raise EngineError(f"{self.session.client.url}: the request ended with finish_reason {reason!r}")
        finished = reason == "stop"
        if accepted < len(ids) or (finished and not cursor.done):
            text = self.d.vocab.text(ids)
            sent = next(iter(content.constraint.structured().items()))
            raise ConstraintIgnored(f"{self.session.client.url}: the server wrote {text[:80]!r}, which breaks "
                                    f"the {sent[0]} it was sent ({sent[1][:60]!r}…): it ignores or "
                                    f"misreads structured_outputs")
        ids, added = complete_within(content, ids, budget)
        self.session.counters.completed += bool(added)
        self.prefill(ids)
        self.on_text(ids)
        return ids, added


class VllmEngine(RemoteEngine):
    name = "vllm"
    steps_class = VllmSteps
    token_prompts = True

    def check_tokenizer(self) -> None:
        """The server's /tokenize must agree with the local tokenizer on a probe text (budgets and
        indexes are in its tokens). Raises EngineError."""
        from dataclasses import replace

        probe = "Thought: the answer is 42.\nAction: Search[Paris]\n"
        client = self.clients[0]
        root = replace(client, url=client.url[:-3] if client.url.endswith("/v1") else client.url)
        try:
            answer = root.post("/tokenize", {"model": self.served_name, "prompt": probe, "add_special_tokens": False})
        except EngineError as err:
            if "HTTP 404" in str(err):  # a server without /tokenize: nothing to compare
                return
            raise
        theirs = answer.get("tokens")
        if theirs is not None and list(theirs) != self.vocab.encode(probe):
            raise EngineError(f"the server's tokenizer differs from the local one ({self.model_name}); give "
                              f"--model the model the server serves (its directory or GGUF file)")

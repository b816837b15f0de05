"""The openai engine: any OpenAI-compatible completions endpoint, with no constrained decoding.

The way the reference framework drove API models, made safe: each decision of the decode loop is one
plain completion, checked here before it joins the trace.

* Next segment / option: the model writes freely (``max_tokens`` a little over the longest alternative);
  the alternative its text starts with is taken (STOP when it ends at once with EOS).
* Content: generated with the segment's END as the stop sequence and ``max_tokens`` = its budget, then
  tokenized with the local tokenizer and walked through the content index.

An answer that fits nothing is resampled (``retries`` times, at temperature at least
``RETRY_TEMPERATURE``: at temperature 0 the same prompt gives the same answer); when every try breaks the
spec, the run takes the alternative closest to what the model wrote, or keeps the longest valid prefix of
its content and completes it with the shortest valid continuation within budget. So a finished run
satisfies the spec whatever the server writes; the counters report the retries and the completions.
"""
from __future__ import annotations

from ..steps import complete_within
from .base import Sampling
from .remote import RemoteEngine, RequestSteps, alternatives, sampling_fields, walk_index

RETRY_TEMPERATURE = 1.0


class OpenAISteps(RequestSteps):
    """The decode loop's steps (see ``runtime.steps``) as unconstrained completions, checked."""

    @property
    def retries(self) -> int:
        return self.session.engine.options.retries

    def request(self, max_tokens: int, attempt: int, stop=None) -> tuple[str, str]:
        """One plain completion of the context's text; (text, finish reason)."""
        sampling = self.sampling
        if attempt > 0 and sampling.temperature < RETRY_TEMPERATURE:
            sampling = Sampling(RETRY_TEMPERATURE, sampling.top_p, sampling.seed)
        body = {"prompt": self.session.prompt(),
                "max_tokens": max(1, max_tokens), **sampling_fields(sampling, self.session.counters.requests)}
        if stop:
            body["stop"] = [stop]
        choice = self.session.complete(body)
        return str(choice.get("text") or ""), str(choice.get("finish_reason") or "")

    def walk(self, trie, stop_token=None):
        """The alternative the model's text starts with (the longest; STOP for an immediate end)."""
        options = alternatives(trie)
        if (forced := self.only_way(options)) is not None:
            return forced
        texts = {key: (None if ids == [stop_token] else self.d.vocab.text(ids)) for key, ids in options}
        most = max(len(ids) for _, ids in options) + 4
        text = ""
        for attempt in range(self.retries + 1):
            text, finish = self.request(most, attempt)
            key = _matching(texts, text, finish)
            if key is not None:
                break
            self.session.counters.retries += attempt < self.retries
        else:
            key = _closest(texts, text)
            self.session.counters.completed += 1
        ids = dict(options)[key]
        if texts[key] is None:
            return key, []
        self.prefill(ids)
        return key, ids

    def content(self, content, budget: int):
        """The model's content if the index accepts it within budget; else resampled, and in the end its
        longest valid prefix completed by the shortest valid continuation."""
        ids: list[int] = []
        for attempt in range(self.retries + 1):
            text, finish = self.request(budget, attempt, stop=content.end or None)
            if content.end and finish == "stop" and not text.endswith(content.end):
                text += content.end  # the stop sequence is not part of the returned text
            ids = self.d.vocab.encode(text)
            accepted, cursor = walk_index(content, ids)
            if accepted == len(ids) and len(ids) <= budget and cursor.done:
                break
            self.session.counters.retries += attempt < self.retries
        ids, added = complete_within(content, ids, budget)
        self.session.counters.completed += bool(added)
        self.prefill(ids)
        self.on_text(ids)
        return ids, added


def _matching(texts: dict, text: str, finish: str):
    """The key whose text ``text`` starts with (the longest), STOP (text None) for an answer that
    ended at once; None when nothing fits."""
    if not text.strip() and finish == "stop":
        return next((key for key, t in texts.items() if t is None), None)
    fitting = [(len(t), key) for key, t in texts.items() if t and text.startswith(t)]
    return max(fitting, key=lambda pair: pair[0])[1] if fitting else None


def _closest(texts: dict, text: str):
    """The alternative sharing the longest prefix with ``text`` (the first on ties)."""
    def shared(t):
        t = t or ""
        return next((i for i, (a, b) in enumerate(zip(t, text)) if a != b), min(len(t), len(text)))

    return max(texts, key=lambda key: shared(texts[key]))


class OpenAIEngine(RemoteEngine):
    name = "openai"
    steps_class = OpenAISteps

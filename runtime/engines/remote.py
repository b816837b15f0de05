"""Serving engines: the model runs in a server (vLLM, or any OpenAI-compatible endpoint) that ltlagent
reaches over HTTP; the decode loop, the automaton, budgets, tools and traces stay here.

The client knows the model's tokenizer (``--model``, default the embedded model), so it keeps the
episode's context as token ids exactly as the local engines do, sets ``max_tokens`` from the spec's
budgets, and checks every answer against the content index before it joins the trace. Requests send the
whole context as their prompt: consecutive requests of an episode share it as a prefix, so the server's
prefix cache reuses its KV (the counters say how much, where the server reports it).

A session is one episode; it holds no server state, so sessions of one engine run concurrently from
several threads (``concurrent = True``), spread round-robin over the engine's replicas (``--url`` given
several times).
"""
from __future__ import annotations

import itertools
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Optional, Sequence

from .base import EngineError, EngineOptions, Sampling
from .http import Client


class ConstraintIgnored(EngineError):
    """The server answered text that breaks the constraint it was sent."""


@dataclass
class Counters:
    """One episode's requests and the prompt tokens they carried (``cached``: those the server
    reported as served from its prefix cache; None when it does not report them)."""

    requests: int = 0
    prompt_tokens: int = 0
    cached_prompt_tokens: Optional[int] = None
    completion_tokens: int = 0
    request_seconds: list = field(default_factory=list)
    retries: int = 0           # openai engine: answers resampled because they broke the spec
    completed: int = 0         # answers cut or repaired to the shortest valid continuation

    def add_usage(self, usage: dict) -> None:
        self.prompt_tokens += int(usage.get("prompt_tokens") or 0)
        self.completion_tokens += int(usage.get("completion_tokens") or 0)
        details = usage.get("prompt_tokens_details") or {}
        if details.get("cached_tokens") is not None:
            self.cached_prompt_tokens = (self.cached_prompt_tokens or 0) + int(details["cached_tokens"])

    def as_dict(self) -> dict:
        return {"requests": self.requests, "prompt_tokens": self.prompt_tokens,
                "cached_prompt_tokens": self.cached_prompt_tokens, "completion_tokens": self.completion_tokens,
                "request_seconds": round(sum(self.request_seconds), 4), "retries": self.retries,
                "completed": self.completed}


class RemoteOps:
    """Serving engines sample on the server: the "sampler" is the sampling settings it is sent."""

    def ids(self, ids):
        return list(ids)

    def scores(self, scores):
        return scores

    def sampler(self, sampling: Sampling) -> Sampling:
        return sampling


class RemoteSession:
    """One episode's context as token ids. ``feed`` appends (there are no local scores: it returns None);
    ``steps`` gives the decode loop the engine's way of producing tokens."""

    def __init__(self, engine, client: Client, adversary=None):
        self.engine, self.client, self.adversary = engine, client, adversary
        self.ids: list[int] = []
        self.counters = Counters()

    @property
    def length(self) -> int:
        return len(self.ids)

    @property
    def forward_passes(self) -> int:
        return self.counters.requests

    @property
    def tokens_fed(self) -> int:
        return self.counters.prompt_tokens

    def feed(self, ids: Sequence[int]):
        self.ids.extend(int(i) for i in ids)
        return None

    def rewind(self, length: int) -> None:
        if not 0 <= length <= len(self.ids):
            raise ValueError(f"cannot rewind to {length} tokens: the session holds {len(self.ids)}")
        del self.ids[length:]

    def prompt(self):
        """The context as the server should read it: token ids (vLLM), or their text for plain OpenAI
        servers, whose token ids are not the client tokenizer's."""
        if self.engine.token_prompts:
            return list(self.ids)
        return self.engine.tokenizer.decode(self.ids, skip_special_tokens=False)

    def steps(self, decoder, sampling: Sampling, on_text):
        return self.engine.steps_class(decoder, self, sampling, on_text)

    def complete(self, body: dict) -> dict:
        """One completions request with ``body`` (model, sampling and bias added); returns its first
        choice, with the usage counted. Raises EngineError."""
        body = {"model": self.engine.served_name, **body}
        if self.adversary is not None:
            body["logit_bias"] = self.adversary.bias()
        started = time.perf_counter()
        answer = self.client.post("/completions", body)
        self.counters.request_seconds.append(time.perf_counter() - started)
        self.counters.requests += 1
        try:
            self.counters.add_usage(answer.get("usage") or {})
            choice = answer["choices"][0]
            if not isinstance(choice, dict):
                raise TypeError("a choice that is not an object")
            choice["token_ids"] = [int(t) for t in choice.get("token_ids") or []]
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as err:
            raise EngineError(f"{self.client.url}/completions: a malformed answer ({type(err).__name__}: {err}): "
                              f"{str(answer)[:200]}") from None
        return choice


class RequestSteps:
    """What the request-based steps of the serving engines share: the session, its counters, prefill."""

    def __init__(self, decoder, session: RemoteSession, sampling: Sampling, on_text):
        self.d, self.session, self.sampling, self.on_text = decoder, session, sampling, on_text

    def counters(self):
        from ..steps import StepCounters

        c = self.session.counters
        return StepCounters(c.requests, c.prompt_tokens, [], list(c.request_seconds), c.as_dict())

    def prefill(self, ids) -> None:
        self.session.feed(ids)

    def only_way(self, options: list):
        """With a single alternative, no request: it joins the context; returns (key, ids) or None."""
        if len(options) != 1:
            return None
        self.prefill(options[0][1])
        return options[0]


def api_key() -> Optional[str]:
    """The key for servers that want one: ``LTLAGENT_API_KEY``, else ``OPENAI_API_KEY``."""
    return os.environ.get("LTLAGENT_API_KEY") or os.environ.get("OPENAI_API_KEY")


def sampling_fields(sampling: Sampling, request: int) -> dict:
    """The request's sampling: greedy at temperature 0, else temperature / top-p with a seed that
    differs per request of the episode (runs are reproducible)."""
    if sampling.temperature <= 0:
        return {"temperature": 0.0}
    return {"temperature": sampling.temperature, "top_p": sampling.top_p,
            "seed": (sampling.seed * 1_000_003 + request) % (2 ** 31)}


def alternatives(trie) -> list[tuple[object, list[int]]]:
    """The (key, token sequence) pairs of a TokenTrie, in a fixed order."""
    found, stack = [], [(trie.root, [])]
    while stack:
        node, path = stack.pop()
        found += [(key, path) for key in node.ends]
        stack += [(child, path + [token]) for token, child in sorted(node.children.items(), reverse=True)]
    return found


def walk_index(content, ids: Sequence[int]):
    """How many of ``ids`` the content's constraint accepts token by token, and its cursor after them
    (``runtime.masks``: the same check for an outlines-core index and an llguidance matcher)."""
    from ..steps import walk

    return walk(content, ids)


def portable_regex(regex: str) -> str:
    """``regex`` with control characters and escaped spaces written as escapes (``\\n``, ``\\t``,
    ``\\xHH``, a plain space), the same language in Python's syntax, outlines-core's and xgrammar's
    (which refuses a literal newline inside a character class)."""
    out, i = [], 0
    while i < len(regex):
        char = regex[i]
        if char == "\\" and i + 1 < len(regex):
            following = regex[i + 1]
            out.append(_escaped(following) if ord(following) < 32 or following == " " else "\\" + following)
            i += 2
            continue
        out.append(_escaped(char) if ord(char) < 32 else char)
        i += 1
    return "".join(out)


def _escaped(char: str) -> str:
    return {"\n": "\\n", "\t": "\\t", "\r": "\\r", " ": " "}.get(char, f"\\x{ord(char):02x}")


def literal_regex(text: str) -> str:
    """A regex matching exactly ``text`` (portable, see ``portable_regex``)."""
    special = set(".^$*+?()[]{}|\\/#&~-")
    return "".join("\\" + c if c in special else _escaped(c) if ord(c) < 32 else c for c in text)


class RemoteEngine:
    """A model behind an OpenAI-compatible server; subclasses set ``name`` and ``steps_class``."""

    concurrent = True
    steps_class = None
    name = "remote"
    token_prompts = False   # prompts as the client tokenizer's ids (vLLM reads them), else as text

    def __init__(self, options: EngineOptions, tokenizer, vocab, model_name: str, served_name: str,
                 clients: list[Client]):
        self.options, self.tokenizer, self.vocab = options, tokenizer, vocab
        self.model_name, self.served_name, self.clients = model_name, served_name, clients
        self.ops = RemoteOps()
        self._next = itertools.cycle(range(len(clients)))
        self._lock = threading.Lock()

    @classmethod
    def open(cls, options: EngineOptions, progress) -> "RemoteEngine":
        """Load the tokenizer of ``options.model`` (the embedded model by default), reach every server
        and find the served model. Raises EngineError or ModelError."""
        from ..models import load_tokenizer
        from ..vocab import Vocab

        if not options.urls:
            raise EngineError(f"--engine {cls.name} needs the server's address: --url http://HOST:PORT/v1")
        if options.dtype != "auto" or options.device != "auto":
            raise EngineError(f"--engine {cls.name}: the device and dtype are the server's settings; "
                              f"drop --device / --dtype")
        tokenizer, name, eos_ids = load_tokenizer(options.model, progress=progress)
        vocab = Vocab.of_tokenizer(tokenizer, eos_ids[0], eos_ids)
        clients = [Client(url.rstrip("/"), options.timeout, api_key()) for url in options.urls]
        served = [cls.served_model(client, options.model_name) for client in clients]
        if len(set(served)) > 1:
            raise EngineError(f"the replicas serve different models: {', '.join(sorted(set(served)))}; "
                              f"name one with --model-name")
        engine = cls(options, tokenizer, vocab, name, served[0], clients)
        engine.check_tokenizer()
        return engine

    @staticmethod
    def served_model(client: Client, wanted: Optional[str]) -> str:
        """The model name to send: ``wanted`` if the server lists it, else the only (first) one listed.
        Raises EngineError."""
        listed = client.get("/models").get("data") or []
        names = [m.get("id") for m in listed if isinstance(m, dict) and m.get("id")]
        if wanted is not None:
            if names and wanted not in names:
                raise EngineError(f"{client.url} does not serve {wanted!r}; it serves {', '.join(names)}")
            return wanted
        if not names:
            raise EngineError(f"{client.url}/models lists no model; name one with --model-name")
        return names[0]

    def check_tokenizer(self) -> None:
        """Servers that can tokenize (vLLM) must tokenize like the local tokenizer: budgets and indexes
        are in its tokens. Raises EngineError when they differ."""

    def chat_template(self):
        """The client-side tokenizer's chat template (see ``base.Engine.chat_template``): the prompt is
        rendered and tokenized here, its specials as ids (``Vocab.encode_prompt``), and sent as ids
        (vllm) or as their text (openai, whose server reads the specials' spellings as specials)."""
        from .transformers import tokenizer_chat_template

        return tokenizer_chat_template(self.tokenizer)

    def session(self, adversary=None) -> RemoteSession:
        """A fresh episode on the next replica. ``adversary`` (tests): adds its ``bias()`` to every
        request as a logit bias."""
        with self._lock:
            client = self.clients[next(self._next)]
        return RemoteSession(self, client, adversary)

    def describe(self) -> dict:
        return {"engine": self.name, "urls": [c.url for c in self.clients], "served_model": self.served_name}

"""The engine seam: what the decode loop needs of a model, whatever runs it.

An *engine* is a loaded model with its vocabulary; a *session* is one episode's context on it (one KV
cache, fed incrementally, rewindable). Scores stay where the engine keeps them (a torch tensor on the
model's device, a numpy view of llama.cpp's logits): the engine's ``ops`` turn token-id arrays into that
kind once, and pick tokens there, so no step copies the vocabulary between devices.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Protocol, Sequence

ENGINES = ("auto", "transformers", "llamacpp", "vllm", "openai")
SERVING = ("vllm", "openai")   # engines that reach a server: --url
DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("auto", "float32", "bfloat16", "float16")


class EngineError(Exception):
    """An engine cannot be used as asked (not installed, wrong model kind, no such device); the message
    says what to do about it."""


@dataclass(frozen=True)
class EngineOptions:
    """How to run the model: which engine, model, device, dtype, CPU threads and context size travel
    together from the command line to the engine."""

    engine: str = "auto"
    model: Optional[str] = None       # None: the embedded default
    device: str = "auto"
    dtype: str = "auto"
    threads: Optional[int] = None
    context: Optional[int] = None     # llama.cpp: tokens of context per episode (None: the model's, at most 8192)
    urls: tuple = ()                  # serving engines: each replica's OpenAI API base, http://HOST:PORT/v1
    model_name: Optional[str] = None  # serving engines: the served model's name (None: the one it lists)
    timeout: float = 120.0            # serving engines: seconds to wait for one answer
    retries: int = 3                  # openai engine: resamples of an answer that breaks the spec

    def __post_init__(self):
        for value, allowed, what in ((self.engine, ENGINES, "engine"), (self.device, DEVICES, "device"),
                                     (self.dtype, DTYPES, "dtype")):
            if value not in allowed:
                raise EngineError(f"unknown {what} {value!r}; use one of {', '.join(allowed)}")
        if self.urls and self.engine not in SERVING + ("auto",):
            raise EngineError(f"--url is for the serving engines ({', '.join(SERVING)}), not {self.engine}")


@dataclass(frozen=True)
class Sampling:
    """Greedy at temperature 0, else temperature + nucleus (top-p) sampling from a seeded generator."""

    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0


@dataclass(frozen=True)
class ChatTemplate:
    """A model's chat template: its Jinja source, as the tokenizer config or the GGUF metadata
    (``tokenizer.chat_template``) holds it, and the special tokens' spellings templates refer to
    (``bos_token``, ``eos_token``; "" when the model has none). Rendered by ``runtime.prompts``."""

    source: str
    bos_token: str = ""
    eos_token: str = ""


class Session(Protocol):
    """One episode's context. ``feed`` runs the model over new tokens only and returns the next-token
    scores (valid until the next ``feed``); ``rewind(n)`` forgets every token after the first n."""

    forward_passes: int
    tokens_fed: int
    length: int

    def feed(self, ids: Sequence[int]) -> Any: ...

    def rewind(self, length: int) -> None: ...


class Ops(Protocol):
    """Array operations where an engine's scores live."""

    def ids(self, ids) -> Any:
        """A token-id array (a sequence or a 1-D integer numpy array) as the engine's index array."""

    def scores(self, scores) -> Any:
        """A float numpy array as the engine's scores (adversarial test sources use it)."""

    def sampler(self, sampling: Sampling) -> "Sampler": ...


class Sampler(Protocol):
    def pick(self, scores, allowed) -> int:
        """One of ``allowed`` (an ``Ops.ids`` array, non-empty) given the full scores."""


class Engine(Protocol):
    """A loaded model: its vocabulary, array ops, and fresh sessions."""

    name: str           # "transformers", "llamacpp"
    model_name: str
    vocab: Any          # runtime.decode.Vocab
    ops: Ops

    def session(self) -> Session: ...

    def describe(self) -> dict:
        """What the trace records of the engine (name, device, dtype, threads, …)."""

    def chat_template(self) -> Optional[ChatTemplate]:
        """The model's own chat template, or None when it has none (``--prompt-format chat`` is then an
        error). The contract, for every engine: the template is the one of the tokenizer whose ids the
        engine decodes (transformers: ``tokenizer.chat_template``; llama.cpp: the GGUF's
        ``tokenizer.chat_template``; a completions server, e.g. vLLM: the HF tokenizer it loads on the
        client side, the template applied there, never the server's chat endpoint). The rendered prompt
        reaches the model through ``vocab.encode_prompt``, which must turn the template's special-token
        spellings (``<|im_start|>``) into their ids exactly as the model's own tokenizer does, while
        ``vocab.encode`` keeps the transcript literal."""

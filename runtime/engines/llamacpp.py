"""The llama.cpp engine: ``llama-cpp-python`` in-process, GGUF files read directly (the embedded model
needs no conversion), our masks on its logits, one KV cache rewound per episode.

The vocabulary is the GGUF's own (its token pieces and attributes), so indexes are built for exactly the
tokens llama.cpp decodes; ``tests/test_llamacpp.py`` checks that it agrees with the transformers tokenizer
of the same model token for token. Logits are a numpy view of llama.cpp's buffer: nothing is copied.
"""
from __future__ import annotations

import ctypes
import os
from pathlib import Path
from typing import Sequence

from .arrays import NumpyOps
from .base import EngineError, EngineOptions

INSTALL_HINT = ("the llama.cpp engine needs llama-cpp-python, which builds from source (about 3-6 minutes "
                "on 2 cores): pip install 'ltlagent[llamacpp]' (or `make setup-llamacpp` in a clone); or use "
                "--engine transformers")
MAX_CONTEXT = 8192
BATCH = 512


def available() -> bool:
    """Whether llama-cpp-python is installed (found without importing it)."""
    import importlib.util

    return importlib.util.find_spec("llama_cpp") is not None


def gguf_path(model) -> Path:
    """The GGUF file to load: the embedded default's for None, else ``model`` itself. Raises EngineError
    for anything that is not a GGUF file, ModelError when the embedded model is not installed."""
    from ..models import embedded_gguf

    if model is None:
        return embedded_gguf()
    path = Path(os.fspath(model)).expanduser()
    if path.is_file() and path.suffix.lower() == ".gguf":
        return path.resolve()
    if path.is_dir():
        raise EngineError(f"{model} is a directory; the llama.cpp engine reads .gguf files: pass --model "
                          "FILE.gguf, or use --engine transformers for a transformers directory")
    raise EngineError(f"{model}: no such .gguf file (the llama.cpp engine reads GGUF files)")


class LlamaCppEngine:
    """A GGUF model loaded by llama.cpp; ``session()`` starts an episode on its one context."""

    name = "llamacpp"

    def __init__(self, llama, path: Path, threads: int, model_name: str):
        self.llama, self.path, self.threads, self.model_name = llama, path, threads, model_name
        self.vocab = gguf_vocab(llama)
        self.ops = NumpyOps()
        self.active: "LlamaCppSession | None" = None

    @classmethod
    def open(cls, options: EngineOptions, progress) -> "LlamaCppEngine":
        """Load the GGUF of ``options.model``. Raises EngineError (not installed, not a GGUF, an option
        llama.cpp does not take) or ModelError."""
        if not available():
            raise EngineError(INSTALL_HINT)
        import llama_cpp

        offload = llama_cpp.llama_supports_gpu_offload()
        if options.device not in ("auto", "cpu") and not offload:
            raise EngineError(f"--device {options.device}: this llama-cpp-python build runs on the CPU only; "
                              "rebuild it with GPU support or use --engine transformers")
        if options.dtype != "auto":
            raise EngineError("--dtype applies to the transformers engine; llama.cpp computes in the GGUF "
                              "file's own types (pick a differently quantised GGUF instead)")
        from ..models import EMBEDDED_MODEL_NAME, default_threads

        path = gguf_path(options.model)
        threads = options.threads or default_threads()
        gpu_layers = -1 if offload and options.device != "cpu" else 0
        try:
            context = options.context or min(_trained_context(path), MAX_CONTEXT)
            llama = llama_cpp.Llama(model_path=str(path), n_ctx=context, n_batch=BATCH, n_threads=threads,
                                    n_threads_batch=threads, n_gpu_layers=gpu_layers, logits_all=False,
                                    verbose=False)
        except (ValueError, RuntimeError, OSError) as err:
            raise EngineError(f"llama.cpp cannot load {path}: {err}") from None
        name = EMBEDDED_MODEL_NAME if options.model is None else path.stem
        return cls(llama, path, threads, name)

    def session(self) -> "LlamaCppSession":
        """A new episode; the previous session of this engine ends (one context, one episode at a time).
        The KV cache of a prompt prefix shared with the previous episode is kept."""
        if self.active is not None:
            self.active.closed = True
        self.active = LlamaCppSession(self)
        return self.active

    def chat_template(self):
        """The GGUF's chat template (see ``base.Engine.chat_template``), or None."""
        return gguf_chat_template(self.llama)

    def describe(self) -> dict:
        import llama_cpp

        return {"engine": self.name, "device": "gpu" if llama_cpp.llama_supports_gpu_offload() else "cpu",
                "dtype": "gguf", "threads": self.threads, "gguf": str(self.path),
                "context": self.llama.n_ctx()}


def _trained_context(path: Path) -> int:
    """The context length the model was trained with (the weights are mapped, not read)."""
    import llama_cpp
    from llama_cpp._internals import LlamaModel

    probe = LlamaModel(path_model=str(path), params=llama_cpp.llama_model_default_params(), verbose=False)
    try:
        return probe.n_ctx_train() or MAX_CONTEXT
    finally:
        probe.close()


class LlamaCppSession:
    """One episode on the engine's context: ``feed`` evaluates new tokens only and returns the last
    position's logits (a numpy view, valid until the next feed); ``rewind`` drops the tail of the cache."""

    def __init__(self, engine: LlamaCppEngine):
        self.engine, self.llama = engine, engine.llama
        self.forward_passes = self.tokens_fed = 0
        self.tokens_reused = 0  # fed tokens whose KV an earlier episode left in the cache (not computed)
        self.length = 0
        self.closed = False
        self.n_vocab = self.llama.n_vocab()

    def feed(self, ids: Sequence[int]):
        """Raises ValueError for no tokens, EngineError when the context is full or the session ended."""
        if not ids:
            raise ValueError("feed needs at least one token")
        if self.closed:
            raise EngineError("this llama.cpp session has ended: its engine started another episode")
        llama, ids = self.llama, list(ids)
        if self.length + len(ids) > llama.n_ctx():
            raise EngineError(f"the episode needs more than the {llama.n_ctx()} tokens of context the model "
                              "was loaded with (--context)")
        keep = self._reusable(ids)
        self.tokens_reused += keep
        llama.n_tokens = self.length + keep
        try:
            llama.eval(ids[keep:])
        except RuntimeError as err:
            raise EngineError(f"llama.cpp could not decode: {err}") from None
        self.forward_passes += 1
        self.tokens_fed += len(ids)
        self.length += len(ids)
        import numpy as np

        return np.ctypeslib.as_array(llama._ctx.get_logits_ith(-1), shape=(self.n_vocab,))

    def _reusable(self, ids: list[int]) -> int:
        """How many leading tokens of ``ids`` are already in the cache at this position (left there by an
        earlier episode with the same prompt); the last token is always evaluated, for its logits."""
        llama, start = self.llama, self.length
        resident = llama.input_ids[start:llama.n_tokens] if llama.n_tokens > start else ()
        keep, limit = 0, min(len(resident), len(ids) - 1)
        while keep < limit and resident[keep] == ids[keep]:
            keep += 1
        return keep

    def rewind(self, length: int) -> None:
        """Forget every token after the first ``length``. Raises ValueError unless 0 <= length <= the
        tokens fed."""
        if not 0 <= length <= self.length:
            raise ValueError(f"cannot rewind to {length} tokens: the session holds {self.length}")
        self.length = length
        self.llama.n_tokens = length


def gguf_vocab(llama):
    """The GGUF's vocabulary: each token's bytes as llama.cpp detokenizes it (None for control, unknown
    and unused tokens), its tokenizer (no BOS, no special tokens parsed from text), EOS and the other
    end-of-generation ids."""
    import llama_cpp

    from ..vocab import Vocab

    vocab = llama._model.vocab
    hidden = llama_cpp.LLAMA_TOKEN_ATTR_CONTROL | llama_cpp.LLAMA_TOKEN_ATTR_UNKNOWN | llama_cpp.LLAMA_TOKEN_ATTR_UNUSED
    pieces, ends = [], []
    buffer = ctypes.create_string_buffer(256)
    for token in range(llama.n_vocab()):
        if llama_cpp.llama_vocab_is_eog(vocab, token):
            ends.append(token)
        if llama_cpp.llama_vocab_get_attr(vocab, token) & hidden:
            pieces.append(None)
            continue
        n = llama_cpp.llama_token_to_piece(vocab, token, buffer, len(buffer), 0, False)
        pieces.append(buffer.raw[:n] if n >= 0 else None)
    eos = llama._model.token_eos()
    if eos < 0:
        eos = ends[0] if ends else llama._model.token_eot()

    def encode(text: str) -> list[int]:
        return llama.tokenize(text.encode("utf-8"), add_bos=False, special=False) if text else []

    def encode_special(text: str) -> list[int]:
        return llama.tokenize(text.encode("utf-8"), add_bos=False, special=True) if text else []

    return Vocab(encode, pieces, eos, ends, encode_special)


def gguf_chat_template(llama):
    """The GGUF's chat template (metadata ``tokenizer.chat_template``) with its BOS and EOS spellings, or
    None when the file holds none."""
    from .base import ChatTemplate

    metadata = llama.metadata or {}
    source = metadata.get("tokenizer.chat_template")
    if not source:
        return None
    return ChatTemplate(source, _token_text(llama, metadata.get("tokenizer.ggml.bos_token_id")),
                        _token_text(llama, metadata.get("tokenizer.ggml.eos_token_id")))


def _token_text(llama, ident) -> str:
    """A token's spelling (special tokens as written, ``<|im_start|>``), "" for a missing or bad id."""
    import llama_cpp

    try:
        token = int(ident)
    except (TypeError, ValueError):
        return ""
    if not 0 <= token < llama.n_vocab():
        return ""
    return (llama_cpp.llama_vocab_get_text(llama._model.vocab, token) or b"").decode("utf-8", errors="replace")

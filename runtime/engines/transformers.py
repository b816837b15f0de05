"""The transformers engine: any causal LM that transformers loads (a model directory, a cached hub id, or
a GGUF file converted once), on any torch device and dtype, with one DynamicCache per episode."""
from __future__ import annotations

from typing import Sequence

from .arrays import TorchOps
from .base import EngineError, EngineOptions


def resolve_device(device: str) -> str:
    """``auto`` is CUDA, then MPS, then the CPU. Raises EngineError for a device torch cannot use here."""
    import torch

    cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if device == "auto":
        return "cuda" if cuda else "mps" if mps else "cpu"
    if device == "cuda" and not cuda:
        build = "without CUDA" if torch.version.cuda is None else f"with CUDA {torch.version.cuda}, but no GPU is visible"
        raise EngineError(f"--device cuda: torch {torch.__version__} is built {build}; use --device cpu, or "
                          "install a CUDA build of torch on a machine with a GPU")
    if device == "mps" and not mps:
        raise EngineError("--device mps: this torch build or machine has no Apple MPS backend; use --device cpu")
    return device


def resolve_dtype(dtype: str, device: str):
    """``auto`` is bfloat16 on CUDA (float16 where the GPU has no bf16), float16 on MPS, float32 on the
    CPU."""
    import torch

    if dtype == "auto":
        if device == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float16 if device == "mps" else torch.float32
    return getattr(torch, dtype)


class TransformersEngine:
    """A loaded transformers model; ``session()`` opens one episode's KV cache on it."""

    name = "transformers"

    def __init__(self, loaded, device: str, threads: int):
        from ..vocab import Vocab

        self.loaded, self.device, self.threads = loaded, device, threads
        self.model_name = loaded.name
        self.vocab = Vocab.of_tokenizer(loaded.tokenizer, loaded.eos_token_ids[0], loaded.eos_token_ids)
        self.ops = TorchOps(device)

    @classmethod
    def open(cls, options: EngineOptions, progress) -> "TransformersEngine":
        """Load ``options.model`` on the resolved device and dtype. Raises EngineError / ModelError."""
        from ..models import default_threads, load_model

        device = resolve_device(options.device)
        dtype = resolve_dtype(options.dtype, device)
        threads = options.threads or default_threads()
        loaded = load_model(options.model, threads=threads, progress=progress, device=device, dtype=dtype)
        return cls(loaded, device, threads)

    def session(self) -> "TransformersSession":
        return TransformersSession(self.loaded.model, self.device)

    def chat_template(self):
        """The tokenizer's chat template (see ``base.Engine.chat_template``), or None."""
        return tokenizer_chat_template(self.loaded.tokenizer)

    def describe(self) -> dict:
        dtype = str(self.loaded.model.dtype).replace("torch.", "")
        return {"engine": self.name, "device": self.device, "dtype": dtype, "threads": self.threads}


def tokenizer_chat_template(tokenizer):
    """A transformers tokenizer's chat template (its ``default`` one when it names several) with its BOS and
    EOS spellings, or None when it has none."""
    from .base import ChatTemplate

    source = getattr(tokenizer, "chat_template", None)
    if isinstance(source, dict):
        source = source.get("default")
    if not isinstance(source, str) or not source.strip():
        return None
    return ChatTemplate(source, getattr(tokenizer, "bos_token", None) or "", getattr(tokenizer, "eos_token", None) or "")


class TransformersSession:
    """A causal LM fed incrementally: every ``feed`` is one forward call over the new tokens only,
    reusing the KV cache of everything fed before."""

    def __init__(self, model, device: str = "cpu"):
        from transformers import DynamicCache

        self.model, self.device = model, device
        self.cpu = str(device).startswith("cpu")
        self.cache = DynamicCache(config=model.config)
        self.forward_passes = self.tokens_fed = 0
        self.length = 0  # tokens in the cache

    def feed(self, ids: Sequence[int]):
        """Feed tokens (at least one); returns the next-token logits: on the CPU a float32 numpy array (a
        view for float32 models), on a GPU a 1-D tensor on the device, in the model's dtype."""
        import torch

        if not ids:
            raise ValueError("feed needs at least one token")
        tokens = torch.tensor([list(ids)], device=self.device)
        with torch.inference_mode():
            out = self.model(input_ids=tokens, cache=self.cache, use_cache=True, logits_to_keep=1)
        self.forward_passes += 1
        self.tokens_fed += len(ids)
        self.length += len(ids)
        logits = out.logits[0, -1]
        return logits.float().numpy() if self.cpu else logits

    def rewind(self, length: int) -> None:
        """Forget every token after the first ``length`` (the next ``feed`` continues from there). Raises
        ValueError unless 0 <= length <= the tokens in the cache."""
        if not 0 <= length <= self.length:
            raise ValueError(f"cannot rewind to {length} tokens: the cache holds {self.length}")
        if length < self.length:
            self.cache.crop(length - self.length)  # a negative count: tokens to drop from the end
        self.length = length



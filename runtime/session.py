"""Sources of next-token logits: a transformers model with one KV cache for the whole episode, and a
seeded random source (adversarial logits) for property tests. Both count tokens and forward passes."""
from __future__ import annotations

from typing import Sequence


class ModelSession:
    """A causal LM fed incrementally: every ``feed`` is one forward call over the new tokens only,
    reusing the KV cache of everything fed before."""

    def __init__(self, model):
        from transformers import DynamicCache

        self.model = model
        self.cache = DynamicCache()
        self.forward_passes = 0
        self.tokens_fed = 0
        self.length = 0  # tokens in the cache
        self.vocab_size = model.config.vocab_size

    def feed(self, ids: Sequence[int]):
        """Feed tokens (at least one); returns the logits (1-D float tensor) for the next token."""
        import torch

        if not ids:
            raise ValueError("feed needs at least one token")
        with torch.inference_mode():
            out = self.model(input_ids=torch.tensor([list(ids)]), past_key_values=self.cache, use_cache=True,
                             logits_to_keep=1)
        self.cache = out.past_key_values
        self.forward_passes += 1
        self.tokens_fed += len(ids)
        self.length += len(ids)
        return out.logits[0, -1].float()

    def rewind(self, length: int) -> None:
        """Forget every token after the first ``length`` (the next ``feed`` continues from there). Raises
        ValueError unless 0 <= length <= the tokens in the cache."""
        if not 0 <= length <= self.length:
            raise ValueError(f"cannot rewind to {length} tokens: the cache holds {self.length}")
        if length < self.length:
            self.cache.crop(length - self.length)  # a negative count: tokens to drop from the end
        self.length = length


class RandomLogits:
    """Adversarial stand-in for a model: heavy-tailed random logits from a seeded generator, with spikes
    on random tokens (EOS and newlines included) to push the decoder towards every edge."""

    def __init__(self, vocab_size: int, seed: int = 0, spiky: Sequence[int] = ()):
        import torch

        self.vocab_size = vocab_size
        self.generator = torch.Generator().manual_seed(seed)
        self.spiky = list(spiky)
        self.forward_passes = 0
        self.tokens_fed = 0
        self.length = 0

    def feed(self, ids: Sequence[int]):
        import torch

        self.forward_passes += 1
        self.tokens_fed += len(ids)
        self.length += len(ids)
        logits = torch.randn(self.vocab_size, generator=self.generator) * 4
        if self.spiky and torch.rand(1, generator=self.generator).item() < 0.5:
            pick = self.spiky[int(torch.randint(len(self.spiky), (1,), generator=self.generator))]
            logits[pick] += 50
        return logits


    def rewind(self, length: int) -> None:
        self.length = length


class Sampler:
    """Picks a token among allowed ids: greedy at temperature 0, else temperature + nucleus (top-p)
    sampling from a seeded generator (reproducible)."""

    def __init__(self, temperature: float = 0.0, top_p: float = 1.0, seed: int = 0):
        import torch

        self.temperature, self.top_p = temperature, top_p
        self.generator = torch.Generator().manual_seed(seed)

    def pick(self, logits, allowed) -> int:
        """One of ``allowed`` (a 1-D long tensor, non-empty) given the full logits."""
        import torch

        if len(allowed) == 1:
            return int(allowed[0])
        scores = logits.index_select(0, allowed)
        if self.temperature <= 0:
            return int(allowed[int(torch.argmax(scores))])
        probs = torch.softmax(scores / self.temperature, dim=0)
        if self.top_p < 1.0:
            probs = _nucleus(probs, self.top_p)
        return int(allowed[int(torch.multinomial(probs, 1, generator=self.generator))])


def _nucleus(probs, top_p: float):
    import torch

    ordered, order = torch.sort(probs, descending=True)
    keep = torch.cumsum(ordered, 0) - ordered < top_p
    kept = torch.zeros_like(probs)
    kept[order[keep]] = probs[order[keep]]
    return kept / kept.sum()

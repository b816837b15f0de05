"""Adversarial score sources for the property tests: every guarantee must hold whatever the model says.

``RandomLogits`` stands in for a model (heavy-tailed random scores with spikes on chosen tokens, EOS and
newlines among them); ``Adversarial`` wraps a real engine session, so its KV cache, rewinds and score
arrays are exercised, but hands the decoder random scores of the same kind, on the same device;
``Recording`` wraps any source and keeps what it was fed.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


class RandomLogits:
    """A seeded random source of scores; ``ops`` (default: CPU torch tensors) says which array kind."""

    def __init__(self, vocab_size: int, seed: int = 0, spiky: Sequence[int] = (), ops=None):
        if ops is None:
            from .engines.arrays import TorchOps

            ops = TorchOps("cpu")
        self.vocab_size, self.ops = vocab_size, ops
        self.rng = np.random.default_rng(seed)
        self.spiky = list(spiky)
        self.forward_passes = self.tokens_fed = self.length = 0

    def scores(self):
        logits = (self.rng.standard_normal(self.vocab_size) * 4).astype(np.float32)
        if self.spiky and self.rng.random() < 0.5:
            logits[self.spiky[int(self.rng.integers(len(self.spiky)))]] += 50
        return self.ops.scores(logits)

    def feed(self, ids: Sequence[int]):
        if not ids:
            raise ValueError("feed needs at least one token")
        self.forward_passes += 1
        self.tokens_fed += len(ids)
        self.length += len(ids)
        return self.scores()

    def rewind(self, length: int) -> None:
        if not 0 <= length <= self.length:
            raise ValueError(f"cannot rewind to {length} tokens: the source holds {self.length}")
        self.length = length


class Adversarial:
    """A real session whose scores are replaced by ``RandomLogits``' (same array kind as the engine's)."""

    def __init__(self, inner, vocab_size: int, ops, seed: int = 0, spiky: Sequence[int] = ()):
        self.inner, self.random = inner, RandomLogits(vocab_size, seed, spiky, ops)

    @property
    def forward_passes(self) -> int:
        return self.inner.forward_passes

    @property
    def tokens_fed(self) -> int:
        return self.inner.tokens_fed

    @property
    def length(self) -> int:
        return self.inner.length

    def feed(self, ids: Sequence[int]):
        real = self.inner.feed(ids)
        noise = self.random.scores()
        return noise if real.shape[0] >= noise.shape[0] else noise[: real.shape[0]]

    def rewind(self, length: int) -> None:
        self.inner.rewind(length)


class RandomBias:
    """The adversary of a serving engine, whose scores never leave the server: a seeded random logit
    bias on every request (strong pushes towards EOS, newlines and chosen tokens, and random ones), so
    the server's constrained sampler and the client's checks see the same kind of hostile scores."""

    def __init__(self, vocab_size: int, seed: int = 0, spiky: Sequence[int] = (), size: int = 32):
        self.vocab_size, self.spiky, self.size = vocab_size, list(spiky), size
        self.rng = np.random.default_rng(seed)

    def bias(self) -> dict:
        ids = self.rng.integers(0, self.vocab_size, self.size).tolist()
        values = (self.rng.standard_normal(self.size) * 30).clip(-100, 100).tolist()
        bias = {str(i): round(v, 2) for i, v in zip(ids, values)}
        if self.spiky and self.rng.random() < 0.5:
            bias[str(self.spiky[int(self.rng.integers(len(self.spiky)))])] = 100.0
        return bias


class Recording:
    """A source (session) that remembers every feed: ``calls``, one id list per feed; ``fed``, all of them."""

    def __init__(self, inner):
        self.inner, self.calls = inner, []

    forward_passes = property(lambda self: self.inner.forward_passes)
    tokens_fed = property(lambda self: self.inner.tokens_fed)
    length = property(lambda self: self.inner.length)

    @property
    def fed(self) -> list[int]:
        return [i for ids in self.calls for i in ids]

    def feed(self, ids: Sequence[int]):
        self.calls.append(list(ids))
        return self.inner.feed(ids)

    def rewind(self, length: int) -> None:
        self.inner.rewind(length)

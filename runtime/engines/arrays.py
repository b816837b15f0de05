"""Token picking where the scores live: numpy for scores in CPU memory (llama.cpp's buffer, or a CPU
torch tensor viewed as numpy without a copy), torch for scores on a GPU.

On the CPU numpy is used even for torch tensors: its single-threaded kernels cost microseconds on a
vocabulary, where torch's multi-threaded ones stall for milliseconds when other processes compete for the
cores.

Both samplers promise the same thing: ``pick(scores, allowed)`` returns one id of ``allowed``; greedy at
temperature 0 (ties to the first allowed id), else a draw from the temperature-scaled, nucleus-cut
distribution over the allowed ids, from a generator seeded once (runs are reproducible).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .base import Sampling


class NumpyOps:
    """Scores are a 1-D float numpy array (a view of the engine's buffer)."""

    def ids(self, ids) -> np.ndarray:
        return np.ascontiguousarray(ids, dtype=np.int64)

    def scores(self, scores: np.ndarray) -> np.ndarray:
        """A float numpy array as this engine's scores (for adversarial test sources)."""
        return np.ascontiguousarray(scores, dtype=np.float32)

    def sampler(self, sampling: Sampling) -> "NumpySampler":
        return NumpySampler(sampling)


class NumpySampler:
    def __init__(self, sampling: Sampling):
        self.sampling = sampling
        self.rng = np.random.default_rng(sampling.seed)

    def pick(self, scores, allowed) -> int:
        if len(allowed) == 1:
            return int(allowed[0])
        if not isinstance(scores, np.ndarray):  # a CPU torch tensor: a view, copied only if not float32
            scores = scores.detach().float().numpy()
        chosen = scores[allowed]
        if self.sampling.temperature <= 0:
            return int(allowed[int(np.argmax(chosen))])
        z = chosen.astype(np.float64) / self.sampling.temperature
        probs = np.exp(z - z.max())
        probs /= probs.sum()
        order = np.argsort(-probs, kind="stable")
        ordered = probs[order]
        if self.sampling.top_p < 1.0:  # the smallest prefix of the sorted distribution reaching top_p
            kept = max(1, int(np.count_nonzero(np.cumsum(ordered) - ordered < self.sampling.top_p)))
            ordered = ordered[:kept] / ordered[:kept].sum()
        return int(allowed[order[int(self.rng.choice(len(ordered), p=ordered))]])


class TorchOps:
    """Scores are a 1-D torch tensor on ``device``; index arrays are made there once (numpy arrays when
    the device is the CPU, see the module docstring)."""

    def __init__(self, device: Any = "cpu"):
        import torch

        self.torch, self.device = torch, torch.device(device)
        self.on_cpu = self.device.type == "cpu"

    def ids(self, ids):
        array = np.ascontiguousarray(ids, dtype=np.int64)
        return array if self.on_cpu else self.torch.from_numpy(array).to(self.device)

    def scores(self, scores: np.ndarray):
        """A float numpy array as this engine's scores (for adversarial test sources)."""
        return self.torch.from_numpy(np.ascontiguousarray(scores, dtype=np.float32)).to(self.device)

    def sampler(self, sampling: Sampling):
        return NumpySampler(sampling) if self.on_cpu else TorchSampler(sampling, self.device)


class TorchSampler:
    def __init__(self, sampling: Sampling, device: Any = "cpu"):
        import torch

        self.torch, self.sampling = torch, sampling
        self.generator = torch.Generator(device=device).manual_seed(sampling.seed)

    def pick(self, scores, allowed) -> int:
        torch = self.torch
        if len(allowed) == 1:
            return int(allowed[0])
        chosen = scores.index_select(0, allowed).float()
        if self.sampling.temperature <= 0:
            return int(allowed[torch.argmax(chosen)])  # one device sync
        probs = torch.softmax(chosen / self.sampling.temperature, dim=0)
        if self.sampling.top_p >= 1.0:
            return int(allowed[torch.multinomial(probs, 1, generator=self.generator)])
        ordered, order = torch.sort(probs, descending=True)  # the smallest prefix reaching top_p
        kept = max(1, int(((torch.cumsum(ordered, 0) - ordered) < self.sampling.top_p).sum()))
        draw = torch.multinomial(ordered[:kept], 1, generator=self.generator)
        return int(allowed[order[draw]])

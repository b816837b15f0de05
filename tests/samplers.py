"""The CPU sampler under its old positional signature, for the decode-loop tests."""
from ltlagent.runtime.engines.arrays import TorchOps
from ltlagent.runtime.engines.base import Sampling


def Sampler(temperature: float = 0.0, top_p: float = 1.0, seed: int = 0):  # noqa: N802
    return TorchOps("cpu").sampler(Sampling(temperature, top_p, seed))

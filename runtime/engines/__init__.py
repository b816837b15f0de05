"""Engines: what runs the model behind the decode loop (see ``base`` for the protocol).

``auto`` picks the fastest engine installed for the model given:

* a GGUF file (or the embedded default, which is one) runs on **llama.cpp** when llama-cpp-python is
  installed: on a CPU it decodes about 3x faster than transformers in float32, and reads the file as it
  is. It does not when a GPU is visible and this llama.cpp build cannot offload to it, or when a
  ``--dtype`` is asked for: then transformers, on the GPU;
* with ``--url`` (a server's address), **vllm**: the server decodes under each request's constraint;
* anything else (a transformers directory, a cached hub id) runs on **transformers**, on the GPU with
  bfloat16 when there is one, else on the CPU in float32.
"""
from __future__ import annotations

import os
from pathlib import Path

from .base import DEVICES, DTYPES, ENGINES, ChatTemplate, Engine, EngineError, EngineOptions, Sampling, Session

__all__ = ["DEVICES", "DTYPES", "ENGINES", "ChatTemplate", "Engine", "EngineError", "EngineOptions", "Sampling",
           "Session", "choose", "open_engine"]


def _is_gguf(model) -> bool:
    return model is None or os.fspath(model).lower().endswith(".gguf")


def _gpu_visible() -> bool:
    """A cheap probe (no torch import): an NVIDIA driver is loaded, or this is Apple silicon."""
    import platform

    return Path("/proc/driver/nvidia").exists() or (platform.system() == "Darwin" and platform.machine() == "arm64")


def choose(options: EngineOptions) -> str:
    """The engine ``options`` asks for, ``auto`` resolved as the module docstring says."""
    from . import llamacpp

    if options.engine != "auto":
        return options.engine
    if options.urls:
        return "vllm"
    if not _is_gguf(options.model) or not llamacpp.available() or options.dtype != "auto":
        return "transformers"
    if options.device in ("cuda", "mps") or (options.device == "auto" and _gpu_visible()):
        import llama_cpp

        return "llamacpp" if llama_cpp.llama_supports_gpu_offload() else "transformers"
    return "llamacpp"


def open_engine(options: EngineOptions, progress=None) -> Engine:
    """Load the model on the chosen engine. Raises EngineError or ModelError with what to do."""
    progress = progress or (lambda message: None)
    name = choose(options)
    if name == "vllm":
        from .vllm import VllmEngine

        return VllmEngine.open(options, progress)
    if name == "openai":
        from .openai import OpenAIEngine

        return OpenAIEngine.open(options, progress)
    if name == "llamacpp":
        from .llamacpp import LlamaCppEngine

        return LlamaCppEngine.open(options, progress)
    from .transformers import TransformersEngine

    return TransformersEngine.open(options, progress)

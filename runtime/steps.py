"""How a model produces the tokens the decode loop asks for, step by step.

The decode loop (``decode._Run``) decides *what* may come next: which segments, which options, which
content constraint, within how many tokens. A *steps* object makes the model produce it:

* ``prefill(ids)``: tokens that are given (the prompt, environment text, forced tags) join the context;
* ``walk(trie, stop_token)``: the model picks one of several token sequences (tags, options, STOP);
* ``content(content, budget)``: the model writes one segment's content under its constraint within
  ``budget`` tokens, ending where the constraint is complete (``runtime.masks``: an outlines-core index
  or an llguidance matcher, behind one cursor protocol; these steps never ask which).

``TokenSteps`` drives any session that scores (``feed``/``rewind``: transformers, llama.cpp, the
adversarial sources) one token at a time, masking the scores. Serving engines, whose server samples under
the constraint itself, bring their own steps (``engines.remote``); the loop does not know which it has.
Both promise the same thing: what they return is one of the alternatives, or a token sequence accepted by
the content's constraint within the budget.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Optional

from .index import TokenTrie

MAX_REFUSALS = 16


@dataclass
class StepCounters:
    """What producing an episode cost: model calls (forward passes, or server requests), tokens sent
    to the model, and per-step timings."""

    forward_passes: int = 0
    tokens_fed: int = 0
    mask_seconds: list = field(default_factory=list)     # per sampled token: mask + pick
    forward_seconds: list = field(default_factory=list)  # per model call
    engine: dict = field(default_factory=dict)           # a serving engine's own counters


class TokenSteps:
    """Token-by-token steps over a scoring session: masks the scores of each step to what the trie or
    the content index allows, and lets the sampler pick."""

    def __init__(self, decoder, session, sampler, on_text: Callable[[list[int]], None]):
        """``on_text(ids)`` is told each run of model-written tokens as soon as it is fed (streaming)."""
        self.d, self.session, self.sampler, self.on_text = decoder, session, sampler, on_text
        self.logits = None
        self.mask_seconds: list[float] = []
        self.forward_seconds: list[float] = []

    def counters(self) -> StepCounters:
        return StepCounters(self.session.forward_passes, self.session.tokens_fed, self.mask_seconds,
                            self.forward_seconds)

    def prefill(self, ids: list[int]) -> None:
        started = time.perf_counter()
        self.logits = self.session.feed(ids)
        self.forward_seconds.append(time.perf_counter() - started)

    def pick(self, allowed_of, extra: float = 0.0) -> int:
        """Sample among the allowed tokens; the time to build the mask (plus ``extra`` already spent on
        it) and to pick is recorded."""
        started = time.perf_counter()
        token = self.sampler.pick(self.logits, allowed_of())
        self.mask_seconds.append(time.perf_counter() - started + extra)
        return token

    def walk(self, trie: TokenTrie, stop_token: Optional[int] = None) -> tuple[object, list[int]]:
        """Follow a trie with the model (forced runs fed at once); returns (key, tokens fed). The stop
        token ends the walk without being fed."""
        node, fed = trie.root, []
        while not (node.ends and not node.children):
            run = TokenTrie.forced_run(node)
            if run:
                self.prefill(run)
                fed += run
                for token in run:
                    node = node.children[token]
                continue
            token = self.pick(lambda: self.d.ops.ids(sorted(node.children)))
            if token == stop_token:  # EOS is offered only as the whole STOP sequence; never fed
                return node.children[token].ends[0], fed
            self.prefill([token])
            fed.append(token)
            node = node.children[token]
        return node.ends[0], fed

    def content(self, content, budget: int) -> tuple[list[int], int]:
        """Tokens of one constrained segment within ``budget`` tokens; returns (tokens, how many were
        forced). The content's cursor (``runtime.masks``) says what is allowed, whatever computes it.
        Tokens that are the only way on are collected and fed in one call; when the budget only just
        suffices, the shortest completion is forced; a pick the cursor refuses (it would leave no finish
        within budget) is drawn again without it, and after ``MAX_REFUSALS`` the completion's next token
        is taken."""
        cursor = content.constraint.start()
        ids, pending, forced = [], [], 0
        while not cursor.done:
            remaining = budget - len(ids) - len(pending)
            if remaining <= cursor.fewest:
                run = cursor.shortest()
                pending += run
                forced += len(run)
                break
            started = time.perf_counter()
            allowed = cursor.allowed(remaining)
            if len(allowed) == 1 and cursor.advance(int(allowed[0]), remaining):
                pending.append(int(allowed[0]))
                forced += 1
                continue
            mask_time = time.perf_counter() - started
            self.flush(pending, ids)
            token, refused = self.pick(lambda: allowed, extra=mask_time), []
            while not cursor.advance(token, remaining):
                refused.append(token)
                if len(refused) >= MAX_REFUSALS or len(refused) >= len(allowed):
                    token = cursor.shortest()[0]
                    forced += 1
                    if not cursor.advance(token, remaining):  # the invariant of every cursor
                        raise AssertionError("a content cursor refused its own shortest completion")
                    break
                token = self.pick(lambda: cursor.allowed(remaining, refused))
            pending.append(token)
        self.flush(pending, ids)
        return ids, forced

    def flush(self, pending: list[int], ids: list[int]) -> None:
        """Feed the collected tokens in one forward call and show their text."""
        if not pending:
            return
        self.prefill(pending)
        ids += pending
        self.on_text(list(pending))
        pending.clear()


def complete_within(content, ids: list[int], budget: int) -> tuple[list[int], int]:
    """A content that ``content``'s constraint accepts, in at most ``budget`` tokens, keeping as much of
    ``ids`` (tokens some model wrote) as possible: the longest prefix of ``ids`` that the constraint
    accepts token by token with a finish still within the rest of the budget, then the shortest way to
    finish. Returns (tokens, how many were added). ``budget`` must be at least the constraint's
    ``min_tokens`` (the decode loop plans for that)."""
    cursor = content.constraint.start()
    keep = 0
    for token in ids:
        if not cursor.advance(int(token), budget - keep):
            break
        keep += 1
    if keep == len(ids) and cursor.done:
        return list(ids), 0
    tail = cursor.shortest()
    return list(ids[:keep]) + tail, len(tail)


def walk(content, ids) -> tuple[int, object]:
    """How many of ``ids`` the content's constraint accepts token by token (budget aside), and the cursor
    after them."""
    cursor = content.constraint.start()
    accepted = 0
    for token in ids:
        if not cursor.advance(int(token), 1 << 30):
            break
        accepted += 1
    return accepted, cursor

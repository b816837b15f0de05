"""How a model produces the tokens the decode loop asks for, step by step.

The decode loop (``decode._Run``) decides *what* may come next: which segments, which options, which
content constraint, within how many tokens. A *steps* object makes the model produce it:

* ``prefill(ids)``: tokens that are given (the prompt, environment text, forced tags) join the context;
* ``walk(trie, stop_token)``: the model picks one of several token sequences (tags, options, STOP);
* ``content(content, budget)``: the model writes one segment's content under its index within
  ``budget`` tokens, ending in a final index state.

``TokenSteps`` drives any session that scores (``feed``/``rewind``: transformers, llama.cpp, the
adversarial sources) one token at a time, masking the scores. Serving engines, whose server samples under
the constraint itself, bring their own steps (``engines.remote``); the loop does not know which it has.
Both promise the same thing: what they return is one of the alternatives, or a token sequence accepted by
the content index within the budget.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from .index import IndexPaths, TokenTrie


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
        """Tokens of one indexed segment within ``budget`` tokens; returns (tokens, how many were forced).
        Tokens that are the only way on are collected and fed in one call; when the budget only just
        suffices, the shortest completion is forced."""
        index, paths = content.index, content.paths
        state, ids, pending = index.get_initial_state(), [], []
        forced = 0
        while not index.is_final_state(state):
            remaining = budget - len(ids) - len(pending)
            if remaining <= paths.dist[state]:
                run = paths.shortest(state)
                pending += run
                forced += len(run)
                break
            started = time.perf_counter()
            allowed = self.allowed(content, state, remaining)
            if len(allowed) == 1:
                pending.append(int(allowed[0]))
                forced += 1
                state = index.get_next_state(state, pending[-1])
                continue
            mask_time = time.perf_counter() - started
            self.flush(pending, ids)
            token = self.pick(lambda: allowed, extra=mask_time)
            pending.append(token)
            state = index.get_next_state(state, token)
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

    def allowed(self, content, state: int, remaining: int):
        """Allowed tokens at an index state (sorted, so sampling is reproducible across processes) that
        still leave a way to finish within ``remaining`` tokens, as an array where the scores live. The
        state's array is made once; a tight budget filters it with one vectorised comparison."""
        key = (id(content.index), state)
        mask = self.d.masks.get(key)
        if mask is None:
            mask = self.d.masks[key] = _StateMask.of(content.index, state, self.d.vocab.eos_id, self.d.ops)
        if remaining - 1 >= content.paths.max_dist:
            return mask.ids
        return mask.within(content.paths, remaining - 1, self.d.ops)


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


def complete_within(content, ids: list[int], budget: int) -> tuple[list[int], int]:
    """A content that ``content``'s index accepts, in at most ``budget`` tokens, keeping as much of
    ``ids`` (tokens some model wrote) as possible: the longest prefix of ``ids`` that the index accepts
    token by token and from which a final state is reachable within the rest of the budget, then the
    shortest way to a final state. Returns (tokens, how many were added). ``budget`` must be at least the
    index's distance from its initial state (the decode loop plans for that)."""
    index, paths = content.index, content.paths
    state, states = index.get_initial_state(), [index.get_initial_state()]
    for token in ids:
        following = index.get_next_state(state, int(token))
        if following is None or following not in paths.dist:
            break
        state = following
        states.append(state)
    keep = len(states) - 1
    while keep > 0 and (keep + paths.dist[states[keep]] > budget):
        keep -= 1
    if keep == len(ids) and index.is_final_state(states[keep]):
        return list(ids), 0
    tail = paths.shortest(states[keep])
    return list(ids[:keep]) + tail, len(tail)

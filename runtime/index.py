"""Token-level indexes: which vocabulary tokens may come next.

* ``IndexStore``: one outlines-core ``Index`` per content regex, built over the model's vocabulary (as
  byte strings) and cached in memory and on disk (raw bytes from ``Index.__reduce__``, read back with
  ``Index.from_binary``: no pickle), keyed by the regex and the vocabulary hash.
* ``TokenTrie``: literal alternatives (tags, choice options) as token sequences; at each step the allowed
  tokens are the children of the current node, and a node with one continuation is fed in one call.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence


@dataclass
class IndexStats:
    built: int = 0
    loaded: int = 0
    seconds: float = 0.0


class IndexStore:
    """Content-regex indexes over one vocabulary, cached in memory and (if ``directory``) on disk."""

    def __init__(self, vocabulary, vocabulary_hash: str, directory: Optional[Path] = None):
        self.vocabulary = vocabulary
        self.vocabulary_hash = vocabulary_hash
        self.directory = directory
        self.memory: dict = {}
        self.stats = IndexStats()

    def get(self, regex: str):
        """The outlines-core Index of ``regex`` (built, or read from the cache)."""
        if regex not in self.memory:
            started = time.perf_counter()
            self.memory[regex] = self._load(regex) or self._build(regex)
            self.stats.seconds += time.perf_counter() - started
        return self.memory[regex]

    def paths(self, regex: str, eos_token_id: int) -> "IndexPaths":
        """The shortest-path table of ``regex``'s index (computed, or read from the cache)."""
        key = ("paths", regex)
        if key not in self.memory:
            self.memory[key] = self._load_paths(regex) or self._build_paths(regex, eos_token_id)
        return self.memory[key]

    def _load_paths(self, regex: str):
        if self.directory is None:
            return None
        try:
            return IndexPaths.from_bytes((self.directory / f"{self._key(regex)}.paths").read_bytes())
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _build_paths(self, regex: str, eos_token_id: int) -> "IndexPaths":
        paths = IndexPaths.compute(self.get(regex), eos_token_id)
        if self.directory is not None:
            _write_atomic(self.directory / f"{self._key(regex)}.paths", paths.to_bytes())
        return paths

    def _key(self, regex: str) -> str:
        return hashlib.sha256(f"{self.vocabulary_hash}\0{regex}".encode()).hexdigest()[:32]

    def _load(self, regex: str):
        from outlines_core import Index

        if self.directory is None:
            return None
        path = self.directory / f"{self._key(regex)}.index"
        try:
            index = Index.from_binary(path.read_bytes())
        except (OSError, ValueError, RuntimeError):
            return None
        self.stats.loaded += 1
        return index

    def _build(self, regex: str):
        from outlines_core import Index

        index = Index(regex, self.vocabulary)
        self.stats.built += 1
        if self.directory is not None:
            _write_atomic(self.directory / f"{self._key(regex)}.index", index.__reduce__()[1][0])
        return index


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(handle, "wb") as out:
        out.write(data)
    os.replace(temp, path)


@dataclass
class TrieNode:
    children: dict[int, "TrieNode"] = field(default_factory=dict)
    ends: list[object] = field(default_factory=list)  # keys of the sequences that end here


class TokenTrie:
    """A trie over token sequences, each sequence labelled with a key (a segment, an option, STOP)."""

    def __init__(self, sequences: Sequence[tuple[object, Sequence[int]]]):
        """Raises ValueError when a sequence is empty or a prefix of another (the walk could not tell
        where it ends)."""
        self.root = TrieNode()
        ends = []
        for key, tokens in sequences:
            node = self.root
            for token in tokens:
                node = node.children.setdefault(token, TrieNode())
            node.ends.append(key)
            ends.append((key, node))
        for key, node in ends:
            if node is self.root or node.children or len(node.ends) > 1:
                raise ValueError(f"{key!r} is empty, or its tokens are a prefix of another alternative's")

    @staticmethod
    def forced_run(node: TrieNode) -> list[int]:
        """The tokens that follow ``node`` while there is exactly one way on and no sequence ends."""
        run = []
        while len(node.children) == 1 and not node.ends:
            token, node = next(iter(node.children.items()))
            run.append(token)
        return run


class IndexPaths:
    """Shortest token paths to acceptance in an outlines-core Index: ``dist[state]`` is the fewest
    tokens from ``state`` to a final state and ``best[state]`` = (token, next state) realises it.
    Computed by a reverse breadth-first search in sorted order (deterministic across processes)."""

    def __init__(self, dist: dict[int, int], best: dict[int, tuple[int, int]]):
        self.dist, self.best = dist, best
        self.max_dist = max(dist.values(), default=0)
        self._dense = None

    def dist_of(self, states):
        """``dist`` of each state of an integer numpy array, vectorised (a huge number where no final state
        is reachable)."""
        import numpy as np

        far = np.iinfo(np.int64).max // 2
        if self._dense is None:
            self._dense = np.full(max(self.dist, default=0) + 1, far, dtype=np.int64)
            self._dense[list(self.dist)] = list(self.dist.values())
        inside = states < len(self._dense)
        return np.where(inside, self._dense[np.where(inside, states, 0)], far)

    @classmethod
    def compute(cls, index, eos_token_id: int) -> "IndexPaths":
        from collections import deque

        preds: dict[int, list[tuple[int, int]]] = {}
        for state, moves in sorted(index.get_transitions().items()):
            for token, target in sorted(moves.items()):
                if token != eos_token_id:
                    preds.setdefault(target, []).append((state, token))
        dist = {s: 0 for s in sorted(index.get_final_states())}
        best: dict[int, tuple[int, int]] = {}
        queue = deque(dist)
        while queue:
            target = queue.popleft()
            for state, token in preds.get(target, ()):
                if state not in dist:
                    dist[state] = dist[target] + 1
                    best[state] = (token, target)
                    queue.append(state)
        return cls(dist, best)

    def to_bytes(self) -> bytes:
        return json.dumps({"dist": self.dist, "best": self.best}).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> "IndexPaths":
        """Raises ValueError for data that is not a saved IndexPaths."""
        raw = json.loads(data)
        return cls({int(k): int(v) for k, v in raw["dist"].items()},
                   {int(k): (int(v[0]), int(v[1])) for k, v in raw["best"].items()})

    def shortest(self, state: int) -> list[int]:
        """The tokens of a shortest path from ``state`` to a final state."""
        path = []
        while self.dist.get(state, 0) > 0:
            token, state = self.best[state]
            path.append(token)
        return path

"""The fast tier (``make test-fast``, LTLAGENT_TEST_FAST=1): fewer property-test examples and fuzzed
cases; ``make test`` runs the full counts. Tests that run the embedded model are marked ``model`` by
conftest, and wheel builds and external tools ``slow``; the fast tier skips both."""
from __future__ import annotations

import os

FAST = os.environ.get("LTLAGENT_TEST_FAST") == "1"


def examples(n: int) -> int:
    """A property test's example count: ``n``, or a tenth of it (at least 10) in the fast tier."""
    return max(10, n // 10) if FAST else n

"""The fast tier (``make test-fast``, LTLAGENT_TEST_FAST=1): fewer property-test examples, fuzzed cases
and adversarial decoding seeds; ``make test`` runs the full counts. Tests that run the embedded model are
marked ``model`` by conftest (whole tiny-model episodes, tests/test_library_runs.py, too), and wheel
builds and external tools ``slow``; the fast tier skips both."""
from __future__ import annotations

import os

FAST = os.environ.get("LTLAGENT_TEST_FAST") == "1"


def examples(n: int) -> int:
    """A property test's example count: ``n``, or a tenth of it (at least 10) in the fast tier."""
    return max(10, n // 10) if FAST else n

"""Shared paths for the tests: the repo, its shipped specs, and ../shared beside the checkout."""
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SPECS = REPO / "specs"
SHARED = REPO.parent / "shared"
REFERENCE_SPECS = SHARED / "reference" / "ibm-llm-agent-framework" / "specs"


def reference_spec_paths() -> list[Path]:
    """The eight reference s-expression specs (empty when ../shared is absent)."""
    return sorted(REFERENCE_SPECS.glob("*.txt")) if REFERENCE_SPECS.is_dir() else []


needs_reference = pytest.mark.skipif(not REFERENCE_SPECS.is_dir(),
                                     reason=f"reference specs not found at {REFERENCE_SPECS}")

RETAIL_MINI = REPO / "tests" / "data" / "retail_mini"   # the hand-written fixture world
TAU_RETAIL = SHARED / "data" / "tau_retail"             # the τ-bench retail data, when ../shared has it
needs_tau_retail = pytest.mark.skipif(not (TAU_RETAIL / "db" / "orders.json").is_file(),
                                      reason=f"retail data not found at {TAU_RETAIL}")

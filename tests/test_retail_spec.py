"""specs/retail.yaml, the retail policy's propositional part: hand-written traces that each rule
accepts or rejects (the checks and the example are covered with every shipped spec in test_library)."""
from __future__ import annotations

import pytest

import ltlagent
from ltlagent.runtime.retail.tools import MUTATING, SCHEMAS

from paths import SPECS

AUTH = "user action.find_user_id_by_email action_input observation"
LOOKUP = "action.get_order_details action_input observation"
CANCEL = "propose confirmation.yes action.cancel_pending_order action_input observation"


@pytest.fixture(scope="module")
def retail():
    return ltlagent.compile(ltlagent.load(SPECS / "retail.yaml"))


def accepts(compiled, text: str) -> bool:
    return compiled.automaton.accepts(text.split())


def test_the_actions_are_the_retail_tools(retail):
    spec = retail.spec
    assert set(spec.segment("action").options) == set(SCHEMAS)
    assert {t.name for t in spec.tools} == set(SCHEMAS)
    assert spec.segment("confirmation").by == "env" and spec.segment("confirmation").options == ("yes", "no")


@pytest.mark.parametrize("trace", [
    f"{AUTH} {LOOKUP} {CANCEL} response",
    f"{AUTH} {LOOKUP} propose confirmation.no response user response",
    "user response user response",
    f"{AUTH} action.transfer_to_human_agents action_input observation response",
    f"{AUTH} propose confirmation.yes action.modify_user_address action_input observation response",
])
def test_compliant_traces_are_accepted(retail, trace):
    assert accepts(retail, trace)


@pytest.mark.parametrize("why, trace", [
    ("a change without a yes", f"{AUTH} {LOOKUP} action.cancel_pending_order action_input observation response"),
    ("a change after a no", f"{AUTH} {LOOKUP} propose confirmation.no action.cancel_pending_order action_input observation response"),
    ("a yes not acted on", f"{AUTH} {LOOKUP} propose confirmation.yes response"),
    ("a yes followed by a lookup", f"{AUTH} {LOOKUP} propose confirmation.yes {LOOKUP} response"),
    ("two changes on one yes", f"{AUTH} {LOOKUP} {CANCEL} action.cancel_pending_order action_input observation response"),
    ("order data before authentication", f"user {LOOKUP} response"),
    ("a proposal before authentication", "user propose confirmation.no response"),
    ("a change before any order lookup", f"{AUTH} {CANCEL} response"),
    ("a second call before the result", f"{AUTH} action.get_order_details action_input action.get_user_details action_input observation response"),
    ("a message instead of the result", f"{AUTH} action.get_order_details action_input response"),
    ("ending in a tool call", f"{AUTH}"),
    ("talking on after a transfer", f"{AUTH} action.transfer_to_human_agents action_input observation response user response"),
    ("the agent opens", "response user response"),
])
def test_each_rule_rejects_its_violation(retail, why, trace):
    assert not accepts(retail, trace), why


def test_every_change_needs_a_yes_right_before(retail):
    for name in sorted(MUTATING):
        call = f"action.{name} action_input observation"
        assert accepts(retail, f"{AUTH} {LOOKUP} propose confirmation.yes {call} response"), name
        assert not accepts(retail, f"{AUTH} {LOOKUP} {call} response"), name

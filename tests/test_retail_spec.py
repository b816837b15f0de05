"""specs/retail.yaml, the retail policy as a spec: hand-written traces that each propositional rule
accepts or rejects (the automaton), and hand-written conversations with data that each data rule
accepts or rejects (the reference evaluator ``holds``). The checks and the example are covered with
every shipped spec in test_library."""
from __future__ import annotations

import pytest

import ltlagent
from ltlagent.compiler.semantics import Step, holds
from ltlagent.runtime.retail.tools import MUTATING, SCHEMAS

from paths import SPECS

AUTH = "user action.find_user_id_by_email observation"
LOOKUP = "action.get_order_details observation"
CANCEL = "propose.cancel_pending_order confirmation.yes action.cancel_pending_order observation"


@pytest.fixture(scope="module")
def retail():
    return ltlagent.compile(ltlagent.load(SPECS / "retail.yaml"))


def accepts(compiled, text: str) -> bool:
    return compiled.automaton.accepts(text.split())


def test_the_calls_are_the_retail_tools_with_their_schemas(retail):
    import json

    spec = retail.spec
    assert set(spec.segment("action").options) == set(SCHEMAS)
    assert set(spec.segment("propose").options) == set(MUTATING)
    for name, schema in SCHEMAS.items():
        declared = json.loads(spec.tool(name).parameters)
        assert list(declared["properties"]) == list(schema["properties"]), name
    assert spec.segment("confirmation").by == "env" and spec.segment("confirmation").options == ("yes", "no")
    assert sum(r.kind == "data" for r in spec.behavior) >= 11


@pytest.mark.parametrize("trace", [
    f"{AUTH} {LOOKUP} {CANCEL} response",
    f"{AUTH} {LOOKUP} propose.cancel_pending_order confirmation.no response user response",
    "user response user response",
    f"{AUTH} {LOOKUP} propose.cancel_pending_order confirmation.yes response",
    f"{AUTH} action.transfer_to_human_agents observation response",
    f"{AUTH} propose.modify_user_address confirmation.yes action.modify_user_address observation response",
])
def test_compliant_traces_are_accepted(retail, trace):
    assert accepts(retail, trace)


@pytest.mark.parametrize("why, trace", [
    ("a change without a yes", f"{AUTH} {LOOKUP} action.cancel_pending_order observation response"),
    ("a change after a no", f"{AUTH} {LOOKUP} propose.cancel_pending_order confirmation.no "
                            "action.cancel_pending_order observation response"),
    ("a yes followed by a lookup", f"{AUTH} {LOOKUP} propose.cancel_pending_order confirmation.yes {LOOKUP} response"),
    ("two changes on one yes", f"{AUTH} {LOOKUP} {CANCEL} action.cancel_pending_order observation response"),
    ("a second call before the result", f"{AUTH} action.get_order_details action.get_user_details observation response"),
    ("a message instead of the result", f"{AUTH} action.get_order_details response"),
    ("ending in a tool call", f"{AUTH}"),
    ("talking on after a transfer", f"{AUTH} action.transfer_to_human_agents observation response user response"),
    ("the agent opens", "response user response"),
])
def test_each_propositional_rule_rejects_its_violation(retail, why, trace):
    assert not accepts(retail, trace), why


def test_every_change_needs_a_yes_right_before(retail):
    for name in sorted(MUTATING):
        call = f"action.{name} observation"
        assert accepts(retail, f"{AUTH} {LOOKUP} propose.{name} confirmation.yes {call} response"), name
        assert not accepts(retail, f"{AUTH} {LOOKUP} {call} response"), name


# -- the data rules, on conversations with data ----------------------------------------------------------

USER = {"payment_methods": {"credit_card_1": {"source": "credit_card", "id": "credit_card_1"},
                            "gift_card_2": {"source": "gift_card", "id": "gift_card_2", "balance": 10.0}},
        "orders": ["#W1", "#W2"]}
PENDING = {"order_id": "#W1", "user_id": "ada_1", "status": "pending",
           "items": [{"item_id": "11", "product_id": "P", "price": 5.0}],
           "payment_history": [{"transaction_type": "payment", "amount": 5.0, "payment_method_id": "credit_card_1"}]}
DELIVERED = dict(PENDING, order_id="#W2", status="delivered")
PRODUCT = {"product_id": "P", "variants": {"11": {"item_id": "11", "available": True},
                                           "12": {"item_id": "12", "available": True},
                                           "13": {"item_id": "13", "available": False}}}


def call(segment: str, tool: str, args: dict, result=None) -> Step:
    data = {"tool": tool, "args": args}
    if segment == "action":
        ok = not (isinstance(result, str) and result.startswith("Error"))
        data.update(result=result, ok=ok)
    return Step(f"{segment}.{tool}", data)


def opening(email_result="ada_1") -> list:
    return [Step("user"), call("action", "find_user_id_by_email", {"email": "ada@x"}, email_result),
            Step("observation"), call("action", "get_user_details", {"user_id": "ada_1"}, USER), Step("observation"),
            call("action", "get_order_details", {"order_id": "#W1"}, PENDING), Step("observation"),
            call("action", "get_order_details", {"order_id": "#W2"}, DELIVERED), Step("observation"),
            call("action", "get_product_details", {"product_id": "P"}, PRODUCT), Step("observation")]


def change(tool: str, args: dict) -> list:
    return [call("propose", tool, args), Step("confirmation.yes"), call("action", tool, args, {"ok": True}),
            Step("observation"), Step("response")]


def data_rules_hold(retail, steps) -> list[str]:
    """The data rules that do not hold on ``steps``."""
    return [r.why for r in retail.spec.behavior if r.kind == "data" and not holds(r.node, steps)]


CANCEL_W1 = {"order_id": "#W1", "reason": "ordered by mistake"}
RETURN_W2 = {"order_id": "#W2", "item_ids": ["11"], "payment_method_id": "credit_card_1"}
EXCHANGE_W2 = {"order_id": "#W2", "item_ids": ["11"], "new_item_ids": ["12"], "payment_method_id": "credit_card_1"}


@pytest.mark.parametrize("tool, args", [
    ("cancel_pending_order", CANCEL_W1),
    ("return_delivered_order_items", RETURN_W2),
    ("return_delivered_order_items", dict(RETURN_W2, payment_method_id="gift_card_2")),
    ("exchange_delivered_order_items", EXCHANGE_W2),
    ("modify_pending_order_payment", {"order_id": "#W1", "payment_method_id": "gift_card_2"}),
])
def test_compliant_changes_keep_every_data_rule(retail, tool, args):
    assert data_rules_hold(retail, opening() + change(tool, args)) == []


@pytest.mark.parametrize("why, steps", [
    ("a failed lookup does not authenticate", opening("Error: user not found") + change("cancel_pending_order", CANCEL_W1)),
    ("another user's order", opening() + change("cancel_pending_order", dict(CANCEL_W1, order_id="#W9"))),
    ("a delivered order cancelled", opening() + change("cancel_pending_order", dict(CANCEL_W1, order_id="#W2"))),
    ("a pending order returned", opening() + change("return_delivered_order_items", dict(RETURN_W2, order_id="#W1"))),
    ("a reason not allowed", opening() + change("cancel_pending_order", dict(CANCEL_W1, reason="too slow"))),
    ("a refund elsewhere", opening() + change("return_delivered_order_items",
                                              dict(RETURN_W2, payment_method_id="paypal_7"))),
    ("the original method as the new one", opening() + change("modify_pending_order_payment",
                                                              {"order_id": "#W1", "payment_method_id": "credit_card_1"})),
    ("an unavailable variant", opening() + change("exchange_delivered_order_items", dict(EXCHANGE_W2, new_item_ids=["13"]))),
    ("the same variant", opening() + change("exchange_delivered_order_items", dict(EXCHANGE_W2, new_item_ids=["11"]))),
    ("fewer new items than items", opening() + change("exchange_delivered_order_items", dict(EXCHANGE_W2, new_item_ids=[]))),
    ("a gift card for a price difference", opening() + change("exchange_delivered_order_items",
                                                              dict(EXCHANGE_W2, payment_method_id="gift_card_2"))),
    ("a change other than the one agreed", opening() + [call("propose", "cancel_pending_order", CANCEL_W1),
                                                        Step("confirmation.yes"),
                                                        call("action", "cancel_pending_order",
                                                             dict(CANCEL_W1, reason="no longer needed"), {}),
                                                        Step("observation"), Step("response")]),
    ("exchanged twice", opening() + change("exchange_delivered_order_items", EXCHANGE_W2)
     + [Step("user")] + change("exchange_delivered_order_items", EXCHANGE_W2)),
    ("a second user", opening() + [call("action", "find_user_id_by_email", {"email": "bob@x"}, "bob_2"),
                                   Step("observation"), Step("response")]),
    ("another user's profile", opening() + [call("action", "get_user_details", {"user_id": "bob_2"}, USER),
                                           Step("observation"), Step("response")]),
])
def test_each_data_rule_rejects_its_violation(retail, why, steps):
    assert data_rules_hold(retail, steps) != [], why

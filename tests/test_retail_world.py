"""The retail world: loading, copy-on-write episodes, the 15 tools (on the fixture world and the real
τ-bench database), replay of the 80 dev tasks' ground truths, database diffs, concurrency isolation."""
from __future__ import annotations

import json
import threading

import pytest
from hypothesis import given, settings, strategies as st

from ltlagent.runtime.retail import World, WorldError
from ltlagent.runtime.retail.binding import bind, render
from ltlagent.runtime.retail.replay import db_diff, db_equal, expected, load_tasks, replay
from ltlagent.runtime.retail.tools import MUTATING, SCHEMAS, TOOLS, call

from paths import REPO, RETAIL_MINI as MINI, TAU_RETAIL as TAU, needs_tau_retail as needs_tau





@pytest.fixture(scope="module")
def tau_tasks():
    return load_tasks(TAU)


def is_error(result) -> bool:
    return isinstance(result, str) and result.startswith("Error: ")


# --- the world ----------------------------------------------------------------------------------------

def test_world_loads_once_and_is_read_only(mini):
    assert World.load(MINI) is mini and World.load(MINI / "db") is not None
    assert set(mini.users) == {"ada_lovelace_1815", "alan_turing_1912"} and len(mini.orders) == 5
    with pytest.raises(TypeError):
        mini.orders["#W9"] = {}


def test_a_missing_or_broken_folder_is_a_clear_error(tmp_path):
    with pytest.raises(WorldError, match="users.json: no such file"):
        World.load(tmp_path)
    (tmp_path / "users.json").write_text("{", encoding="utf-8")
    (tmp_path / "orders.json").write_text("{}", encoding="utf-8")
    (tmp_path / "products.json").write_text("[]", encoding="utf-8")
    with pytest.raises(WorldError, match="users.json: cannot read"):
        World.load(tmp_path)
    (tmp_path / "users.json").write_text("{}", encoding="utf-8")
    with pytest.raises(WorldError, match="products: expected a JSON object"):
        World.load(tmp_path)


def test_results_are_copies_the_shared_records_never_change(mini):
    episode = mini.episode()
    order = episode.call("get_order_details", {"order_id": "#W1000001"})
    order["status"] = "hacked"
    order["items"].clear()
    assert mini.orders["#W1000001"]["status"] == "pending" and mini.orders["#W1000001"]["items"]
    episode.call("cancel_pending_order", {"order_id": "#W1000001", "reason": "ordered by mistake"})
    assert mini.orders["#W1000001"]["status"] == "pending"
    assert mini.users["ada_lovelace_1815"]["payment_methods"]["gift_card_3000001"]["balance"] == 100
    assert set(episode.orders) == {"#W1000001"}  # only what changed was copied


def test_two_concurrent_episodes_do_not_see_each_other(mini):
    barrier, results = threading.Barrier(2), {}

    def cancel(name, reason):
        episode = mini.episode()
        barrier.wait()
        for _ in range(50):
            episode.call("get_order_details", {"order_id": "#W1000001"})
        results[name] = (episode, episode.call("cancel_pending_order", {"order_id": "#W1000001", "reason": reason}))

    threads = [threading.Thread(target=cancel, args=(n, r)) for n, r in (("a", "ordered by mistake"), ("b", "no longer needed"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    (a, ra), (b, rb) = results["a"], results["b"]
    assert ra["cancel_reason"] == "ordered by mistake" and rb["cancel_reason"] == "no longer needed"
    assert a.read_order("#W1000001") is not b.read_order("#W1000001")
    assert db_diff(a, b) == ["orders/#W1000001/cancel_reason"]
    assert mini.episode().read_order("#W1000001")["status"] == "pending"


# --- the tools on the fixture world --------------------------------------------------------------------

def test_there_are_fifteen_tools_each_with_a_schema():
    assert len(TOOLS) == 15 and set(TOOLS) == set(SCHEMAS)
    assert all(s["type"] == "object" and s["additionalProperties"] is False for s in SCHEMAS.values())


@pytest.mark.parametrize("name, args, problem", [
    ("nonsense", {}, "unknown tool 'nonsense'"),
    ("get_order_details", [], "must be a JSON object, got list"),
    ("get_order_details", {}, "'order_id' is a required property"),
    ("get_order_details", {"order_id": 7}, "order_id: 7 is not of type 'string'"),
    ("get_order_details", {"order_id": "#W1000001", "x": 1}, "Additional properties are not allowed"),
    ("return_delivered_order_items", {"order_id": "#W1000002", "item_ids": "2000000011", "payment_method_id": "gift_card_3000001"},
     "item_ids: '2000000011' is not of type 'array'"),
])
def test_bad_calls_are_error_observations(mini, name, args, problem):
    result = call(mini.episode(), name, args)
    assert is_error(result) and problem in result


def test_lookups(mini):
    ep = mini.episode()
    assert call(ep, "find_user_id_by_email", {"email": "ADA.lovelace1815@example.com"}) == "ada_lovelace_1815"
    assert call(ep, "find_user_id_by_email", {"email": "nobody@example.com"}) == "Error: user not found"
    assert call(ep, "find_user_id_by_name_zip", {"first_name": "alan", "last_name": "TURING", "zip": "20002"}) == "alan_turing_1912"
    assert call(ep, "find_user_id_by_name_zip", {"first_name": "Alan", "last_name": "Turing", "zip": "10001"}) == "Error: user not found"
    assert call(ep, "get_user_details", {"user_id": "alan_turing_1912"})["email"] == "alan.turing1912@example.com"
    assert call(ep, "get_user_details", {"user_id": "x"}) == "Error: user not found"
    assert call(ep, "get_order_details", {"order_id": "#W2000001"})["status"] == "pending"
    assert call(ep, "get_order_details", {"order_id": "W2000001"}) == "Error: order not found"
    assert set(call(ep, "get_product_details", {"product_id": "1000000001"})["variants"]) == {"2000000001", "2000000002", "2000000003"}
    assert call(ep, "get_product_details", {"product_id": "2000000001"}) == "Error: product not found"
    assert call(ep, "list_all_product_types", {}) == {"Desk Lamp": "1000000002", "Water Bottle": "1000000001"}
    assert call(ep, "transfer_to_human_agents", {"summary": "wants a refund to cash"}) == "Transfer successful"
    assert ep.changed() == {"users": {}, "orders": {}}


@pytest.mark.parametrize("expression, value", [("20.5 + 80", "100.5"), ("10 / 3", "3.33"), ("(1 + 2) * 3", "9.0"),
                                               ("1 / 0", "Error: division by zero"),
                                               ("__import__('os')", "Error: invalid characters in expression"),
                                               ("2 ** 3", "8.0")])
def test_calculate_is_tau_bench_rounding_over_the_safe_calculator(mini, expression, value):
    assert call(mini.episode(), "calculate", {"expression": expression}) == value


def test_cancel(mini):
    ep = mini.episode()
    assert call(ep, "cancel_pending_order", {"order_id": "#W1000001", "reason": "because"}) == "Error: invalid reason"
    assert call(ep, "cancel_pending_order", {"order_id": "#W1000002", "reason": "no longer needed"}) == \
        "Error: non-pending order cannot be cancelled"
    assert call(ep, "cancel_pending_order", {"order_id": "#W0", "reason": "no longer needed"}) == "Error: order not found"
    order = call(ep, "cancel_pending_order", {"order_id": "#W1000001", "reason": "ordered by mistake"})
    assert order["status"] == "cancelled" and order["cancel_reason"] == "ordered by mistake"
    assert order["payment_history"][-1] == {"transaction_type": "refund", "amount": 20.5, "payment_method_id": "gift_card_3000001"}
    assert ep.read_user("ada_lovelace_1815")["payment_methods"]["gift_card_3000001"]["balance"] == 120.5  # gift card: at once
    assert call(ep, "cancel_pending_order", {"order_id": "#W1000001", "reason": "ordered by mistake"}) == \
        "Error: non-pending order cannot be cancelled"


ADDRESS = {"address1": "9 Engine St", "address2": "Apt 2", "city": "London", "state": "LD", "country": "UK", "zip": "00009"}


def test_addresses(mini):
    ep = mini.episode()
    assert call(ep, "modify_pending_order_address", {"order_id": "#W1000001", **ADDRESS})["address"] == ADDRESS
    assert call(ep, "modify_pending_order_address", {"order_id": "#W1000003", **ADDRESS}) == \
        "Error: non-pending order cannot be modified"
    assert call(ep, "modify_user_address", {"user_id": "ada_lovelace_1815", **ADDRESS})["address"] == ADDRESS
    assert call(ep, "modify_user_address", {"user_id": "nobody", **ADDRESS}) == "Error: user not found"
    assert ep.read_order("#W1000002")["address"] != ADDRESS  # the user's address is not the orders'


def test_modify_payment(mini):
    ep = mini.episode()
    args = {"order_id": "#W2000001"}
    assert call(ep, "modify_pending_order_payment", {**args, "payment_method_id": "paypal_3000003"}) == \
        "Error: payment method not found"  # Ada's, not Alan's
    assert call(ep, "modify_pending_order_payment", {**args, "payment_method_id": "credit_card_4000001"}) == \
        "Error: the new payment method should be different from the current one"
    assert call(ep, "modify_pending_order_payment", {**args, "payment_method_id": "gift_card_4000002"}) == \
        "Error: insufficient gift card balance to pay for the order"
    order = call(ep, "modify_pending_order_payment", {"order_id": "#W1000001", "payment_method_id": "credit_card_3000002"})
    assert order["status"] == "pending" and order["payment_history"][1:] == [
        {"transaction_type": "payment", "amount": 20.5, "payment_method_id": "credit_card_3000002"},
        {"transaction_type": "refund", "amount": 20.5, "payment_method_id": "gift_card_3000001"}]
    assert ep.read_user("ada_lovelace_1815")["payment_methods"]["gift_card_3000001"]["balance"] == 120.5
    assert call(ep, "modify_pending_order_payment", {"order_id": "#W1000001", "payment_method_id": "paypal_3000003"}) == \
        "Error: there should be exactly one payment for a pending order"


def test_modify_items_keeps_the_product_and_the_count(mini):
    ep = mini.episode()
    base = {"order_id": "#W1000001", "payment_method_id": "gift_card_3000001"}
    assert call(ep, "modify_pending_order_items", {**base, "item_ids": ["2000000011"], "new_item_ids": ["2000000012"]}) == \
        "Error: 2000000011 not found"
    assert call(ep, "modify_pending_order_items", {**base, "item_ids": ["2000000001"], "new_item_ids": []}) == \
        "Error: the number of items to be exchanged should match"
    assert call(ep, "modify_pending_order_items", {**base, "item_ids": ["2000000001"], "new_item_ids": ["2000000011"]}) == \
        "Error: new item 2000000011 not found or available"  # a desk lamp for a water bottle
    assert call(ep, "modify_pending_order_items", {**base, "item_ids": ["2000000001"], "new_item_ids": ["2000000003"]}) == \
        "Error: new item 2000000003 not found or available"  # unavailable
    order = call(ep, "modify_pending_order_items", {**base, "item_ids": ["2000000001"], "new_item_ids": ["2000000002"]})
    assert order["status"] == "pending (item modified)"
    assert order["items"] == [{"name": "Water Bottle", "product_id": "1000000001", "item_id": "2000000002", "price": 25.0,
                               "options": {"capacity": "1000ml", "color": "blue"}}]
    assert order["payment_history"][-1] == {"transaction_type": "payment", "amount": 4.5, "payment_method_id": "gift_card_3000001"}
    assert ep.read_user("ada_lovelace_1815")["payment_methods"]["gift_card_3000001"]["balance"] == 95.5
    assert call(ep, "modify_pending_order_items", {**base, "item_ids": ["2000000002"], "new_item_ids": ["2000000001"]}) == \
        "Error: non-pending order cannot be modified"  # only once


def test_modify_items_gift_card_must_cover_the_difference(mini):
    ep = mini.episode()
    ep.write_user("ada_lovelace_1815")["payment_methods"]["gift_card_3000001"]["balance"] = 1
    assert call(ep, "modify_pending_order_items", {"order_id": "#W1000001", "item_ids": ["2000000001"], "new_item_ids": ["2000000002"],
                                                   "payment_method_id": "gift_card_3000001"}) == \
        "Error: insufficient gift card balance to pay for the new item"


def test_return(mini):
    ep = mini.episode()
    base = {"order_id": "#W1000002", "item_ids": ["2000000011"]}
    assert call(ep, "return_delivered_order_items", {**base, "payment_method_id": "paypal_3000003"}) == \
        "Error: payment method should be either the original payment method or a gift card"
    assert call(ep, "return_delivered_order_items", {**base, "payment_method_id": "gift_card_4000002"}) == \
        "Error: payment method not found"  # Alan's gift card
    assert call(ep, "return_delivered_order_items", {"order_id": "#W1000001", "item_ids": ["2000000001"],
                                                     "payment_method_id": "gift_card_3000001"}) == \
        "Error: non-delivered order cannot be returned"
    assert call(ep, "return_delivered_order_items", {**base, "item_ids": ["2000000011", "2000000011"],
                                                     "payment_method_id": "gift_card_3000001"}) == "Error: 2000000011 not found"
    order = call(ep, "return_delivered_order_items", {**base, "payment_method_id": "credit_card_3000002"})
    assert (order["status"], order["return_items"], order["return_payment_method_id"]) == \
        ("return requested", ["2000000011"], "credit_card_3000002")


def test_exchange(mini):
    ep = mini.episode()
    base = {"order_id": "#W1000002", "payment_method_id": "paypal_3000003"}
    assert call(ep, "exchange_delivered_order_items", {**base, "item_ids": ["2000000001"], "new_item_ids": ["2000000012"]}) == \
        "Error: new item 2000000012 not found or available"
    assert call(ep, "exchange_delivered_order_items", {**base, "order_id": "#W1000003", "item_ids": ["2000000012"],
                                                       "new_item_ids": ["2000000011"]}) == "Error: non-delivered order cannot be exchanged"
    order = call(ep, "exchange_delivered_order_items", {**base, "item_ids": ["2000000011", "2000000001"],
                                                        "new_item_ids": ["2000000012", "2000000002"]})
    assert order["status"] == "exchange requested" and order["exchange_price_difference"] == -5.5
    assert order["exchange_items"] == ["2000000001", "2000000011"] and order["exchange_new_items"] == ["2000000002", "2000000012"]
    assert order["items"][0]["item_id"] == "2000000001"  # no new order, items unchanged until returned


def test_the_log_records_every_call_and_message(mini):
    ep = mini.episode()
    ep.say_user("hi")
    ep.call("get_order_details", {"order_id": "#W0"})
    ep.say_agent("Not found.")
    assert [e["kind"] for e in ep.log] == ["user", "tool_call", "tool_result", "agent"]
    assert ep.log[2] == {"kind": "tool_result", "name": "get_order_details", "result": "Error: order not found"}


def test_bound_tools_take_json_text_and_return_observations(mini):
    ep = mini.episode()
    tools = bind(ep)
    assert set(tools) == set(TOOLS)
    assert json.loads(tools["get_order_details"]('{"order_id": "#W1000001"}'))["status"] == "pending"
    assert tools["get_order_details"]("{order}").startswith("Error: the tool input is not JSON")
    assert tools["list_all_product_types"]("") == render({"Desk Lamp": "1000000002", "Water Bottle": "1000000001"})
    assert [e["kind"] for e in ep.log] == ["tool_call", "tool_result"] * 3


def test_the_spec_tools_load_unbound_and_say_so():
    import ltlagent
    from ltlagent.runtime.tools import ToolBox

    spec = ltlagent.load(REPO / "specs" / "retail.yaml")
    unbound = ToolBox.for_spec(spec).call("get_order_details", '{"order_id": "#W1000001"}')
    assert not unbound.ok and "needs a retail episode" in unbound.text
    box = ToolBox.for_spec(spec, extra=bind(World.load(MINI).episode()))
    assert json.loads(box.call("get_order_details", '{"order_id": "#W1000001"}').text)["user_id"] == "ada_lovelace_1815"


@given(st.lists(st.tuples(st.sampled_from(sorted(TOOLS)), st.dictionaries(
    st.sampled_from(["order_id", "user_id", "item_ids", "new_item_ids", "payment_method_id", "reason", "email", "x"]),
    st.one_of(st.sampled_from(["#W1000001", "#W1000002", "#W2000001", "ada_lovelace_1815", "gift_card_3000001",
                               "no longer needed", "2000000001"]), st.lists(st.sampled_from(["2000000001", "2000000002"]),
                                                                            max_size=2), st.integers())),
                          ), max_size=8))
@settings(deadline=None)  # a loaded machine: hundreds of ms per example
def test_any_call_sequence_gives_json_results_and_never_raises(calls):
    world = World.load(MINI)
    episode = world.episode()
    for name, args in calls:
        result = episode.call(name, args)
        assert isinstance(result, (dict, str)) and json.loads(json.dumps(result)) == result
    assert db_equal(world.episode(), world.episode())


# --- replay and diffs ---------------------------------------------------------------------------------

def test_replay_of_the_fixture_tasks(mini):
    tasks = load_tasks(MINI / "tasks.json")
    cancelled = expected(tasks[0], mini)
    assert db_diff(cancelled, mini.episode()) == ["orders/#W1000001/cancel_reason", "orders/#W1000001/payment_history",
                                                  "orders/#W1000001/status",
                                                  "users/ada_lovelace_1815/payment_methods/gift_card_3000001/balance"]
    assert db_equal(cancelled, expected(tasks[0], mini)) and not db_equal(cancelled, expected(tasks[1], mini))
    assert db_equal(cancelled.snapshot(), cancelled) and db_diff(cancelled, mini.episode().snapshot()) == \
        db_diff(cancelled, mini.episode())


def test_db_diff_treats_equal_numbers_as_equal_and_reports_missing_keys():
    a = {"users": {}, "orders": {"#W1": {"amount": 5, "x": 1}}, "products": {}}
    b = {"users": {}, "orders": {"#W1": {"amount": 5.0}}, "products": {}}
    assert db_diff(a, b) == ["orders/#W1/x"]
    assert db_diff({"orders": {"#W1": {"flag": True}}}, {"orders": {"#W1": {"flag": 1}}}) == ["orders/#W1/flag"]


def test_a_malformed_task_file_is_a_clear_error(tmp_path):
    path = tmp_path / "tasks.json"
    path.write_text(json.dumps([{"user_id": "u", "instruction": "i"}]), encoding="utf-8")
    with pytest.raises(WorldError, match=r"task 0: malformed record \(KeyError"):
        load_tasks(path)


# The ground truths' refused calls (τ-bench keeps them: attempts the tools refuse, changing nothing):
# lookups of wrong ids, a user's mistaken zip codes and emails, returns to PayPal where the policy
# allows only the original method or a gift card (12, 13), an exchange of a pending order (64).
REFUSED_CHANGES = {12: ("return_delivered_order_items", "payment method should be either the original"),
                   13: ("return_delivered_order_items", "payment method should be either the original"),
                   64: ("exchange_delivered_order_items", "non-delivered order cannot be exchanged")}


@needs_tau
def test_all_80_ground_truths_replay_and_change_the_database_as_expected(tau, tau_tasks):
    assert len(tau_tasks) == 80
    refused_changes = {}
    for task in tau_tasks:
        episode, results = replay(task.actions, tau)
        for action, result in zip(task.actions, results):
            assert isinstance(result, (dict, str)), (task.index, action)
            if is_error(result) and action.name in MUTATING:
                refused_changes[task.index] = (action.name, result)
            elif is_error(result):
                assert result.endswith("not found"), (task.index, action, result)
        succeeded = [a for a, r in zip(task.actions, results) if a.name in MUTATING and not is_error(r)]
        changed = db_diff(episode, tau.episode())
        assert bool(changed) == bool(succeeded), (task.index, changed)
        touched = {f"orders/{a.kwargs['order_id']}" if "order_id" in a.kwargs else f"users/{a.kwargs['user_id']}" for a in succeeded}
        owners = {f"users/{tau.orders[a.kwargs['order_id']]['user_id']}" for a in succeeded if "order_id" in a.kwargs}
        assert all(any(p.startswith(t + "/") for t in touched | owners) for p in changed), (task.index, changed)
    assert {i: name for i, (name, _) in refused_changes.items()} == {i: n for i, (n, _) in REFUSED_CHANGES.items()}
    assert all(REFUSED_CHANGES[i][1] in result for i, (_, result) in refused_changes.items())


@needs_tau
def test_real_tools_on_a_ground_truth_exchange(tau, tau_tasks):
    ep = tau.episode()
    task = tau_tasks[0]
    assert call(ep, "find_user_id_by_name_zip", task.actions[0].kwargs) == "yusuf_rossi_9620"
    assert call(ep, "get_order_details", {"order_id": "#W2378156"})["status"] == "delivered"
    exchanged = call(ep, "exchange_delivered_order_items", task.actions[-1].kwargs)
    assert exchanged["status"] == "exchange requested" and exchanged["exchange_new_items"] == ["7706410293", "7747408585"]
    assert call(ep, "exchange_delivered_order_items", task.actions[-1].kwargs) == "Error: non-delivered order cannot be exchanged"
    assert db_equal(ep, expected(task, tau))


@needs_tau
def test_real_tools_status_rules_hold_on_every_order(tau):
    """Cancel succeeds exactly on the pending orders, return of the first item to the original method
    exactly on the delivered ones (each on a fresh episode)."""
    for order_id, order in list(tau.orders.items())[:200]:
        cancelled = call(tau.episode(), "cancel_pending_order", {"order_id": order_id, "reason": "no longer needed"})
        assert is_error(cancelled) == (order["status"] != "pending"), order_id
        returned = call(tau.episode(), "return_delivered_order_items", {
            "order_id": order_id, "item_ids": [order["items"][0]["item_id"]],
            "payment_method_id": order["payment_history"][0]["payment_method_id"]})
        assert is_error(returned) == (order["status"] != "delivered"), order_id

"""The 15 tools of the retail world, with τ-bench's semantics, over an ``Episode``.

``call(episode, name, args)`` validates ``args`` (a dict) against ``SCHEMAS[name]`` and runs the tool.
Results are JSON values: a record (a deep copy, never the shared one), a dict, or a string; a refused
call is a string starting with ``"Error: "`` (unknown tool, bad arguments, a missing record, a status
that does not allow the action, ...). Nothing here raises to the caller.

Effects (as in τ-bench's retail tools): ``cancel_pending_order`` sets ``cancelled`` and
``cancel_reason`` and appends one refund per payment (gift cards are credited at once);
``modify_pending_order_items`` swaps items within their products, records the price difference as a
payment or refund on the given method (gift cards debited/credited) and sets
``pending (item modified)``; ``modify_pending_order_payment`` appends the new payment and the refund of
the old one (gift card balances adjusted); ``return_delivered_order_items`` sets ``return requested``
with ``return_items`` and ``return_payment_method_id``; ``exchange_delivered_order_items`` sets
``exchange requested`` with the exchange fields; the address tools replace the address.
"""
from __future__ import annotations

import copy
from typing import Callable

import jsonschema

from ..tools.calculator import CalculatorError, evaluate
from .world import Episode

CANCEL_REASONS = ("no longer needed", "ordered by mistake")
CALC_CHARACTERS = set("0123456789+-*/(). ")

_STR = {"type": "string"}
_IDS = {"type": "array", "items": {"type": "string"}}
_ADDRESS = {k: _STR for k in ("address1", "address2", "city", "state", "country", "zip")}


def _schema(**properties) -> dict:
    return {"type": "object", "properties": properties, "required": list(properties),
            "additionalProperties": False}


SCHEMAS: dict[str, dict] = {
    "find_user_id_by_email": _schema(email=_STR),
    "find_user_id_by_name_zip": _schema(first_name=_STR, last_name=_STR, zip=_STR),
    "get_user_details": _schema(user_id=_STR),
    "get_order_details": _schema(order_id=_STR),
    "get_product_details": _schema(product_id=_STR),
    "list_all_product_types": _schema(),
    "calculate": _schema(expression=_STR),
    "cancel_pending_order": _schema(order_id=_STR, reason=_STR),
    "modify_pending_order_address": _schema(order_id=_STR, **_ADDRESS),
    "modify_pending_order_items": _schema(order_id=_STR, item_ids=_IDS, new_item_ids=_IDS, payment_method_id=_STR),
    "modify_pending_order_payment": _schema(order_id=_STR, payment_method_id=_STR),
    "modify_user_address": _schema(user_id=_STR, **_ADDRESS),
    "return_delivered_order_items": _schema(order_id=_STR, item_ids=_IDS, payment_method_id=_STR),
    "exchange_delivered_order_items": _schema(order_id=_STR, item_ids=_IDS, new_item_ids=_IDS,
                                              payment_method_id=_STR),
    "transfer_to_human_agents": _schema(summary=_STR),
}

#: The tools that change the database (a "consequential action" in the policy's words).
MUTATING = frozenset({"cancel_pending_order", "modify_pending_order_address", "modify_pending_order_items",
                      "modify_pending_order_payment", "modify_user_address", "return_delivered_order_items",
                      "exchange_delivered_order_items"})
#: The tools that authenticate a user.
AUTHENTICATING = frozenset({"find_user_id_by_email", "find_user_id_by_name_zip"})


def call(episode: Episode, name: str, args) -> object:
    """Run tool ``name`` with ``args`` on ``episode`` (no logging: ``Episode.call`` logs). Returns the
    tool's JSON result, or an ``"Error: ..."`` string for an unknown tool, arguments that are not a JSON
    object matching the tool's schema, or a call the tool refuses. Never raises."""
    if name not in TOOLS:
        return f"Error: unknown tool {name!r} (tools: {', '.join(TOOLS)})"
    problem = argument_error(name, args)
    if problem:
        return problem
    try:
        return TOOLS[name](episode, **args)
    except Exception as err:  # noqa: BLE001 - a bug here must still be an observation, not a traceback
        return f"Error: {name} failed: {type(err).__name__}: {err}"


def argument_error(name: str, args) -> str:
    """``""`` when ``args`` matches ``SCHEMAS[name]``, else an ``"Error: ..."`` line saying what is wrong."""
    if not isinstance(args, dict):
        return f"Error: arguments of {name} must be a JSON object, got {type(args).__name__}"
    errors = sorted(jsonschema.Draft202012Validator(SCHEMAS[name]).iter_errors(args), key=lambda e: list(e.path))
    if not errors:
        return ""
    first = errors[0]
    where = "/".join(str(p) for p in first.absolute_path)
    return f"Error: invalid arguments for {name}: {(where + ': ') if where else ''}{first.message}"


# -- reading -----------------------------------------------------------------------------------------

def find_user_id_by_email(episode: Episode, email: str) -> str:
    """The id of the user with this email (case-insensitive)."""
    wanted = email.strip().lower()
    for user_id in episode.user_ids():
        if episode.read_user(user_id)["email"].lower() == wanted:
            return user_id
    return "Error: user not found"


def find_user_id_by_name_zip(episode: Episode, first_name: str, last_name: str, zip: str) -> str:
    """The id of the user with this first name, last name (case-insensitive) and zip code."""
    first, last = first_name.strip().lower(), last_name.strip().lower()
    for user_id in episode.user_ids():
        user = episode.read_user(user_id)
        if (user["name"]["first_name"].lower(), user["name"]["last_name"].lower(),
                user["address"]["zip"]) == (first, last, zip.strip()):
            return user_id
    return "Error: user not found"


def get_user_details(episode: Episode, user_id: str):
    """The user's record: name, address, email, payment methods, order ids."""
    user = episode.read_user(user_id)
    return copy.deepcopy(user) if user is not None else "Error: user not found"


def get_order_details(episode: Episode, order_id: str):
    """The order's record: user, address, items, fulfillments, status, payment history."""
    order = episode.read_order(order_id)
    return copy.deepcopy(order) if order is not None else "Error: order not found"


def get_product_details(episode: Episode, product_id: str):
    """The product's record: name, id and variants (item id to options, availability, price)."""
    product = episode.read_product(product_id)
    return copy.deepcopy(product) if product is not None else "Error: product not found"


def list_all_product_types(episode: Episode) -> dict:
    """Product name to product id, sorted by name."""
    return dict(sorted((p["name"], p["product_id"]) for p in episode.world.products.values()))


def calculate(episode: Episode, expression: str) -> str:
    """The value of an arithmetic expression (digits, ``+ - * / ( ) .`` and spaces only), rounded to 2
    decimals as τ-bench does, evaluated by the repository's safe calculator (never ``eval``)."""
    if not set(expression) <= CALC_CHARACTERS:
        return "Error: invalid characters in expression"
    try:
        return str(round(float(evaluate(expression)), 2))
    except CalculatorError as err:
        return f"Error: {err}"


def transfer_to_human_agents(episode: Episode, summary: str) -> str:
    """Hand the conversation to a human agent (no database change)."""
    return "Transfer successful"


# -- changing ----------------------------------------------------------------------------------------

def cancel_pending_order(episode: Episode, order_id: str, reason: str):
    """Cancel a ``pending`` order for one of the two allowed reasons, refunding every payment."""
    order = _order_in(episode, order_id, "pending", "cancelled")
    if isinstance(order, str):
        return order
    if reason not in CANCEL_REASONS:
        return "Error: invalid reason"
    order = episode.write_order(order_id)
    user = episode.write_user(order["user_id"])
    refunds = []
    for payment in order["payment_history"]:
        method_id = payment["payment_method_id"]
        refunds.append({"transaction_type": "refund", "amount": payment["amount"], "payment_method_id": method_id})
        if "gift_card" in method_id and method_id in user["payment_methods"]:
            _credit(user["payment_methods"][method_id], payment["amount"])
    order["status"] = "cancelled"
    order["cancel_reason"] = reason
    order["payment_history"].extend(refunds)
    return copy.deepcopy(order)


def modify_pending_order_address(episode: Episode, order_id: str, address1: str, address2: str, city: str,
                                 state: str, country: str, zip: str):
    """Replace a ``pending`` order's shipping address."""
    order = _order_in(episode, order_id, "pending", "modified")
    if isinstance(order, str):
        return order
    order = episode.write_order(order_id)
    order["address"] = _address(address1, address2, city, state, country, zip)
    return copy.deepcopy(order)


def modify_user_address(episode: Episode, user_id: str, address1: str, address2: str, city: str, state: str,
                        country: str, zip: str):
    """Replace a user's default address."""
    if episode.read_user(user_id) is None:
        return "Error: user not found"
    user = episode.write_user(user_id)
    user["address"] = _address(address1, address2, city, state, country, zip)
    return copy.deepcopy(user)


def modify_pending_order_payment(episode: Episode, order_id: str, payment_method_id: str):
    """Pay a ``pending`` order (paid once) with another of the user's payment methods."""
    order = _order_in(episode, order_id, "pending", "modified")
    if isinstance(order, str):
        return order
    methods = episode.read_user(order["user_id"])["payment_methods"]
    if payment_method_id not in methods:
        return "Error: payment method not found"
    history = order["payment_history"]
    if len(history) != 1 or history[0]["transaction_type"] != "payment":
        return "Error: there should be exactly one payment for a pending order"
    old_id, amount = history[0]["payment_method_id"], history[0]["amount"]
    if old_id == payment_method_id:
        return "Error: the new payment method should be different from the current one"
    if methods[payment_method_id]["source"] == "gift_card" and methods[payment_method_id]["balance"] < amount:
        return "Error: insufficient gift card balance to pay for the order"
    order, user = episode.write_order(order_id), episode.write_user(order["user_id"])
    order["payment_history"].extend([
        {"transaction_type": "payment", "amount": amount, "payment_method_id": payment_method_id},
        {"transaction_type": "refund", "amount": amount, "payment_method_id": old_id}])
    new, old = user["payment_methods"][payment_method_id], user["payment_methods"].get(old_id)
    if new["source"] == "gift_card":
        _credit(new, -amount)
    if old is not None and old["source"] == "gift_card":
        _credit(old, amount)
    return copy.deepcopy(order)


def modify_pending_order_items(episode: Episode, order_id: str, item_ids: list, new_item_ids: list,
                               payment_method_id: str):
    """Swap items of a ``pending`` order for other available variants of the same products; the price
    difference is paid with (or refunded to) ``payment_method_id``."""
    checked = _swap(episode, order_id, "pending", "modified", item_ids, new_item_ids, payment_method_id, "the new item")
    if isinstance(checked, str):
        return checked
    order, priced, method = checked
    order, user = episode.write_order(order_id), episode.write_user(order["user_id"])
    order["payment_history"].append({"transaction_type": "payment" if priced > 0 else "refund",
                                     "amount": abs(priced), "payment_method_id": payment_method_id})
    if method["source"] == "gift_card":
        _credit(user["payment_methods"][payment_method_id], -priced)
    for item_id, new_item_id in zip(item_ids, new_item_ids):
        item = next(i for i in order["items"] if i["item_id"] == item_id)
        variant = episode.read_product(item["product_id"])["variants"][new_item_id]
        item.update(item_id=new_item_id, price=variant["price"], options=copy.deepcopy(variant["options"]))
    order["status"] = "pending (item modified)"
    return copy.deepcopy(order)


def return_delivered_order_items(episode: Episode, order_id: str, item_ids: list, payment_method_id: str):
    """Request the return of items of a ``delivered`` order, refunded to the original payment method or
    a gift card of the user."""
    order = _order_in(episode, order_id, "delivered", "returned")
    if isinstance(order, str):
        return order
    if payment_method_id not in episode.read_user(order["user_id"])["payment_methods"]:
        return "Error: payment method not found"
    if "gift_card" not in payment_method_id and payment_method_id != order["payment_history"][0]["payment_method_id"]:
        return "Error: payment method should be either the original payment method or a gift card"
    missing = _missing_item(order, item_ids)
    if missing:
        return missing
    order = episode.write_order(order_id)
    order["status"] = "return requested"
    order["return_items"] = sorted(item_ids)
    order["return_payment_method_id"] = payment_method_id
    return copy.deepcopy(order)


def exchange_delivered_order_items(episode: Episode, order_id: str, item_ids: list, new_item_ids: list,
                                   payment_method_id: str):
    """Request the exchange of items of a ``delivered`` order for available variants of the same
    products; the price difference is settled with ``payment_method_id``."""
    checked = _swap(episode, order_id, "delivered", "exchanged", item_ids, new_item_ids, payment_method_id,
                    "the price difference")
    if isinstance(checked, str):
        return checked
    order, priced, _ = checked
    order = episode.write_order(order_id)
    order["status"] = "exchange requested"
    order["exchange_items"] = sorted(item_ids)
    order["exchange_new_items"] = sorted(new_item_ids)
    order["exchange_payment_method_id"] = payment_method_id
    order["exchange_price_difference"] = priced
    return copy.deepcopy(order)


# -- helpers -----------------------------------------------------------------------------------------

def _address(address1, address2, city, state, country, zip) -> dict:
    return {"address1": address1, "address2": address2, "city": city, "state": state, "country": country,
            "zip": zip}


def _credit(method: dict, amount: float) -> None:
    method["balance"] = round(method["balance"] + amount, 2)


def _missing_item(order: dict, item_ids: list) -> str:
    """``"Error: ID not found"`` for the first id listed more often than the order holds it, else ``""``."""
    held = [item["item_id"] for item in order["items"]]
    return next((f"Error: {i} not found" for i in item_ids if item_ids.count(i) > held.count(i)), "")


def _order_in(episode: Episode, order_id: str, status: str, verb: str):
    """The order when it exists with ``status``, else τ-bench's error (``verb``: what cannot be done)."""
    order = episode.read_order(order_id)
    if order is None:
        return "Error: order not found"
    if order["status"] != status:
        return f"Error: non-{status} order cannot be {verb}"
    return order


def _swap(episode: Episode, order_id: str, status: str, verb: str, item_ids: list, new_item_ids: list,
          payment_method_id: str, paying_for: str):
    """``(order, price difference, payment method)`` when the order exists, has ``status``, the items
    swap as ``_price_difference`` requires and the payment method is the user's and covers the
    difference if a gift card; else the ``"Error: ..."`` string τ-bench gives (``verb`` and
    ``paying_for`` complete its messages)."""
    order = _order_in(episode, order_id, status, verb)
    if isinstance(order, str):
        return order
    priced = _price_difference(episode, order, item_ids, new_item_ids)
    if isinstance(priced, str):
        return priced
    method = episode.read_user(order["user_id"])["payment_methods"].get(payment_method_id)
    if method is None:
        return "Error: payment method not found"
    if method["source"] == "gift_card" and method["balance"] < priced:
        return f"Error: insufficient gift card balance to pay for {paying_for}"
    return order, priced, method


def _price_difference(episode: Episode, order: dict, item_ids: list, new_item_ids: list):
    """The new items' total price minus the old ones', rounded to cents, or an ``"Error: ..."`` string
    when an item is not in the order, the lists differ in length, or a new item is not an available
    variant of the old item's product."""
    missing = _missing_item(order, item_ids)
    if missing:
        return missing
    if len(item_ids) != len(new_item_ids):
        return "Error: the number of items to be exchanged should match"
    difference = 0.0
    for item_id, new_item_id in zip(item_ids, new_item_ids):
        item = next(i for i in order["items"] if i["item_id"] == item_id)
        variants = episode.read_product(item["product_id"])["variants"]
        if new_item_id not in variants or not variants[new_item_id]["available"]:
            return f"Error: new item {new_item_id} not found or available"
        difference += variants[new_item_id]["price"] - item["price"]
    return round(difference, 2)


TOOLS: dict[str, Callable] = {
    "find_user_id_by_email": find_user_id_by_email,
    "find_user_id_by_name_zip": find_user_id_by_name_zip,
    "get_user_details": get_user_details,
    "get_order_details": get_order_details,
    "get_product_details": get_product_details,
    "list_all_product_types": list_all_product_types,
    "calculate": calculate,
    "cancel_pending_order": cancel_pending_order,
    "modify_pending_order_address": modify_pending_order_address,
    "modify_pending_order_items": modify_pending_order_items,
    "modify_pending_order_payment": modify_pending_order_payment,
    "modify_user_address": modify_user_address,
    "return_delivered_order_items": return_delivered_order_items,
    "exchange_delivered_order_items": exchange_delivered_order_items,
    "transfer_to_human_agents": transfer_to_human_agents,
}
assert set(TOOLS) == set(SCHEMAS)

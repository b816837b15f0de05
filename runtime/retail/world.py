"""The retail world's database, loaded once and shared read-only, and per-episode copy-on-write views.

A ``World`` holds the three tables of the τ-bench retail database (``users``, ``orders``, ``products``,
each a mapping from id to a JSON record). It is never written: an ``Episode`` reads through it and deep
copies a record into its own overlay the first time a tool changes it, so concurrent episodes over one
World share nothing mutable. Records handed out by ``Episode.read_*`` are the shared ones: callers that
return them to anyone must copy them (the tools do, see ``tools.py``).
"""
from __future__ import annotations

import copy
import functools
import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Iterator, Mapping, Optional

TABLES = ("users", "orders", "products")
DATA_ENV = "LTLAGENT_RETAIL_DATA"


class WorldError(ValueError):
    """A retail data folder that cannot be read: missing files or records of the wrong shape."""


@dataclass(frozen=True)
class World:
    """The database: ``users``, ``orders`` and ``products``, read-only mappings from id to record, and
    ``folder``, where it was read from (None for a world built in memory)."""

    users: Mapping[str, dict]
    orders: Mapping[str, dict]
    products: Mapping[str, dict]
    folder: Optional[Path] = None

    @classmethod
    def from_tables(cls, users: dict, orders: dict, products: dict, folder: Optional[Path] = None) -> "World":
        """A World over the given tables (deep-copied, so the caller's dicts stay its own). Raises
        WorldError when a table is not a mapping of ids to JSON objects."""
        tables = {"users": users, "orders": orders, "products": products}
        for name, table in tables.items():
            if not isinstance(table, dict) or not all(isinstance(v, dict) for v in table.values()):
                raise WorldError(f"{name}: expected a JSON object mapping ids to records")
        return cls(*(MappingProxyType(copy.deepcopy(tables[name])) for name in TABLES), folder=folder)

    @classmethod
    def load(cls, folder) -> "World":
        """The world in ``folder`` (a folder with ``db/users.json``, ``db/orders.json``,
        ``db/products.json``, or those three files directly), read once per process and cached by
        resolved path. Raises WorldError naming the missing or unreadable file."""
        return _load(Path(folder).resolve())

    def episode(self) -> "Episode":
        """A fresh episode over this world (no changes, empty event log)."""
        return Episode(self)


@functools.lru_cache(maxsize=8)
def _load(folder: Path) -> World:
    db = folder / "db" if (folder / "db").is_dir() else folder
    tables = {}
    for name in TABLES:
        path = db / f"{name}.json"
        if not path.is_file():
            raise WorldError(f"{path}: no such file (a retail world needs db/users.json, db/orders.json, "
                             f"db/products.json)")
        try:
            tables[name] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise WorldError(f"{path}: cannot read: {err}") from None
    try:
        return World.from_tables(tables["users"], tables["orders"], tables["products"], folder)
    except WorldError as err:
        raise WorldError(f"{db}: {err}") from None


def default_folder(start: Optional[Path] = None) -> Optional[Path]:
    """Where the τ-bench retail data is: ``$LTLAGENT_RETAIL_DATA``, else ``../shared/data/tau_retail``
    beside the repository that holds this file (or ``start``); None when neither exists."""
    if os.environ.get(DATA_ENV):
        folder = Path(os.environ[DATA_ENV])
        return folder if folder.is_dir() else None
    repo = start or Path(__file__).resolve().parents[2]
    folder = repo.parent / "shared" / "data" / "tau_retail"
    return folder if folder.is_dir() else None


@dataclass
class Episode:
    """One conversation's view of a World: reads go to the episode's own copy of a record when it has
    changed one, else to the shared World; ``write_user`` / ``write_order`` copy a record on first write.
    ``log`` is the conversation's event log (dicts with ``kind``: ``user``, ``agent``, ``tool_call``,
    ``tool_result``), appended by ``say_user``, ``say_agent`` and ``call``."""

    world: World
    users: dict = field(default_factory=dict)     # overlay: id -> this episode's copy
    orders: dict = field(default_factory=dict)
    log: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    # -- reading (shared records: do not mutate, copy before handing out) -----------------------------

    def read_user(self, user_id: str) -> Optional[dict]:
        """The user record (this episode's copy if changed), or None."""
        return self.users[user_id] if user_id in self.users else self.world.users.get(user_id)

    def read_order(self, order_id: str) -> Optional[dict]:
        """The order record (this episode's copy if changed), or None."""
        return self.orders[order_id] if order_id in self.orders else self.world.orders.get(order_id)

    def read_product(self, product_id: str) -> Optional[dict]:
        """The product record (products never change), or None."""
        return self.world.products.get(product_id)

    def user_ids(self) -> Iterator[str]:
        """Every user id, in the database's order."""
        return iter(self.world.users)

    # -- writing -----------------------------------------------------------------------------------

    def write_user(self, user_id: str) -> dict:
        """This episode's own copy of the user record, made on first use. Raises KeyError if none."""
        if user_id not in self.users:
            self.users[user_id] = copy.deepcopy(self.world.users[user_id])
        return self.users[user_id]

    def write_order(self, order_id: str) -> dict:
        """This episode's own copy of the order record, made on first use. Raises KeyError if none."""
        if order_id not in self.orders:
            self.orders[order_id] = copy.deepcopy(self.world.orders[order_id])
        return self.orders[order_id]

    def changed(self) -> dict:
        """The records this episode copied for writing: ``{"users": {id: record}, "orders": {...}}``
        (a copied record may still equal the original, e.g. after a refused change)."""
        return {"users": dict(self.users), "orders": dict(self.orders)}

    def snapshot(self) -> dict:
        """The whole database as this episode sees it: ``{"users", "orders", "products"}`` dicts (the
        unchanged records are the shared ones: read, don't mutate)."""
        return {"users": {**self.world.users, **self.users}, "orders": {**self.world.orders, **self.orders},
                "products": dict(self.world.products)}

    # -- the conversation --------------------------------------------------------------------------

    def say_user(self, text: str) -> None:
        """Log a user message."""
        self.log.append({"kind": "user", "text": str(text)})

    def say_agent(self, text: str) -> None:
        """Log an agent message (what the agent told the user)."""
        self.log.append({"kind": "agent", "text": str(text)})

    def call(self, name: str, args) -> object:
        """Run tool ``name`` on ``args`` (see ``tools.call``), logging the call and its result; returns
        the result (a dict, list or str; ``"Error: ..."`` strings for refused calls). Never raises."""
        from .tools import call

        with self.lock:
            self.log.append({"kind": "tool_call", "name": str(name), "args": copy.deepcopy(args)})
            result = call(self, name, args)
            self.log.append({"kind": "tool_result", "name": str(name), "result": copy.deepcopy(result)})
        return result

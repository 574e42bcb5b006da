"""The stock processor's tables as a test sets them up and checks them, with SQL on a real PostgreSQL."""

import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import asyncpg
from bench.postgres import fill_stock as fill_stock  # the one the chaos run and the bench use

from tests.support.orders import Record

STOCK_PROCESSOR = "order_service.processors.stock:processor"


def items_of(inputs: Iterable[Record]) -> dict[str, Counter[str]]:
    """Each valid input's wanted quantity per SKU, by order id."""
    wanted: dict[str, Counter[str]] = {}
    for _key, value, _headers in inputs:
        try:
            order = json.loads(value or b"")
        except ValueError:
            continue
        if not isinstance(order, dict) or "order_id" not in order:
            continue
        counts: Counter[str] = Counter()
        for item in order.get("items") or []:
            counts[item["sku"]] += item["quantity"]
        wanted[order["order_id"]] = counts
    return wanted


def scarce_stock(inputs: Iterable[Record], share: float = 0.6) -> dict[str, int]:
    """Stock for every SKU the inputs name: `share` of what they want in all, rounded down, so that
    some orders are accepted and some rejected for too little stock (order decides which)."""
    demand: Counter[str] = Counter()
    for counts in items_of(inputs).values():
        demand.update(counts)
    return {sku: int(total * share) for sku, total in demand.items()}


@dataclass(frozen=True)
class Effects:
    ledger: list[asyncpg.Record]
    stock: dict[str, int]
    inbox: list[asyncpg.Record]


async def read_effects(url: str, inbox_table: str = "order_service_inbox") -> Effects:
    conn = await asyncpg.connect(url)
    try:
        ledger = await conn.fetch("SELECT * FROM order_ledger")
        stock = {r["sku"]: r["available"] for r in await conn.fetch("SELECT sku, available FROM stock")}
        inbox = await conn.fetch(f"SELECT * FROM {inbox_table}")
    finally:
        await conn.close()
    return Effects(ledger, stock, inbox)


def assert_effects_exactly_once(
    effects: Effects, inputs: list[Record], initial: dict[str, int], outputs: Iterable[Any]
) -> None:
    """One ledger row and one inbox row per processed input; stock = initial - what was reserved;
    every published outcome matches the ledger's, and each order's outcomes are identical bytes."""
    wanted = items_of(inputs)
    per_input = Counter((r["input_topic"], r["input_partition"], r["input_offset"]) for r in effects.ledger)
    repeated = {coordinates: n for coordinates, n in per_input.items() if n > 1}
    print(f"ledger: {len(effects.ledger)} rows for {len(wanted)} valid inputs; inbox: {len(effects.inbox)}")
    assert repeated == {}, f"{len(repeated)} inputs have more than one ledger row"
    assert sorted(r["order_id"] for r in effects.ledger) == sorted(wanted), "one ledger row per valid input"
    assert len(effects.inbox) == len(wanted), "one inbox row per valid input"

    published: dict[str, set[bytes]] = defaultdict(set)
    for record in outputs:
        published[json.loads(record.value)["order_id"]].add(record.value)
    assert set(published) == set(wanted), "an outcome published for every valid input"
    differing = [order_id for order_id, values in published.items() if len(values) > 1]
    assert differing == [], "a record processed again publishes its stored outcome, byte for byte"
    status = {r["order_id"]: r["status"] for r in effects.ledger}
    outcome = {order_id: json.loads(next(iter(values)))["status"] for order_id, values in published.items()}
    assert outcome == status, "the published outcome is the one the ledger recorded"
    reserved: Counter[str] = Counter()
    for order_id, counts in wanted.items():
        if status[order_id] == "processed":
            reserved.update(counts)
    expected = {sku: initial[sku] - reserved[sku] for sku in initial}
    assert effects.stock == expected, "stock: initial - reserved = final"
    assert min(effects.stock.values()) >= 0
    accepted = sum(1 for s in status.values() if s == "processed")
    print(
        f"stock: {accepted} orders reserved {sum(reserved.values())} units, {len(status) - accepted} rejected"
    )
    assert 0 < accepted < len(status), "some orders are accepted and some rejected for stock"

"""The stock processor: the order rules, then each item's quantity reserved in `stock`, and one row
per processed input appended to `order_ledger`, in the record's effects transaction.

    ORDER_SERVICE_PROCESSING__PROCESSOR=order_service.processors.stock:processor
    ORDER_SERVICE_EFFECTS__DATABASE_URL=postgresql://user:password@host:5432/orders

An unknown SKU, or too little stock of one, rejects the order (a normal `rejected` outcome) and
reserves nothing. Filling `stock` is the operator's job (README, "Write your own processor").

An accepted order costs one statement: the reservation and the ledger row are one INSERT with the
UPDATE in a WITH clause: two statements would cost a second round trip per order.
"""

import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

from kafka_delivery.effects import coordinates, transaction
from order_service.domain.events import OrderCreated, OrderProcessed
from order_service.domain.rules import OrderPolicy, process_order
from order_service.processing import Process, ProcessorContext
from order_service.settings import ENV_PREFIX

TABLES = """
CREATE TABLE IF NOT EXISTS stock (
    sku text PRIMARY KEY,
    available integer NOT NULL
);
CREATE TABLE IF NOT EXISTS order_ledger (
    order_id text NOT NULL,
    status text NOT NULL,
    input_topic text NOT NULL,
    input_partition integer NOT NULL,
    input_offset bigint NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
"""
# Reserve every item whose stock suffices, and append the ledger row: "processed" when every item
# was reserved. Otherwise the caller gives back what was reserved (`GIVE_BACK`).
RESERVE = """
WITH reserved AS (
    UPDATE stock SET available = stock.available - wanted.quantity
    FROM unnest($1::text[], $2::integer[]) AS wanted(sku, quantity)
    WHERE stock.sku = wanted.sku AND stock.available >= wanted.quantity
    RETURNING stock.sku
), outcome AS (
    SELECT count(*) = cardinality($1::text[]) AS complete, array_agg(sku) AS skus FROM reserved
)
INSERT INTO order_ledger (order_id, status, input_topic, input_partition, input_offset)
SELECT $3, CASE WHEN complete THEN 'processed' ELSE 'rejected' END, $4, $5, $6 FROM outcome
RETURNING status, (SELECT skus FROM outcome)
"""
GIVE_BACK = """
UPDATE stock SET available = stock.available + wanted.quantity
FROM unnest($1::text[], $2::integer[]) AS wanted(sku, quantity)
WHERE stock.sku = wanted.sku AND stock.sku = ANY($3::text[])
"""
LEDGER = """
INSERT INTO order_ledger (order_id, status, input_topic, input_partition, input_offset)
VALUES ($1, $2, $3, $4, $5)
"""


@contextlib.asynccontextmanager
async def processor(context: ProcessorContext) -> AsyncIterator[Process]:
    """Create the tables when missing, then process orders against them."""
    if context.database is None:
        raise RuntimeError(f"the stock processor needs {ENV_PREFIX}EFFECTS__DATABASE_URL")
    async with context.database.acquire() as conn, conn.transaction():
        # Two instances starting together: the second waits instead of failing on the catalog.
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('order_service.processors.stock'))")
        await conn.execute(TABLES)
    yield reserve_stock


async def reserve_stock(order: OrderCreated, policy: OrderPolicy) -> OrderProcessed:
    """The order rules' outcome, then the stock reservation; one ledger row either way."""
    decided = process_order(order, policy)
    conn = transaction()
    _group, topic, partition, offset = coordinates()
    if decided.status == "rejected":
        await conn.execute(LEDGER, decided.order_id, "rejected", topic, partition, offset)
        return decided
    wanted: Counter[str] = Counter()
    for item in order.items or ():
        wanted[item.sku] += item.quantity
    skus, quantities = list(wanted), list(wanted.values())
    status, reserved = await conn.fetchrow(
        RESERVE, skus, quantities, order.order_id, topic, partition, offset
    )
    if status == "processed":
        return decided
    if reserved:
        await conn.execute(GIVE_BACK, skus, quantities, reserved)
    reason = await _shortage(conn, wanted)
    return decided.model_copy(update={"status": "rejected", "reason": reason})


async def _shortage(conn: Any, wanted: Counter[str]) -> str:
    """Why `wanted` cannot be reserved: the first unknown SKU, or the first one short of stock."""
    rows = await conn.fetch("SELECT sku, available FROM stock WHERE sku = ANY($1::text[])", list(wanted))
    available = {row["sku"]: row["available"] for row in rows}
    for sku, quantity in wanted.items():
        if sku not in available:
            return f"unknown SKU {sku}"
        if available[sku] < quantity:
            return f"not enough stock of {sku}: {available[sku]} available, {quantity} wanted"
    return "stock changed while reserving"  # pragma: no cover - the rows are locked by this transaction

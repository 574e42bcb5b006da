"""The database effects of a chaos run with the stock processor (scenarios 7 and 8): the stock it
starts from, and the SQL check after the run, besides verify's check of the topics.

    ORDER_SERVICE_PROCESSING__PROCESSOR=order_service.processors.stock:processor

reserves each item's quantity in `stock` and appends one row per processed input to
`order_ledger`; the service's inbox (`order_service_inbox`) holds one row per processed input with
the outcome it published. The check, per input (partition, offset), on the topics as verify reads
them (read_committed) and the tables of the run's own database:

- one ledger row and one inbox row per valid input, none for anything else;
- stock: initial - what the accepted inputs wanted = final, for every SKU, none negative;
- every published outcome (duplicates in at-least-once included) has the ledger's status and the
  inbox's bytes.

Also what scenario 8 aims by: a backend of an instance (by its `application_name`) running COMMIT.
"""

import asyncio
import json
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Final

import asyncpg

from bench.chaos.kafka.reconcile import read_whole
from bench.chaos.producer.paced import Record, orders
from bench.chaos.result import Effects

STOCK_PROCESSOR: Final = "order_service.processors.stock:processor"
INBOX_TABLE: Final = "order_service_inbox"
# Stock is this share of what all the orders of a run want of a SKU, rounded down: the first orders
# of a SKU to come get it, the later ones are rejected for too little stock.
STOCK_SHARE: Final = 0.8
# Every this many SKUs (sorted) one gets no stock row: its orders are rejected as unknown SKUs.
UNKNOWN_SKU_EVERY: Final = 100
# The keys the paced producer gives its malformed records (bench/chaos/producer/paced.py): those are
# dead-lettered and have no effects.
MALFORMED_KEY: Final = b"-bad-"
CONNECT_TIMEOUT_S: Final = 10.0


def wanted(value: bytes | None) -> tuple[str, Counter[str]]:
    """An order's id and its quantity per SKU."""
    order = json.loads(value or b"")
    counts: Counter[str] = Counter()
    for item in order.get("items") or ():
        counts[item["sku"]] += item["quantity"]
    return str(order["order_id"]), counts


def stock_for(records: Iterable[Record]) -> dict[str, int]:
    """The stock a run starts from: STOCK_SHARE of each SKU's demand over the run's orders, every
    UNKNOWN_SKU_EVERY-th SKU left out."""
    demand: Counter[str] = Counter()
    for key, value in records:
        if MALFORMED_KEY not in key:
            demand.update(wanted(value)[1])
    skus = sorted(demand)
    return {sku: int(demand[sku] * STOCK_SHARE) for i, sku in enumerate(skus) if i % UNKNOWN_SKU_EVERY}


def run_stock(count: int, prefix: str) -> dict[str, int]:
    """The stock for the `count` orders the paced producer sends with `prefix` (they are the same
    each time: a fixed seed)."""
    return stock_for(orders(count, prefix=prefix))


async def connect(url: str) -> "asyncpg.Connection[Any]":
    return await asyncpg.connect(url, timeout=CONNECT_TIMEOUT_S)


def _header(record: Any, name: str) -> str | None:
    for key, value in record.headers or ():
        if key == name:
            return bytes(value).decode()
    return None


async def check_effects(
    url: str, *, bootstrap: str, input_topic: str, output: str, group: str, initial: dict[str, int]
) -> Effects:
    """The SQL check of a run (module docstring); never raises for what it finds."""
    inputs = await read_whole(bootstrap, input_topic)
    outputs = await read_whole(bootstrap, output)
    conn = await connect(url)
    try:
        ledger = await conn.fetch(
            "SELECT order_id, status, input_topic, input_partition, input_offset FROM order_ledger"
        )
        inbox = await conn.fetch(
            f"SELECT input_partition, input_offset, outcome FROM {INBOX_TABLE} "
            "WHERE group_id = $1 AND input_topic = $2",
            group,
            input_topic,
        )
        stock = {r["sku"]: r["available"] for r in await conn.fetch("SELECT sku, available FROM stock")}
    finally:
        await conn.close(timeout=5)
    return count_effects(input_topic, inputs, outputs, ledger, inbox, initial, stock)


Coordinates = tuple[int, int]  # partition, offset of the input topic


def count_effects(
    input_topic: str,
    inputs: list[Any],
    outputs: list[Any],
    ledger: list[Any],
    inbox: list[Any],
    initial: dict[str, int],
    stock: dict[str, int],
) -> Effects:
    """The numbers of `Effects` from the records and the rows: plain data in, plain data out."""
    valid: dict[Coordinates, tuple[str, Counter[str]]] = {
        (r.partition, r.offset): wanted(r.value) for r in inputs if MALFORMED_KEY not in (r.key or b"")
    }
    found = Effects(valid_inputs=len(valid), ledger_rows=len(ledger), inbox_rows=len(inbox), skus=len(stock))

    per_input: Counter[Coordinates] = Counter()
    status: dict[Coordinates, str] = {}
    for row in ledger:
        at = (row["input_partition"], row["input_offset"])
        if row["input_topic"] != input_topic or at not in valid or valid[at][0] != row["order_id"]:
            found.ledger_foreign += 1
            continue
        per_input[at] += 1
        status.setdefault(at, row["status"])
    found.ledger_duplicates = sum(n - 1 for n in per_input.values() if n > 1)
    found.ledger_missing = sum(1 for at in valid if at not in per_input)

    stored = {(r["input_partition"], r["input_offset"]): bytes(r["outcome"]) for r in inbox}
    found.inbox_foreign = sum(1 for at in stored if at not in valid)
    found.inbox_missing = sum(1 for at in valid if at not in stored)

    for record in outputs:
        found.outcomes_checked += 1
        partition, offset = _header(record, "input.partition"), _header(record, "input.offset")
        if _header(record, "input.topic") != input_topic or partition is None or offset is None:
            found.outcome_mismatches += 1
            continue
        at = (int(partition), int(offset))
        value = bytes(record.value or b"")
        try:
            published = json.loads(value).get("status")
        except (ValueError, AttributeError):
            published = None
        if at not in status or published != status[at] or stored.get(at) != value:
            found.outcome_mismatches += 1

    reserved: Counter[str] = Counter()
    for at, outcome in status.items():
        if outcome == "processed":
            found.accepted += 1
            reserved.update(valid[at][1])
        else:
            found.rejected += 1
    found.stock_initial = sum(initial.values())
    found.stock_reserved = sum(reserved.values())
    found.stock_final = sum(stock.values())
    found.stock_mismatched_skus = sum(
        1 for sku in initial.keys() | stock.keys() if stock.get(sku) != initial.get(sku, 0) - reserved[sku]
    )
    found.negative_skus = sum(1 for available in stock.values() if available < 0)
    return found


def logged_retries(logs: Iterable[Path]) -> dict[str, int]:
    """The batch attempts the service logged as failed because of the database ("database
    unavailable, retrying with backoff: <error>", "database still unavailable (attempt n): <error>"),
    by error type."""
    tally: Counter[str] = Counter()
    for path in logs:
        try:
            lines = path.read_text(errors="replace").splitlines()
        except OSError:
            continue
        for line in lines:
            if '"kafka_delivery.effects.batches"' not in line or "unavailable" not in line:
                continue
            try:
                message = str(json.loads(line).get("message", ""))
            except ValueError:
                continue
            if message.startswith(("database unavailable, retrying", "database still unavailable")):
                tally[message.split(": ", 1)[-1].split(":", 1)[0].strip()] += 1
    return dict(tally.most_common())


async def inbox_beyond(url: str, *, group: str, input_topic: str, committed: dict[int, int]) -> int:
    """Inbox rows of inputs at or past the group's committed offsets: effects committed in the
    database whose offsets are not committed in Kafka. Read again, they publish the stored outcome."""
    conn = await connect(url)
    try:
        partitions = list(committed)
        return int(
            await conn.fetchval(
                f"""SELECT count(*) FROM {INBOX_TABLE} i
                    JOIN unnest($3::integer[], $4::bigint[]) AS c(input_partition, committed)
                    USING (input_partition)
                    WHERE i.group_id = $1 AND i.input_topic = $2 AND i.input_offset >= c.committed""",
                group,
                input_topic,
                partitions,
                [committed[p] for p in partitions],
            )
        )
    finally:
        await conn.close(timeout=5)


async def when_committing(
    url: str, kills: dict[str, Callable[[], None]], prefer: str, *, timeout: float
) -> tuple[str, str]:
    """Poll pg_stat_activity until a backend of one of `kills`' application names runs COMMIT, and
    call its kill at once (in the same turn: the SIGKILL lands within a millisecond or two of the
    sample). `prefer`red for the first half of `timeout`, then whichever commits first; past
    `timeout`, one in an open transaction; past twice that, `prefer` anyway. The application name
    killed, and what was seen."""
    conn = await connect(url)
    began = time.monotonic()
    polls = 0
    query = (
        "SELECT application_name, state, left(query, 40) AS query, "
        "clock_timestamp() - xact_start AS open_for FROM pg_stat_activity "
        "WHERE application_name = ANY($1::text[]) AND xact_start IS NOT NULL"
    )

    def kill(row: Any, what: str) -> tuple[str, str]:
        kills[row["application_name"]]()
        return row["application_name"], what

    try:
        while True:
            rows = await conn.fetch(query, list(kills))
            polls += 1
            waited = time.monotonic() - began
            committing = [
                r for r in rows if r["state"] == "active" and r["query"].lstrip().upper().startswith("COMMIT")
            ]
            committing.sort(key=lambda r: r["application_name"] != prefer)
            if committing and (committing[0]["application_name"] == prefer or waited > timeout / 2):
                return kill(
                    committing[0],
                    f"while its backend ran COMMIT (of a transaction open {_ms(committing[0]['open_for'])}), "
                    f"seen after {waited:.1f}s, {polls} polls",
                )
            if rows and waited > timeout:
                rows = sorted(rows, key=lambda r: r["application_name"] != prefer)
                return kill(
                    rows[0],
                    f"in an open transaction ({rows[0]['state']}, {rows[0]['query'].strip()[:30]!r}): "
                    f"no COMMIT seen in {timeout:.0f}s, {polls} polls",
                )
            if waited > 2 * timeout:
                kills[prefer]()
                return prefer, f"with no transaction of any instance seen in {waited:.0f}s ({polls} polls)"
            await asyncio.sleep(0.001)
    finally:
        await conn.close(timeout=5)


def _ms(interval: Any) -> str:
    return "?" if interval is None else f"{interval.total_seconds() * 1000:.0f} ms"

"""Order records to compare the domain with its reference on: the benchmark's sample orders, the
malformed corpus, the existing tests' cases, and each field's edge values, alone and combined."""

import contextlib
import json
import random
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from bench.throughput.kafka_io import make_orders

from order_service.cli.samples import malformed_corpus

MISSING = object()

IDENTIFIERS: list[object] = [
    "o", "ord-00000001", " padded ", "\ttabbed\n", "", " ", "\u00a0", "x" * 64, "x" * 65, " " + "x" * 64,
    "\u3000wide\u2003", "zero\u200bwidth", "ordre-é", "注文-1", "🛒-1", "\u0000", '"quoted"', "back\\slash",
    "line\u2028sep", "\u007f", None, 1, 1.5, True, [], {"id": 1},
]  # fmt: skip
AMOUNTS: list[object] = [
    "1.00", "0.01", "0.1", "0.10", "1", "1.0", "1.000", "1.005", "01.00", "+1.00", " 1.00", "1.00 ",
    "1.00\n", "1e2", "1E-2", "100E-2", "1_000.00", "123456789012.34", "999999999999.99",
    "1234567890123.40", "1234567890123", "0", "0.00", "-0.00", "-0", "-1.00", "NaN", "Infinity",
    "-Infinity", "sNaN", "", "ten", "\u0661.\u0660\u0660", "1.", ".5", 1, 10, 1.5, 1.50, 10.25, 0.1, 0, -1,
    1e400, 12345678901234567, 2.675, True, None, [], {},
]  # fmt: skip
CURRENCIES: list[object] = [
    MISSING,
    None,
    "EUR",
    "USD",
    "GBP",
    "JPY",
    "eur",
    "EURO",
    "EU",
    "",
    " EUR",
    "ÉUR",
    1,
]
QUANTITIES: list[object] = [1, 2, 3, 100_000, 100_001, 0, -1, 1.0, 1.5, "2", " 2", True, 10**20, 2**64, None]
CREATED_AT: list[object] = [
    MISSING, None, "2026-01-01T00:00:00Z", "2026-01-01T00:00:00.123456+02:00", "2026-01-01T00:00:00",
    "2026-01-01", 1_700_000_000, 1.5, "yesterday", "2026-13-01T00:00:00Z", "",
]  # fmt: skip
EXTRAS: list[dict[str, object]] = [
    {},
    {"coupon": "X"},
    {"status": "hacked", "processed_at": 1},
    {"nested": {"a": [1, {"b": None}]}},
]


def present(value: object) -> object:
    """`value` without the MISSING fields of its objects, at any depth."""
    if isinstance(value, dict):
        return {k: present(v) for k, v in value.items() if v is not MISSING}
    if isinstance(value, list):
        return [present(v) for v in value]
    return value


def encode(fields: dict[str, object]) -> bytes:
    return json.dumps(present(fields), ensure_ascii=False).encode()


def item(rng: random.Random) -> object:
    shape = rng.random()
    if shape < 0.02:
        return rng.choice(["x", 1, None, []])
    fields: dict[str, object] = {
        "sku": rng.choice(IDENTIFIERS) if shape < 0.1 else f"SKU-{rng.randint(1, 9999)}",
        "quantity": rng.choice(QUANTITIES) if shape < 0.2 else rng.randint(1, 3),
        "unit_price": rng.choice(AMOUNTS) if shape < 0.3 else f"{rng.randint(0, 20_000) / 100:.2f}",
    }
    if rng.random() < 0.03:
        del fields[rng.choice(list(fields))]
    return {**fields, **rng.choice(EXTRAS)}


def combined(rng: random.Random) -> bytes:
    """An order whose fields are each, now and then, an edge value; its total often the items' sum."""
    lines: list[Any] = [item(rng) for _ in range(rng.choice([0, 1, 1, 2, 2, 3]))]
    total: object = rng.choice(AMOUNTS) if rng.random() < 0.3 else f"{rng.randint(1, 99_999) / 100:.2f}"
    if rng.random() < 0.5:
        with contextlib.suppress(KeyError, TypeError, ValueError, ArithmeticError):
            total = str(sum(Decimal(str(i["unit_price"])) * int(i["quantity"]) for i in lines))
    items: object = rng.choice([MISSING, None, [], "x", {}]) if rng.random() < 0.1 else lines
    fields: dict[str, object] = {
        "order_id": rng.choice(IDENTIFIERS) if rng.random() < 0.1 else f"o-{rng.randint(1, 10**6)}",
        "customer_id": rng.choice(IDENTIFIERS) if rng.random() < 0.1 else f"c-{rng.randint(1, 10**4)}",
        "total": total,
        "currency": rng.choice(CURRENCIES) if rng.random() < 0.5 else rng.choice(["EUR", "USD", "GBP"]),
        "items": items,
        "created_at": rng.choice(CREATED_AT) if rng.random() < 0.3 else MISSING,
    }
    if rng.random() < 0.03:
        fields[rng.choice(["order_id", "customer_id", "total"])] = MISSING
    return encode({**fields, **rng.choice(EXTRAS)})


def one_field_at_a_time() -> Iterator[bytes]:
    """A valid order with one field set to each of its edge values."""
    base: dict[str, object] = {"order_id": "o-1", "customer_id": "c-1", "total": "30.00"}
    line: dict[str, object] = {"sku": "a", "quantity": 3, "unit_price": "10.00"}
    for value in IDENTIFIERS:
        yield encode({**base, "order_id": value})
        yield encode({**base, "customer_id": value})
        yield encode({**base, "items": [{**line, "sku": value}]})
    for value in [*AMOUNTS, MISSING]:
        yield encode({**base, "total": value})
        yield encode({**base, "items": [{**line, "unit_price": value}]})
        yield encode({**base, "total": value, "items": [{**line, "unit_price": value, "quantity": 1}]})
    for value in QUANTITIES:
        yield encode({**base, "items": [{**line, "quantity": value}]})
        yield encode({**base, "total": "10.00", "items": [{**line, "quantity": value, "unit_price": "0.10"}]})
    for value in CURRENCIES:
        yield encode({**base, "currency": value})
    for value in CREATED_AT:
        yield encode({**base, "created_at": value})
    for extra in EXTRAS:
        yield encode({**base, **extra, "items": [{**line, **extra}]})
    for items in [MISSING, None, [], "x", {}, [None], [line] * 500, [line] * 501]:
        yield encode({**base, "total": "30.00" if items != [line] * 500 else "15000.00", "items": items})
    # Totals with one or two decimals against items that add up with one or two.
    for total, price, quantity in [
        ("21.00", "10.5", 2),
        ("21", "10.50", 2),
        ("21.5", "10.75", 2),
        ("0.3", "0.1", 3),
    ]:
        yield encode({**base, "total": total, "items": [{**line, "unit_price": price, "quantity": quantity}]})


def hand_written() -> list[bytes]:
    """The existing tests' cases and raw JSON that json.dumps cannot write."""
    return [
        b'{"order_id":"o","customer_id":"c","total":"1.50","coupon":"X"}',
        b'{"order_id":"o-7","customer_id":"c","total":"12.00","currency":"USD"}',
        b'{"order_id":"o-8","customer_id":"c","total":"12.00","currency":"JPY"}',
        b'{"order_id":"o-9","customer_id":"c","total":"1.00"}',
        b"{not json",
        b'{"order_id":"a","order_id":"b","customer_id":"c","total":"1.00"}',
        b'{"order_id":"\\ud800","customer_id":"c","total":"1.00"}',
        b'{"order_id":"\\u00e9\\n","customer_id":"c","total":"1.00"}',
        b'{"order_id":"o","customer_id":"c","total":"1.00","currency":"\\u0045UR"}',
        b'{"order_id":"o","customer_id":"c","total":"\\u0031.00"}',
        b'{"order_id":"o","customer_id":"c","total":1.10}',
        b'{"order_id":"o","customer_id":"c","total":1.00000000000000000001}',
        b'{"order_id":"o","customer_id":"c","total":100000000000000000000000000000}',
        b' \n{"order_id":"o","customer_id":"c","total":"1.00"}\n ',
        b'{"order_id":"o","customer_id":"c","total":"1.00"} trailing',
        b'{"order_id":"o","customer_id":"c","total":"1.00",}',
        b'\xef\xbb\xbf{"order_id":"o","customer_id":"c","total":"1.00"}',
        b"{}",
    ]


def records() -> list[bytes | None]:
    """Every record of the corpus, in a fixed order."""
    rng = random.Random(28)
    return [
        *(value for _, value in make_orders(2_000, prefix="ord")),
        *(malformed.value for malformed in malformed_corpus()),
        *hand_written(),
        *one_field_at_a_time(),
        *(combined(rng) for _ in range(6_000)),
    ]

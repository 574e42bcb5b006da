"""Realistic sample orders, and malformed records of every kind the service must survive."""

import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

CURRENCIES = ("EUR", "USD", "GBP")


def sample_order(index: int, rng: random.Random, *, prefix: str = "ord") -> dict[str, object]:
    """One valid order of about 200 bytes whose items add up to its total."""
    lines = [(rng.randint(100, 20_000), rng.randint(1, 3)) for _ in range(rng.randint(1, 2))]
    items = [
        {
            "sku": f"SKU-{rng.randint(1000, 9999)}-{n}",
            "quantity": quantity,
            "unit_price": f"{cents / 100:.2f}",
        }
        for n, (cents, quantity) in enumerate(lines)
    ]
    total = Decimal(sum(cents * quantity for cents, quantity in lines)) / 100
    return {
        "order_id": f"{prefix}-{index:08d}",
        "customer_id": f"cust-{rng.randint(1, 50_000):05d}",
        "total": f"{total:.2f}",
        "currency": rng.choice(CURRENCIES),
        "items": items,
        "created_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
    }


def encode(order: dict[str, object]) -> bytes:
    return json.dumps(order, separators=(",", ":")).encode()


@dataclass(frozen=True, slots=True)
class Malformed:
    name: str
    value: bytes | None
    category: str


def _order(**changes: object) -> bytes:
    base: dict[str, object] = {"order_id": "bad", "customer_id": "cust-1", "total": "10.00"}
    base.update(changes)
    return encode({k: v for k, v in base.items() if v is not _MISSING})


_MISSING = object()
_DEEP = 5_000


def malformed_corpus(max_record_bytes: int = 64 * 1024) -> list[Malformed]:
    """Distinct malformed inputs, each with the dead-letter category it must get."""
    d, v = "deserialization", "validation"
    return [
        Malformed("not-utf8", b"\xff\xfe\xfa\x00garbage", d),
        Malformed("utf16-json", _order().decode().encode("utf-16"), d),
        Malformed("not-json", b"order 42 please", d),
        Malformed("truncated-json", b'{"order_id": "x", "total": ', d),
        Malformed("empty-value", b"", d),
        Malformed("null-value", None, d),
        Malformed("nan-literal", b'{"order_id":"x","customer_id":"c","total":NaN}', v),
        Malformed(
            "absurd-nesting",
            b'{"order_id":"x","customer_id":"c","n":' + b"[" * _DEEP + b"]" * _DEEP + b"}",
            d,
        ),
        Malformed("too-large", _order(padding="x" * (max_record_bytes + 1)), d),
        Malformed("json-array", b"[1, 2, 3]", v),
        Malformed("json-string", b'"an order"', v),
        Malformed("json-null", b"null", v),
        Malformed("json-number", b"42", v),
        Malformed("missing-order-id", _order(order_id=_MISSING), v),
        Malformed("missing-total", _order(total=_MISSING), v),
        Malformed("missing-customer", _order(customer_id=_MISSING), v),
        Malformed("total-not-number", _order(total="ten"), v),
        Malformed("order-id-object", _order(order_id={"id": 1}), v),
        Malformed("negative-total", _order(total="-5.00"), v),
        Malformed("zero-total", _order(total="0"), v),
        Malformed("three-decimals", _order(total="1.005"), v),
        Malformed("nan-string", _order(total="NaN"), v),
        Malformed("infinity-string", _order(total="Infinity"), v),
        Malformed("huge-exponent", b'{"order_id":"x","customer_id":"c","total":1e400}', v),
        Malformed("lowercase-currency", _order(currency="eur"), v),
        Malformed("zero-quantity", _order(items=[{"sku": "a", "quantity": 0, "unit_price": "10.00"}]), v),
        Malformed("order-id-too-long", _order(order_id="x" * 65), v),
        Malformed("too-many-items", _order(items=[{"sku": "a", "quantity": 1, "unit_price": "0"}] * 501), v),
    ]

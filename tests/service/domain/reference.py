"""The order domain as it was before issue 28 (events.py and rules.py at 8b68d90), frozen: the
oracle the faster domain is compared with, byte for byte (test_equivalence.py). Do not edit it to
make a test pass; a difference from it is a change of the service's contract."""

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Identifier = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
CurrencyCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
Money = Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=2, allow_inf_nan=False)]
PositiveMoney = Annotated[Decimal, Field(gt=0, max_digits=14, decimal_places=2, allow_inf_nan=False)]

MAX_ITEMS = 500


class _TolerantEvent(BaseModel):
    # Tolerant reader: producers may add fields before we know about them.
    model_config = ConfigDict(extra="ignore", frozen=True)


class OrderItem(_TolerantEvent):
    sku: Identifier
    quantity: Annotated[int, Field(gt=0, le=100_000)]
    unit_price: Money


class OrderCreated(_TolerantEvent):
    """An order as placed by a customer."""

    order_id: Identifier
    customer_id: Identifier
    total: PositiveMoney
    currency: CurrencyCode | None = None
    items: Annotated[list[OrderItem], Field(max_length=MAX_ITEMS)] | None = None
    created_at: datetime | None = None


class OrderProcessed(BaseModel):
    """The outcome of processing one order: accepted or rejected for a business reason."""

    model_config = ConfigDict(frozen=True)

    order_id: str
    customer_id: str
    status: Literal["processed", "rejected"]
    reason: str | None = None
    total: Decimal
    currency: str
    processed_at: datetime


@dataclass(frozen=True, slots=True)
class OrderPolicy:
    accepted_currencies: Collection[str] = frozenset({"EUR", "USD", "GBP"})
    default_currency: str = "EUR"


def find_rejection(order: OrderCreated, policy: OrderPolicy) -> str | None:
    """The business reason to reject this order, or None when it is acceptable."""
    currency = order.currency or policy.default_currency
    if currency not in policy.accepted_currencies:
        return f"currency {currency} is not accepted"
    if order.items:
        items_total = sum(item.unit_price * item.quantity for item in order.items)
        if items_total != order.total:
            return f"items add up to {items_total}, not the order total {order.total}"
    return None


def process_order(
    order: OrderCreated,
    policy: OrderPolicy,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> OrderProcessed:
    """Decide the outcome of one order; a rejection is a normal outcome, not an error."""
    reason = find_rejection(order, policy)
    return OrderProcessed(
        order_id=order.order_id,
        customer_id=order.customer_id,
        status="rejected" if reason else "processed",
        reason=reason,
        total=order.total,
        currency=order.currency or policy.default_currency,
        processed_at=now(),
    )

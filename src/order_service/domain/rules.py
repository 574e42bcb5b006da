"""Business rules: pure functions from an order to its outcome."""

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from order_service.domain.events import OrderCreated, OrderProcessed


@dataclass(frozen=True, slots=True)
class OrderPolicy:
    accepted_currencies: Collection[str] = frozenset({"EUR", "USD", "GBP"})
    default_currency: str = "EUR"


def find_rejection(order: OrderCreated, policy: OrderPolicy) -> str | None:
    """The business reason to reject this order, or None when it is acceptable."""
    return _rejection(order, order.currency or policy.default_currency, policy.accepted_currencies)


_ZERO = Decimal(0)


def _rejection(order: OrderCreated, currency: str, accepted: Collection[str]) -> str | None:
    if currency not in accepted:
        return f"currency {currency} is not accepted"
    items = order.items
    if items:
        # A loop rather than sum() over a generator (0.45 against 0.74 µs for the sample orders' one
        # or two items), from a Decimal 0 rather than sum()'s int 0: the same Decimal, to its exponent
        # and sign (0 + -0.00 is 0.00), without converting an int.
        items_total = _ZERO
        for item in items:
            items_total += item.unit_price * item.quantity
        if items_total != order.total:
            return f"items add up to {items_total}, not the order total {order.total}"
    return None


def _utc_now() -> datetime:
    return datetime.now(UTC)


# The constructor's own validation, given a dict: OrderProcessed(**fields) is this behind
# BaseModel.__init__, 1.36 against 1.92 µs. model_construct, in Python, is slower than either.
_validated_outcome = OrderProcessed.__pydantic_validator__.validate_python


def process_order(
    order: OrderCreated,
    policy: OrderPolicy,
    now: Callable[[], datetime] = _utc_now,
) -> OrderProcessed:
    """Decide the outcome of one order; a rejection is a normal outcome, not an error.

    3.6 µs per sample order before issue 28, 2.55 after (median of 3, the fastest of 15 passes over
    10,000 orders, bench/domain.py): the items summed in a loop, the outcome validated without the
    keyword constructor, the currency looked up once. What is left is mostly that validation
    (1.36 µs), the sum (0.45) and `datetime.now(UTC)` (0.26).
    """
    currency = order.currency or policy.default_currency
    reason = _rejection(order, currency, policy.accepted_currencies)
    outcome: OrderProcessed = _validated_outcome(
        {
            "order_id": order.order_id,
            "customer_id": order.customer_id,
            "status": "rejected" if reason else "processed",
            "reason": reason,
            "total": order.total,
            "currency": currency,
            "processed_at": now(),
        }
    )
    return outcome

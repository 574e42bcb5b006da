"""Business rules: pure functions from an order to its outcome."""

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime

from order_service.domain.events import OrderCreated, OrderProcessed


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

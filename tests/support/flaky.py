"""A rules function that fails on purpose, chosen by order id; the service loads it by setting.

- `transient-K-...` fails K times with ConnectionError (a transient error), then is processed;
- `always-...` always fails transiently;
- `bug-...` raises ValueError, a permanent error;
- anything else is processed by the real rules.
"""

from collections import Counter

from order_service.domain.events import OrderCreated, OrderProcessed
from order_service.domain.rules import OrderPolicy, process_order

failures: Counter[str] = Counter()


def process(order: OrderCreated, policy: OrderPolicy) -> OrderProcessed:
    kind, _, rest = order.order_id.partition("-")
    if kind == "bug":
        raise ValueError(f"rule crashed on {order.order_id}")
    if kind == "always" or (kind == "transient" and failures[order.order_id] < int(rest.split("-")[0])):
        failures[order.order_id] += 1
        raise ConnectionError(f"pricing service unreachable (failure {failures[order.order_id]})")
    return process_order(order, policy)

from datetime import UTC, datetime
from decimal import Decimal

from order_service.domain.events import OrderCreated
from order_service.domain.rules import OrderPolicy, process_order

POLICY = OrderPolicy(accepted_currencies={"EUR", "USD"}, default_currency="EUR")
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def order(**fields: object) -> OrderCreated:
    return OrderCreated.model_validate({"order_id": "o-1", "customer_id": "c-1", "total": "30.00", **fields})


def test_an_acceptable_order_is_processed_with_its_total_and_currency() -> None:
    result = process_order(order(currency="USD"), POLICY, now=lambda: NOW)
    assert (result.status, result.reason, result.total, result.currency) == (
        "processed",
        None,
        Decimal("30.00"),
        "USD",
    )
    assert result.processed_at == NOW


def test_an_order_without_currency_gets_the_default_one() -> None:
    assert process_order(order(), POLICY).currency == "EUR"


def test_a_currency_outside_the_accepted_set_is_rejected_with_a_reason() -> None:
    result = process_order(order(currency="JPY"), POLICY)
    assert result.status == "rejected"
    assert result.reason == "currency JPY is not accepted"


def test_items_must_add_up_to_the_total() -> None:
    items = [
        {"sku": "a", "quantity": 2, "unit_price": "10.00"},
        {"sku": "b", "quantity": 1, "unit_price": "10.00"},
    ]
    assert process_order(order(items=items), POLICY).status == "processed"
    result = process_order(order(items=items[:1]), POLICY)
    assert result.status == "rejected"
    assert result.reason == "items add up to 20.00, not the order total 30.00"


def test_a_rejection_keeps_the_order_identity() -> None:
    result = process_order(order(currency="JPY"), POLICY)
    assert (result.order_id, result.customer_id) == ("o-1", "c-1")

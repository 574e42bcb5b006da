import random

import pytest
from pydantic import ValidationError

from kafka_delivery.errors import classify
from kafka_delivery.handlers.json_events import JsonHandler
from order_service.cli.samples import encode, malformed_corpus, sample_order
from order_service.domain.decoding import decode_order
from order_service.domain.events import OrderCreated, OrderProcessed


async def _same(order: OrderCreated) -> OrderCreated:
    return order


decoder: JsonHandler[OrderCreated, OrderCreated] = JsonHandler(
    input_model=OrderCreated,
    validate_json=decode_order,
    process=_same,
    output_topic="out",
    key_of=lambda order: order.order_id,
    max_value_bytes=64 * 1024,
)


def test_unknown_fields_are_ignored() -> None:
    order = OrderCreated.model_validate_json(
        b'{"order_id":"o","customer_id":"c","total":"1.50","coupon":"X"}'
    )
    assert order.order_id == "o"
    assert "coupon" not in order.model_dump()


def test_sample_orders_are_valid_and_about_200_bytes() -> None:
    rng = random.Random(1)
    for i in range(200):
        value = encode(sample_order(i, rng))
        assert 150 <= len(value) <= 300
        OrderCreated.model_validate_json(value)


@pytest.mark.parametrize("malformed", malformed_corpus(), ids=lambda m: m.name)
def test_each_malformed_input_is_refused_with_its_category(malformed) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises((ValidationError, ValueError)) as refused:
        decoder.decode(malformed.value)
    assert classify(refused.value).value == malformed.category


def test_total_must_be_positive_with_two_decimals_at_most() -> None:
    base = {"order_id": "o", "customer_id": "c"}
    assert str(OrderCreated.model_validate({**base, "total": "0.01"}).total) == "0.01"
    for total in ("0", "-1", "1.001", "NaN", "Infinity"):
        with pytest.raises(ValidationError):
            OrderCreated.model_validate({**base, "total": total})


def test_processed_event_round_trips_as_json() -> None:
    event = OrderProcessed(
        order_id="o",
        customer_id="c",
        status="rejected",
        reason="no",
        total="1.00",
        currency="EUR",
        processed_at="2026-01-01T00:00:00Z",
    )
    assert OrderProcessed.model_validate_json(event.model_dump_json()) == event

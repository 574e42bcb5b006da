"""decode_order's two paths: amounts in their usual form without the model's validator, any other
record through it (test_equivalence.py compares the results with the reference)."""

import pytest
from bench.throughput.kafka_io import make_orders
from pydantic import ValidationError

from order_service.domain.decoding import decode_order
from order_service.domain.events import OrderCreated


class Refusing:
    """Stands in for the model's own validator, to show whether a record reaches it."""

    def __init__(self) -> None:
        self.called = 0

    def validate_json(self, value: bytes) -> OrderCreated:
        self.called += 1
        raise ValidationError.from_exception_data("OrderCreated", [])


@pytest.fixture
def models_own(monkeypatch: pytest.MonkeyPatch) -> Refusing:
    spy = Refusing()
    monkeypatch.setattr(OrderCreated, "__pydantic_validator__", spy)
    return spy


def test_sample_orders_do_not_need_the_models_own_validator(models_own: Refusing) -> None:
    for _, value in make_orders(500, prefix="ord"):
        assert decode_order(value).items
    assert models_own.called == 0


@pytest.mark.parametrize(
    "total", [b"1.5", b'"1.5"', b'"1.000"', b'"01.00"', b'" 1.00"', b'"1e2"', b'"0.00"', b'"-0.00"']
)
def test_other_amounts_are_decided_by_the_model(models_own: Refusing, total: bytes) -> None:
    with pytest.raises(ValidationError):
        decode_order(b'{"order_id":"o","customer_id":"c","total":' + total + b"}")
    assert models_own.called == 1

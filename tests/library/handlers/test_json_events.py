"""JsonHandler's decoding: the model's own validator, or a faster one given for the same model."""

import pytest
from pydantic import BaseModel, ValidationError

from kafka_delivery.errors import DeserializationError
from kafka_delivery.handlers import JsonHandler
from tests.support.fakes import record


class Order(BaseModel):
    order_id: str


def handler(**options: object) -> JsonHandler[Order, Order]:
    return JsonHandler(
        input_model=Order,
        process=lambda order: order,
        output_topic="out",
        key_of=lambda order: order.order_id,
        max_value_bytes=64,
        **options,  # type: ignore[arg-type]
    )


def test_the_models_own_validator_decodes_by_default() -> None:
    [out] = handler().now(record(value=b'{"order_id": "o-1"}'))
    assert (out.key, out.value) == (b"o-1", b'{"order_id":"o-1"}')
    with pytest.raises(ValidationError):
        handler().now(record(value=b'{"id": "o-1"}'))


def test_a_validator_given_decodes_instead_after_the_size_checks() -> None:
    seen: list[bytes] = []

    def validate_json(value: bytes) -> Order:
        seen.append(value)
        return Order(order_id="from-the-given-validator")

    [out] = handler(validate_json=validate_json).now(record(value=b"{}"))
    assert (out.key, seen) == (b"from-the-given-validator", [b"{}"])
    for empty_or_large in (b"", b"x" * 65):
        with pytest.raises(DeserializationError):
            handler(validate_json=validate_json).now(record(value=empty_or_large))
    assert seen == [b"{}"]

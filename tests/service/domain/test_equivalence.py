"""The domain against its reference (reference.py), byte for byte over the corpus (corpus.py): the
same records accepted, the same orders and outcomes, the same errors for the dead-letter envelope."""

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import ConsumerRecord
from prometheus_client import CollectorRegistry
from pydantic import BaseModel, ValidationError

from kafka_delivery.errors import classify, safe_message
from kafka_delivery.handlers import JsonHandler
from kafka_delivery.operations import CountsPerLabel
from order_service.domain.decoding import decode_order
from order_service.domain.events import OrderCreated, OrderItem, OrderProcessed
from order_service.domain.rules import OrderPolicy, find_rejection, process_order
from order_service.orders import order_handler
from order_service.processing import Processor
from order_service.settings import OrderSettings, ProcessingSettings
from tests.service.domain import reference
from tests.service.domain.corpus import records

NOW = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
POLICIES = [
    ({"EUR", "USD", "GBP"}, "EUR"),
    ({"EUR", "USD"}, "USD"),
    (("GBP",), "EUR"),  # the default currency itself refused
    (frozenset({"JPY", "EUR"}), "JPY"),
]
CORPUS = records()
MAX_BYTES = 64 * 1024


def attempt(decode: Callable[[bytes], Any], value: bytes) -> Any:
    """The decoded order, or what the dead-letter envelope would say of the error."""
    try:
        return decode(value)
    except ValueError as exc:
        errors = repr(exc.errors(include_url=False)) if isinstance(exc, ValidationError) else None
        return ("refused", type(exc).__name__, classify(exc).value, safe_message(exc), str(exc), errors)


def shape(model: BaseModel) -> tuple[object, ...]:
    """All a caller can see of a model: its fields with their types, which were set, its JSON."""
    items = getattr(model, "items", None) or []
    return (repr(model), model.model_fields_set, [i.model_fields_set for i in items], model.model_dump_json())


def test_the_corpus_has_every_kind_of_record() -> None:
    decoded = [attempt(reference.OrderCreated.model_validate_json, value or b"") for value in CORPUS]
    orders = [order for order in decoded if isinstance(order, reference.OrderCreated)]
    rejected = [order for order in orders if reference.find_rejection(order, reference.OrderPolicy())]
    assert len(CORPUS) >= 7_000
    assert len(orders) >= 4_000
    assert len(rejected) >= 800
    assert len(decoded) - len(orders) >= 2_000


def test_orders_decode_as_the_reference_decodes_them() -> None:
    for value in CORPUS:
        expected = attempt(reference.OrderCreated.model_validate_json, value or b"")
        got = attempt(decode_order, value or b"")
        if isinstance(expected, reference.OrderCreated):
            assert type(got) is OrderCreated, value
            assert all(type(i) is OrderItem for i in got.items or []), value
            assert shape(got) == shape(expected), value
        else:
            assert got == expected, value


@pytest.mark.parametrize(("accepted", "default"), POLICIES)
def test_outcomes_are_the_reference_outcomes_byte_for_byte(accepted: Any, default: str) -> None:
    policy, old_policy = OrderPolicy(accepted, default), reference.OrderPolicy(accepted, default)
    for value in CORPUS:
        try:
            old_order = reference.OrderCreated.model_validate_json(value or b"")
        except ValidationError:
            continue
        order = decode_order(value or b"")
        assert find_rejection(order, policy) == reference.find_rejection(old_order, old_policy)
        got = process_order(order, policy, now=lambda: NOW)
        expected = reference.process_order(old_order, old_policy, now=lambda: NOW)
        assert type(got) is OrderProcessed
        assert got.__pydantic_serializer__.to_json(got) == expected.__pydantic_serializer__.to_json(expected)
        assert shape(got) == shape(expected), value


def test_the_current_time_is_written_as_before() -> None:
    value = b'{"order_id":"o","customer_id":"c","total":"1.00"}'
    got = process_order(OrderCreated.model_validate_json(value), OrderPolicy()).model_dump_json()
    expected = reference.process_order(
        reference.OrderCreated.model_validate_json(value), reference.OrderPolicy()
    ).model_dump_json()
    for outcome in (got, expected):
        assert re.fullmatch(r'.*,"processed_at":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z"}', outcome)
    assert got.split(',"processed_at"')[0] == expected.split(',"processed_at"')[0]


def at_fixed_time(order: OrderCreated, policy: OrderPolicy) -> OrderProcessed:
    return process_order(order, policy, now=lambda: NOW)


def old_service(accepted: Any, default: str) -> JsonHandler[reference.OrderCreated, reference.OrderProcessed]:
    """What the service's handler did before: the same library handler over the reference domain."""
    policy = reference.OrderPolicy(accepted, default)
    return JsonHandler(
        input_model=reference.OrderCreated,
        process=lambda order: reference.process_order(order, policy, now=lambda: NOW),
        output_topic="orders.processed",
        key_of=lambda processed: processed.order_id,
        max_value_bytes=MAX_BYTES,
    )


@pytest.mark.parametrize(("accepted", "default"), POLICIES[:2])
def test_the_service_handler_publishes_and_refuses_as_before(accepted: Any, default: str) -> None:
    processing = ProcessingSettings(processor=at_fixed_time, max_record_bytes=MAX_BYTES)
    handler = order_handler(
        processing,
        OrderSettings(accepted_currencies=frozenset(accepted), default_currency=default),
        output_topic="orders.processed",
        outcomes=CountsPerLabel("outcomes", "doc", "status", [], CollectorRegistry()),
        processor=Processor(processing),
    )
    before = old_service(accepted, default)
    for offset, value in enumerate(CORPUS):
        record = ConsumerRecord(
            "orders.created", 3, offset, 1_700_000_000_000, 0, b"key", value, None, 3, len(value or b""), ()
        )
        assert attempt(handler.now, record) == attempt(before.now, record), value

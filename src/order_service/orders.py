"""The order use case: decode OrderCreated, apply the rules, publish OrderProcessed."""

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from kafka_delivery.handlers import JsonHandler
from kafka_delivery.operations import CountsPerLabel
from kafka_delivery.types import InputRecord, OutgoingRecord
from order_service.adapters.logs import current_order_id
from order_service.domain.events import OrderCreated, OrderProcessed
from order_service.domain.rules import OrderPolicy
from order_service.settings import OrderSettings, ProcessingSettings

logger = logging.getLogger(__name__)


def order_handler(
    processing: ProcessingSettings, orders: OrderSettings, *, output_topic: str, outcomes: CountsPerLabel
) -> "OrderHandler":
    """Decode OrderCreated, apply the rules, encode OrderProcessed keyed by order id."""
    policy = OrderPolicy(
        accepted_currencies=orders.accepted_currencies, default_currency=orders.default_currency
    )
    rules = processing.processor
    count = outcomes.inc

    def accounted(result: object) -> OrderProcessed:
        if type(result) is not OrderProcessed and not isinstance(result, OrderProcessed):
            raise TypeError(f"the processor returned {type(result).__name__}, not an OrderProcessed")
        count(result.status)
        if result.status == "rejected":
            logger.info("order rejected: %s", result.reason)
        else:
            logger.debug("order processed")
        return result

    # A plain processor runs in the engine's own turn (nothing here waits); an async one is awaited.
    process: Callable[[OrderCreated], OrderProcessed] | Callable[[OrderCreated], Awaitable[OrderProcessed]]
    if processing.awaits():

        async def process_async(order: OrderCreated) -> OrderProcessed:
            current_order_id.set(order.order_id)
            return accounted(await rules(order, policy))

        process = process_async
    else:

        def process_plain(order: OrderCreated) -> OrderProcessed:
            current_order_id.set(order.order_id)
            return accounted(rules(order, policy))

        process = process_plain

    decode_and_process = JsonHandler(
        input_model=OrderCreated,
        process=process,
        output_topic=output_topic,
        key_of=lambda processed: processed.order_id,
        max_value_bytes=processing.max_record_bytes,
    )

    return OrderHandler(decode_and_process)


@dataclass(frozen=True, slots=True)
class OrderHandler:
    """Decode, process and encode one record (`ImmediateHandler`: `now` for a plain processor)."""

    decode_and_process: JsonHandler[OrderCreated, OrderProcessed]

    async def __call__(self, record: InputRecord) -> Sequence[OutgoingRecord]:
        current_order_id.set(None)  # until this record's order is decoded
        return await self.decode_and_process(record)

    def now(self, record: InputRecord) -> Sequence[OutgoingRecord]:
        current_order_id.set(None)
        return self.decode_and_process.now(record)

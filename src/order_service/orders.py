"""The order use case: decode OrderCreated, apply the rules, publish OrderProcessed."""

import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from kafka_delivery.effects import EffectBatches
from kafka_delivery.handlers import JsonHandler
from kafka_delivery.logs import current_record
from kafka_delivery.operations import CountsPerLabel
from kafka_delivery.types import InputRecord, OutgoingRecord
from order_service.adapters.logs import current_order_id
from order_service.domain.decoding import decode_order
from order_service.domain.events import OrderCreated, OrderProcessed
from order_service.domain.rules import OrderPolicy
from order_service.processing import Processor
from order_service.settings import OrderSettings, ProcessingSettings

logger = logging.getLogger(__name__)


def order_handler(
    processing: ProcessingSettings,
    orders: OrderSettings,
    *,
    output_topic: str,
    outcomes: CountsPerLabel,
    processor: Processor,
    effects: EffectBatches | None = None,
    group_id: str = "",
) -> "OrderHandler":
    """Decode OrderCreated, apply the rules, encode OrderProcessed keyed by order id.

    With `effects`, each order is processed inside the batch transaction of `effects` and its outcome
    stored in the inbox under the record's coordinates in `group_id`; a record found there is not
    processed again, its stored outcome is published instead.
    """
    policy = OrderPolicy(
        accepted_currencies=orders.accepted_currencies, default_currency=orders.default_currency
    )
    count = outcomes.inc

    def checked(result: object) -> OrderProcessed:
        if type(result) is not OrderProcessed and not isinstance(result, OrderProcessed):
            raise TypeError(f"the processor returned {type(result).__name__}, not an OrderProcessed")
        return result

    def accounted(result: OrderProcessed) -> OrderProcessed:
        count(result.status)
        if result.status == "rejected":
            logger.info("order rejected: %s", result.reason)
        else:
            logger.debug("order processed")
        return result

    process: Callable[[OrderCreated], OrderProcessed] | Callable[[OrderCreated], Awaitable[OrderProcessed]]
    if effects is not None:

        async def process_with_effects(order: OrderCreated) -> OrderProcessed:
            current_order_id.set(order.order_id)
            record = current_record.get()
            if record is None:
                raise RuntimeError("no current record: effects need the record's coordinates")
            made: list[tuple[OrderProcessed, bytes]] = []

            async def work() -> bytes:
                # The batch runs in its own task: the record's log context is set there for its work.
                record_token, order_token = current_record.set(record), current_order_id.set(order.order_id)
                try:
                    result = processor.process(order, policy)
                    if inspect.isawaitable(result):
                        result = await result
                finally:
                    current_record.reset(record_token)
                    current_order_id.reset(order_token)
                processed = checked(result)
                made.append((processed, processed.__pydantic_serializer__.to_json(processed)))
                return made[-1][1]

            outcome = await effects.run((group_id, record.topic, record.partition, record.offset), work)
            # The work of the transaction that committed, or a stored outcome (processed before, in
            # a transaction whose offset commit or outputs were lost): published again as it was.
            if made and made[-1][1] is outcome:
                return accounted(made[-1][0])
            return accounted(OrderProcessed.model_validate_json(outcome))

        process = process_with_effects
    elif processing.awaits():
        # A factory's function, or an async one: awaited when it returns an awaitable.
        async def process_async(order: OrderCreated) -> OrderProcessed:
            current_order_id.set(order.order_id)
            result = processor.process(order, policy)
            if inspect.isawaitable(result):
                result = await result
            return accounted(checked(result))

        process = process_async
    else:
        # A plain processor runs in the engine's own turn (nothing here waits).
        rules = processing.processor

        def process_plain(order: OrderCreated) -> OrderProcessed:
            current_order_id.set(order.order_id)
            return accounted(checked(rules(order, policy)))

        process = process_plain

    decode_and_process = JsonHandler(
        input_model=OrderCreated,
        validate_json=decode_order,
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

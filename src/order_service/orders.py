"""The order use case: decode OrderCreated, apply the rules, publish OrderProcessed; its channels."""

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import ConsumerRebalanceListener
from faststream.kafka import KafkaRouter
from faststream.middlewares import AckPolicy

from kafka_delivery.faststream import decode_raw_batch, parse_raw_batch
from kafka_delivery.handlers import JsonHandler
from kafka_delivery.operations import CountsPerLabel
from kafka_delivery.types import InputRecord, OutgoingRecord
from order_service.adapters.logs import current_order_id
from order_service.domain.events import OrderCreated, OrderProcessed
from order_service.domain.rules import OrderPolicy
from order_service.settings import ConsumerSettings, OrderSettings, ProcessingSettings, TopicSettings

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


def document_outputs(router: KafkaRouter, topics: TopicSettings, *, retry_topic: bool) -> None:
    """The output channels, for the AsyncAPI document only.

    The delivery layer's own producer sends these records: FastStream publishers rewrite headers
    and have no transactions.
    """
    router.publisher(
        topics.output, schema=OrderProcessed, description="One outcome per order, keyed by order_id."
    )
    router.publisher(
        topics.dead_letter,
        description="Input records that could not be processed: original key, bytes and headers, "
        "plus the dlq.* envelope headers (docs/dead-letter-envelope.md).",
    )
    if retry_topic:
        router.publisher(topics.retry, description="Input records waiting for a delayed retry.")


def subscribe(
    router: KafkaRouter,
    consumer: ConsumerSettings,
    *,
    topic: str,
    group_id: str,
    listener: ConsumerRebalanceListener,
    process: Callable[[Sequence[InputRecord]], Awaitable[None]],
) -> Any:
    """One batch subscriber on `topic` that hands every fetched batch to `process`."""
    # MANUAL: the pipeline commits each partition only once its outputs are acked.
    # ACK_FIRST would commit before processing, ACK would commit failures as if done.
    subscriber = router.subscriber(
        topic,
        group_id=group_id,
        group_instance_id=consumer.instance_id(topic),
        batch=True,
        max_records=consumer.max_batch_records,
        batch_timeout_ms=consumer.batch_timeout_ms,
        fetch_min_bytes=consumer.fetch_min_bytes,
        fetch_max_wait_ms=consumer.fetch_max_wait_ms,
        auto_offset_reset=consumer.auto_offset_reset,
        session_timeout_ms=consumer.session_timeout_ms,
        heartbeat_interval_ms=consumer.heartbeat_interval_ms,
        max_poll_interval_ms=consumer.max_poll_interval_ms,
        # Outputs of the exactly-once mode, and of transactional upstreams, count once committed.
        isolation_level="read_committed",
        ack_policy=AckPolicy.MANUAL,
        listener=listener,
        parser=parse_raw_batch,
        decoder=decode_raw_batch,
        description="OrderCreated events, JSON; malformed records go to the dead-letter topic.",
    )

    # The payload annotation documents the channel (AsyncAPI). The broker does not apply types:
    # the raw decoder hands over the fetched records as they are, and the pipeline decodes them
    # one by one so that a bad record fails alone.
    @subscriber
    async def on_orders_created(orders: list[OrderCreated]) -> None:
        await process(orders)

    return subscriber

"""Entry point for orders: the subscriber hands batches to the delivery pipeline."""

import logging
from collections.abc import Sequence

from aiokafka import ConsumerRebalanceListener
from faststream.kafka import KafkaRouter
from faststream.middlewares import AckPolicy
from prometheus_client import Counter

from order_service.domain.events import OrderCreated, OrderProcessed
from order_service.domain.rules import OrderPolicy
from order_service.logs import current_order_id
from order_service.messaging.faststream_batch import decode_raw_batch, parse_raw_batch
from order_service.messaging.json_handler import JsonHandler
from order_service.messaging.records import (
    DeliveryPipeline,
    InputRecord,
    OutgoingRecord,
    RecordHandler,
)
from order_service.settings import Settings

logger = logging.getLogger(__name__)


def order_handler(settings: Settings, outcomes: Counter) -> RecordHandler:
    """Decode OrderCreated, apply the rules, encode OrderProcessed keyed by order id."""
    processing = settings.processing
    policy = OrderPolicy(
        accepted_currencies=processing.accepted_currencies,
        default_currency=processing.default_currency,
    )
    rules = processing.processor
    counted = {status: outcomes.labels(status) for status in ("processed", "rejected")}

    def process(order: OrderCreated) -> OrderProcessed:
        current_order_id.set(order.order_id)
        result: OrderProcessed = rules(order, policy)
        counted[result.status].inc()
        if result.status == "rejected":
            logger.info("order rejected: %s", result.reason)
        else:
            logger.debug("order processed")
        return result

    decode_and_process = JsonHandler(
        input_model=OrderCreated,
        process=process,
        output_topic=settings.topics.output,
        key_of=lambda processed: processed.order_id,
        max_value_bytes=processing.max_record_bytes,
    )

    async def handle(record: InputRecord) -> Sequence[OutgoingRecord]:
        current_order_id.set(None)  # until this record's order is decoded
        return await decode_and_process(record)

    return handle


def orders_router(
    settings: Settings,
    pipeline: DeliveryPipeline,
    listener: ConsumerRebalanceListener,
    retry: tuple[DeliveryPipeline, ConsumerRebalanceListener] | None = None,
) -> KafkaRouter:
    """The input subscriber, and the retry-topic subscriber when retries go through one."""
    router = KafkaRouter()
    _subscribe(router, settings, settings.topics.input, settings.consumer.group_id, pipeline, listener)
    _document_outputs(router, settings)
    if retry is not None:
        group = retry_group(settings)
        _subscribe(router, settings, settings.topics.retry, group, *retry)
    return router


def _document_outputs(router: KafkaRouter, settings: Settings) -> None:
    # For the AsyncAPI document only: the delivery layer's own producer sends these records,
    # because FastStream publishers rewrite headers and have no transactions.
    topics = settings.topics
    router.publisher(
        topics.output, schema=OrderProcessed, description="One outcome per order, keyed by order_id."
    )
    router.publisher(
        topics.dead_letter,
        description="Input records that could not be processed: original key, bytes and headers, "
        "plus the dlq.* envelope headers (docs/dead-letter-envelope.md).",
    )
    if settings.retry.topic_enabled:
        router.publisher(topics.retry, description="Input records waiting for a delayed retry.")


def retry_group(settings: Settings) -> str:
    return f"{settings.consumer.group_id}.retry"


def _subscribe(
    router: KafkaRouter,
    settings: Settings,
    topic: str,
    group_id: str,
    pipeline: DeliveryPipeline,
    listener: ConsumerRebalanceListener,
) -> None:
    consumer = settings.consumer
    # MANUAL: the pipeline commits each partition only once its outputs are acked.
    # ACK_FIRST would commit before processing, ACK would commit failures as if done.
    subscriber = router.subscriber(
        topic,
        group_id=group_id,
        group_instance_id=(
            f"{consumer.group_instance_id}-{topic}" if consumer.group_instance_id is not None else None
        ),
        batch=True,
        max_records=consumer.max_batch_records,
        batch_timeout_ms=consumer.batch_timeout_ms,
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
        await pipeline.process(orders)

    pipeline.consumer = lambda: subscriber.consumer

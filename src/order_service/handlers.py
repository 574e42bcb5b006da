"""Entry point for orders: the subscriber hands batches to the delivery pipeline."""

from functools import partial

from aiokafka import ConsumerRebalanceListener
from faststream.kafka import KafkaRouter
from faststream.kafka.annotations import KafkaMessage
from faststream.middlewares import AckPolicy

from order_service.domain.events import OrderCreated, OrderProcessed
from order_service.domain.rules import OrderPolicy, process_order
from order_service.messaging.faststream_batch import decode_raw_batch, parse_raw_batch
from order_service.messaging.json_handler import JsonHandler
from order_service.messaging.records import DeliveryPipeline
from order_service.settings import Settings


def order_handler(settings: Settings) -> JsonHandler[OrderCreated, OrderProcessed]:
    """Decode OrderCreated, apply the rules, encode OrderProcessed keyed by order id."""
    processing = settings.processing
    policy = OrderPolicy(
        accepted_currencies=processing.accepted_currencies,
        default_currency=processing.default_currency,
    )
    return JsonHandler(
        input_model=OrderCreated,
        process=partial(process_order, policy=policy),
        output_topic=settings.topics.output,
        key_of=lambda processed: processed.order_id,
        max_value_bytes=processing.max_record_bytes,
    )


def orders_router(
    settings: Settings, pipeline: DeliveryPipeline, listener: ConsumerRebalanceListener
) -> KafkaRouter:
    router = KafkaRouter()
    consumer = settings.consumer
    # MANUAL: the pipeline commits each partition only once its outputs are acked.
    # ACK_FIRST would commit before processing, ACK would commit failures as if done.
    subscriber = router.subscriber(
        settings.topics.input,
        group_id=consumer.group_id,
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

    @subscriber
    async def on_orders_created(message: KafkaMessage) -> None:
        await pipeline.process(message.raw_message)

    pipeline.consumer = lambda: subscriber.consumer

    return router

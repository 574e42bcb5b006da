"""Entry point for orders: the subscriber hands batches to the delivery pipeline."""

from functools import partial

from aiokafka import ConsumerRebalanceListener
from faststream.kafka import KafkaRouter
from faststream.kafka.annotations import KafkaMessage
from faststream.middlewares import AckPolicy

from order_service.domain.events import OrderCreated, OrderProcessed
from order_service.domain.rules import OrderPolicy
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
        process=partial(settings.processing.processor, policy=policy),
        output_topic=settings.topics.output,
        key_of=lambda processed: processed.order_id,
        max_value_bytes=processing.max_record_bytes,
    )


def orders_router(
    settings: Settings,
    pipeline: DeliveryPipeline,
    listener: ConsumerRebalanceListener,
    retry: tuple[DeliveryPipeline, ConsumerRebalanceListener] | None = None,
) -> KafkaRouter:
    """The input subscriber, and the retry-topic subscriber when retries go through one."""
    router = KafkaRouter()
    _subscribe(router, settings, settings.topics.input, settings.consumer.group_id, pipeline, listener)
    if retry is not None:
        group = retry_group(settings)
        _subscribe(router, settings, settings.topics.retry, group, *retry)
    return router


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

"""The service's topics, provisioned at start, sized so that any input record can be dead-lettered."""

from aiokafka.admin import AIOKafkaAdminClient

from kafka_delivery import operations
from kafka_delivery.errors import MissingTopicsError, TopicConfigError
from order_service.adapters.connection import client_kwargs
from order_service.errors import ConfigurationError
from order_service.settings import KafkaSettings, Settings, TopicSettings


def topic_specs(
    topics: TopicSettings, *, retry_topic: bool, carrier_bytes: int | None = None
) -> list[operations.TopicSpec]:
    """Input and output, then the topics that carry whole input records (DLQ, retry)."""
    carriers = [topics.dead_letter, *([topics.retry] if retry_topic else [])]
    config = {operations.MAX_MESSAGE_BYTES: str(carrier_bytes)} if carrier_bytes else {}
    return [
        *(
            operations.TopicSpec(name, topics.partitions, topics.replication_factor)
            for name in (topics.input, topics.output)
        ),
        *(
            operations.TopicSpec(name, topics.partitions, topics.replication_factor, config)
            for name in carriers
        ),
    ]


async def provision(
    kafka: KafkaSettings, topics: TopicSettings, *, retry_topic: bool
) -> tuple[list[str], int]:
    """Create missing topics (or fail naming them); returns them and the largest record to publish.

    Dead letters and retry hops are the input record plus headers, so their topics must accept
    the input topic's limit plus ENVELOPE_HEADROOM_BYTES; existing ones are checked, not altered.
    """
    admin = AIOKafkaAdminClient(**client_kwargs(kafka))
    await admin.start()
    try:
        sources = topic_specs(topics, retry_topic=retry_topic)[:2]
        created = await operations.ensure_topics(admin, sources, create=topics.create)
        input_limit = (await operations.max_message_bytes(admin, [topics.input]))[topics.input]
        needed = input_limit + operations.ENVELOPE_HEADROOM_BYTES
        carriers = topic_specs(topics, retry_topic=retry_topic, carrier_bytes=needed)[2:]
        created += await operations.ensure_topics(admin, carriers, create=topics.create)
        limits = await operations.max_message_bytes(admin, [s.name for s in carriers])
        if problems := operations.too_small(limits, needed):
            raise ConfigurationError("; ".join(problems))
        return created, needed
    except MissingTopicsError as exc:
        raise ConfigurationError(f"{exc}; create them or set ORDER_SERVICE_TOPICS__CREATE=true") from None
    except TopicConfigError as exc:
        raise ConfigurationError(str(exc)) from None
    finally:
        await admin.close()


async def provision_topics(settings: Settings) -> list[str]:
    """Create the service's missing topics, or fail naming them when creation is disabled."""
    created, _ = await provision(settings.kafka, settings.topics, retry_topic=settings.retry.topic_enabled)
    return created

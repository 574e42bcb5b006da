"""The service's topics, provisioned at start."""

from aiokafka.admin import AIOKafkaAdminClient

from order_service.connection import client_kwargs
from order_service.messaging.topics import MissingTopicsError, TopicSpec, ensure_topics
from order_service.settings import Settings


def topic_specs(settings: Settings) -> list[TopicSpec]:
    topics = settings.topics
    names = [topics.input, topics.output, topics.dead_letter]
    if settings.retry.topic_enabled:
        names.append(topics.retry)
    return [TopicSpec(name, topics.partitions, topics.replication_factor) for name in names]


async def provision_topics(settings: Settings) -> list[str]:
    """Create the service's missing topics, or fail naming them when creation is disabled."""
    admin = AIOKafkaAdminClient(**client_kwargs(settings.kafka))
    await admin.start()
    try:
        return await ensure_topics(admin, topic_specs(settings), create=settings.topics.create)
    except MissingTopicsError as exc:
        raise MissingTopicsError(f"{exc}; create them or set ORDER_SERVICE_TOPICS__CREATE=true") from None
    finally:
        await admin.close()

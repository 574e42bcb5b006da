"""The service's topics, provisioned at start, sized so that any input record can be dead-lettered."""

from aiokafka.admin import AIOKafkaAdminClient

from order_service.connection import StartupError, client_kwargs
from order_service.messaging.topics import (
    ENVELOPE_HEADROOM_BYTES,
    MAX_MESSAGE_BYTES,
    MissingTopicsError,
    TopicConfigError,
    TopicSpec,
    ensure_topics,
    max_message_bytes,
    too_small,
)
from order_service.settings import Settings


def topic_specs(settings: Settings, *, carrier_bytes: int | None = None) -> list[TopicSpec]:
    """Input and output, then the topics that carry whole input records (DLQ, retry)."""
    topics = settings.topics
    carriers = [topics.dead_letter, *([topics.retry] if settings.retry.topic_enabled else [])]
    config = {MAX_MESSAGE_BYTES: str(carrier_bytes)} if carrier_bytes else {}
    return [
        *(
            TopicSpec(name, topics.partitions, topics.replication_factor)
            for name in (topics.input, topics.output)
        ),
        *(TopicSpec(name, topics.partitions, topics.replication_factor, config) for name in carriers),
    ]


async def provision(settings: Settings) -> tuple[list[str], int]:
    """Create missing topics (or fail naming them); returns them and the largest record to publish.

    Dead letters and retry hops are the input record plus headers, so their topics must accept
    the input topic's limit plus ENVELOPE_HEADROOM_BYTES; existing ones are checked, not altered.
    """
    admin = AIOKafkaAdminClient(**client_kwargs(settings.kafka))
    await admin.start()
    create = settings.topics.create
    try:
        sources = topic_specs(settings)[:2]
        created = await ensure_topics(admin, sources, create=create)
        needed = (await max_message_bytes(admin, [settings.topics.input]))[
            settings.topics.input
        ] + ENVELOPE_HEADROOM_BYTES
        carriers = topic_specs(settings, carrier_bytes=needed)[2:]
        created += await ensure_topics(admin, carriers, create=create)
        if problems := too_small(await max_message_bytes(admin, [s.name for s in carriers]), needed):
            raise StartupError("; ".join(problems))
        return created, needed
    except MissingTopicsError as exc:
        raise StartupError(f"{exc}; create them or set ORDER_SERVICE_TOPICS__CREATE=true") from None
    except TopicConfigError as exc:
        raise StartupError(str(exc)) from None
    finally:
        await admin.close()


async def provision_topics(settings: Settings) -> list[str]:
    """Create the service's missing topics, or fail naming them when creation is disabled."""
    created, _ = await provision(settings)
    return created

"""Topic provisioning at start: create what is missing when allowed, otherwise fail fast."""

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError, for_code

from kafka_delivery.errors import MissingTopicsError, TopicConfigError

MAX_MESSAGE_BYTES = "max.message.bytes"
# What a dead letter (or retry hop) adds to the original record: the dlq.* / retry.* headers,
# an error message of bounded length, and record-batch overhead; generously rounded up.
ENVELOPE_HEADROOM_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int
    config: dict[str, str] = field(default_factory=dict)


async def ensure_topics(admin: AIOKafkaAdminClient, specs: Sequence[TopicSpec], *, create: bool) -> list[str]:
    """Make sure every topic exists; returns the names it created."""
    existing = set(await admin.list_topics())
    missing = [spec for spec in specs if spec.name not in existing]
    if not missing:
        return []
    if not create:
        names = ", ".join(spec.name for spec in missing)
        raise MissingTopicsError(f"missing topics: {names} (topic creation is disabled)")
    response = await admin.create_topics(
        [NewTopic(s.name, s.partitions, s.replication_factor, topic_configs=s.config) for s in missing]
    )
    for name, code, *rest in response.topic_errors:
        # Another instance may have created it between our list and create calls.
        if code and for_code(code) is not TopicAlreadyExistsError:
            detail = rest[0] if rest and rest[0] else for_code(code).__name__
            raise MissingTopicsError(f"cannot create topic {name}: {detail}")
    return [spec.name for spec in missing]


async def max_message_bytes(
    admin: AIOKafkaAdminClient, topics: Sequence[str], *, timeout_s: float = 15.0
) -> dict[str, int]:
    """The largest record batch each topic accepts (its own setting, or the broker's default)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return await _max_message_bytes(admin, topics)
        except TopicConfigError as exc:
            # A topic just created is not known to every broker at once.
            if not exc.retriable or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def _max_message_bytes(admin: AIOKafkaAdminClient, topics: Sequence[str]) -> dict[str, int]:
    responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, t) for t in topics])
    limits: dict[str, int] = {}
    for response in responses:
        for code, message, _type, name, entries in response.resources:
            if code:
                error = for_code(code)
                raise TopicConfigError(
                    f"cannot describe topic {name}: {message or error.__name__}", retriable=error.retriable
                )
            limits.update((name, int(e[1])) for e in entries if e[0] == MAX_MESSAGE_BYTES)
    return limits


def too_small(limits: dict[str, int], needed: int) -> list[str]:
    """A line per topic whose limit is under `needed`, saying how to raise it."""
    return [
        f"topic {name} accepts records up to {limit} bytes but needs {needed}: raise it with "
        f"kafka-configs.sh --alter --entity-type topics --entity-name {name} "
        f"--add-config {MAX_MESSAGE_BYTES}={needed}"
        for name, limit in sorted(limits.items())
        if limit < needed
    ]

"""Topic provisioning at start: create what is missing when allowed, otherwise fail fast."""

from collections.abc import Sequence
from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code


class MissingTopicsError(RuntimeError):
    pass


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

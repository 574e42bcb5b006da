"""Topic provisioning against a fake admin client: what is created, and what stops the start."""

from types import SimpleNamespace

import pytest
from aiokafka.errors import (
    InvalidReplicationFactorError,
    TopicAlreadyExistsError,
    UnknownTopicOrPartitionError,
)

from kafka_delivery.errors import MissingTopicsError, TopicConfigError
from kafka_delivery.operations import topics as topics_module
from kafka_delivery.operations.topics import (
    MAX_MESSAGE_BYTES,
    TopicSpec,
    ensure_topics,
    max_message_bytes,
    too_small,
)
from tests.support.fakes import FakeAdmin

SPECS = [
    TopicSpec("in", 6, 3),
    TopicSpec("out", 6, 3),
    TopicSpec("in.dlq", 6, 3, config={MAX_MESSAGE_BYTES: "1114112"}),
]


async def test_missing_topics_are_created_with_their_partitions_replicas_and_config() -> None:
    admin = FakeAdmin({"in": {}})
    created = await ensure_topics(admin, SPECS, create=True)
    assert created == ["out", "in.dlq"]
    assert [(t.name, t.num_partitions, t.replication_factor, t.topic_configs) for t in admin.created] == [
        ("out", 6, 3, {}),
        ("in.dlq", 6, 3, {MAX_MESSAGE_BYTES: "1114112"}),
    ]
    assert await ensure_topics(admin, SPECS, create=True) == []


async def test_without_creation_the_missing_topics_are_named() -> None:
    admin = FakeAdmin({"in": {}})
    with pytest.raises(MissingTopicsError, match=r"out, in\.dlq"):
        await ensure_topics(admin, SPECS, create=False)
    assert admin.created == []


async def test_a_topic_created_meanwhile_by_another_instance_is_fine() -> None:
    admin = FakeAdmin({"in": {}, "in.dlq": {}})
    admin.create_errors["out"] = (TopicAlreadyExistsError.errno, "exists")
    assert await ensure_topics(admin, SPECS, create=True) == ["out"]


@pytest.mark.parametrize(
    ("message", "shown"),
    [
        ("replication factor 3 larger than 1 broker", "larger than 1 broker"),
        (None, "InvalidReplicationFactor"),
    ],
)
async def test_a_topic_that_cannot_be_created_stops_the_start(message: str | None, shown: str) -> None:
    admin = FakeAdmin({"in": {}, "in.dlq": {}})
    admin.create_errors["out"] = (InvalidReplicationFactorError.errno, message)
    with pytest.raises(MissingTopicsError, match=f"cannot create topic out: .*{shown}"):
        await ensure_topics(admin, SPECS, create=True)


async def test_max_message_bytes_reads_each_topics_limit() -> None:
    admin = FakeAdmin({"in": {MAX_MESSAGE_BYTES: "1048588"}, "in.dlq": {MAX_MESSAGE_BYTES: "1114112"}})
    limits = await max_message_bytes(admin, ["in", "in.dlq"])
    assert limits == {"in": 1048588, "in.dlq": 1114112}


async def test_a_topic_not_yet_known_everywhere_is_asked_again(monkeypatch: pytest.MonkeyPatch) -> None:
    async def no_wait(_: float) -> None:
        return None

    monkeypatch.setattr(topics_module, "asyncio", SimpleNamespace(sleep=no_wait))
    admin = FakeAdmin({"in": {MAX_MESSAGE_BYTES: "1000"}})
    admin.describe_errors["in"] = [(UnknownTopicOrPartitionError.errno, None)] * 2
    assert await max_message_bytes(admin, ["in"]) == {"in": 1000}


async def test_describe_errors_that_retrying_cannot_fix_or_that_last_are_raised() -> None:
    admin = FakeAdmin({"in": {}})
    admin.describe_errors["in"] = [(29, "not authorized")]  # TopicAuthorizationFailed, not retriable
    with pytest.raises(TopicConfigError, match="cannot describe topic in: not authorized") as raised:
        await max_message_bytes(admin, ["in"])
    assert not raised.value.retriable

    admin.describe_errors["in"] = [(UnknownTopicOrPartitionError.errno, None)] * 1000
    with pytest.raises(TopicConfigError, match="UnknownTopicOrPartitionError"):
        await max_message_bytes(admin, ["in"], timeout_s=0.0)


def test_too_small_says_how_to_raise_each_limit() -> None:
    lines = too_small({"in.retry": 900, "in.dlq": 1000, "ok": 5000}, needed=1000 + 1)
    assert len(lines) == 2
    assert lines[0].startswith("topic in.dlq accepts records up to 1000 bytes but needs 1001")
    assert "--entity-name in.dlq --add-config max.message.bytes=1001" in lines[0]
    assert "in.retry" in lines[1]
    assert too_small({"in": 1000}, needed=1000) == []

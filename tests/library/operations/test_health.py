"""Readiness decisions and group membership, over a fake cluster client (no broker)."""

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import KafkaConnectionError, MessageSizeTooLargeError, TopicAuthorizationFailedError
from prometheus_client import CollectorRegistry

from kafka_delivery.engine.backoff import PartitionBackoff
from kafka_delivery.operations.health import Readiness, ReadinessProbe
from kafka_delivery.operations.membership import GroupMembership
from kafka_delivery.operations.metrics import PipelineMetrics
from tests.support.fakes import FakeClient, sample

GROUP = "g"
TP0 = TopicPartition("in", 0)
TP1 = TopicPartition("in", 1)
TOPICS = {"in": 2, "out": 2}


class Clients:
    """Builds the probe's client; counts how often a new one was needed."""

    def __init__(self, **kwargs: object) -> None:
        self._kwargs = kwargs
        self.built: list[FakeClient] = []

    def __call__(self) -> FakeClient:
        client = FakeClient(
            topics=TOPICS,
            leaders={TP0: 1, TP1: 2},
            coordinators={(0, GROUP): 3, (1, "txn-0"): 4},
        )
        self.built.append(client)
        return client

    @property
    def last(self) -> FakeClient:
        return self.built[-1]


def membership(registry: CollectorRegistry | None = None, **parts: Any) -> GroupMembership:
    return GroupMembership(PipelineMetrics(registry or CollectorRegistry(), "t"), GROUP, **parts)


async def joined(*assigned: TopicPartition) -> GroupMembership:
    m = membership()
    await m.on_partitions_assigned(set(assigned))
    return m


def probe(
    clients: Clients,
    memberships: list[GroupMembership],
    *,
    blocked: Callable[[], Mapping[TopicPartition, str]] = dict,
    tolerance_s: float = 0.0,
    cache_s: float = 0.0,
) -> ReadinessProbe:
    return ReadinessProbe(
        clients,
        topics=["in", "out"],
        memberships=memberships,
        blocked=blocked,
        transactional_ids=lambda: ["txn-0"],
        cache_s=cache_s,
        tolerance_s=tolerance_s,
    )


async def test_a_consumer_not_in_its_group_is_not_ready_without_asking_the_cluster() -> None:
    clients = Clients()
    result = await probe(clients, [membership()]).check()
    assert not result.ready
    assert GROUP in result.reason
    assert clients.built == []


async def test_blocked_partitions_make_the_service_not_ready_and_are_listed() -> None:
    backoff = PartitionBackoff(metrics=PipelineMetrics(CollectorRegistry(), "t"), base_ms=1, max_ms=1)
    backoff.failed(None, TP1, 9, TopicAuthorizationFailedError())
    backoff.failed(None, TP0, 3, MessageSizeTooLargeError())
    clients = Clients()

    check = probe(
        clients,
        [await joined(TP0, TP1)],
        blocked=lambda: {tp: f"offset {b.offset}: {b.reason}" for tp, b in backoff.blocked.items()},
    )
    result = await check.check()

    assert not result.ready
    assert result.blocked == ("in-0: offset 3: record_too_large", "in-1: offset 9: not_authorized")
    assert clients.built == []

    backoff.succeeded(TP0, 4)
    backoff.succeeded(TP1, 10)
    assert (await check.check()).ready


async def test_a_joined_consumer_whose_cluster_answers_is_ready_and_the_client_is_reused() -> None:
    clients = Clients()
    check = probe(clients, [await joined(TP0, TP1)])
    assert await check.check() == Readiness(True, "ok")
    assert await check.check() == Readiness(True, "ok")
    assert len(clients.built) == 1
    assert clients.last.bootstrapped
    assert clients.last.metadata_requests == 2
    await check.stop()
    assert clients.last.closed


async def test_an_empty_assignment_is_joined_too() -> None:
    assert (await probe(Clients(), [await joined()]).check()).ready


async def test_a_missing_topic_is_named() -> None:
    clients = Clients()
    check = probe(clients, [await joined(TP0)])
    await check.check()
    del clients.last.cluster.topics["out"]
    result = await check.check()
    assert not result.ready
    assert "out" in result.reason


async def test_the_leader_of_an_assigned_partition_must_answer() -> None:
    clients = Clients()
    check = probe(clients, [await joined(TP0)])
    await check.check()

    clients.last.down.add(2)  # leads TP1, which is not ours
    assert (await check.check()).ready

    clients.last.down.add(1)  # leads TP0
    result = await check.check()
    assert not result.ready
    assert "in-0" in result.reason

    clients.last.down.clear()
    clients.last.cluster.leaders[TP0] = -1  # no leader elected
    assert not (await check.check()).ready


async def test_the_group_and_transaction_coordinators_must_answer() -> None:
    clients = Clients()
    check = probe(clients, [await joined(TP0)])
    await check.check()
    clients.last.down.add(3)
    result = await check.check()
    assert not result.ready
    assert GROUP in result.reason

    clients.last.down = {4}
    result = await check.check()
    assert not result.ready
    assert "txn-0" in result.reason


async def test_a_cluster_that_does_not_answer_drops_the_client_and_the_next_check_builds_one() -> None:
    clients = Clients()
    check = probe(clients, [await joined(TP0)])
    await check.check()
    first = clients.last
    first.metadata_errors.append(KafkaConnectionError())

    result = await check.check()

    assert not result.ready
    assert "KafkaConnectionError" in result.reason
    assert first.closed
    assert (await check.check()).ready
    assert len(clients.built) == 2


async def test_a_cluster_failure_shorter_than_the_tolerance_keeps_the_service_ready() -> None:
    clients = Clients()
    check = probe(clients, [await joined(TP0)], tolerance_s=0.05)
    await check.check()
    clients.last.down.add(1)

    assert (await check.check()).ready  # a failover in progress
    await asyncio.sleep(0.06)
    assert not (await check.check()).ready

    clients.last.down.clear()
    assert (await check.check()).ready
    clients.last.down.add(1)
    assert (await check.check()).ready  # the clock started again after the recovery


async def test_results_are_cached_for_a_moment() -> None:
    m = membership()
    check = probe(Clients(), [m], cache_s=60)
    assert not (await check.check()).ready
    await m.on_partitions_assigned({TP0})
    assert not (await check.check()).ready


class Recording:
    """A pipeline's two rebalance methods, recording their calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, set[TopicPartition]]] = []

    async def revoked(self, revoked: set[TopicPartition]) -> None:
        self.calls.append(("revoked", revoked))

    async def assigned(self, assigned: set[TopicPartition]) -> None:
        self.calls.append(("assigned", assigned))


async def test_group_membership_tracks_the_assignment_and_hands_both_events_to_the_pipeline() -> None:
    registry = CollectorRegistry()
    pipeline = Recording()
    baselines: list[set[TopicPartition]] = []

    async def baseline(partitions: set[TopicPartition]) -> None:
        baselines.append(partitions)

    m = membership(registry, on_assigned=pipeline.assigned, on_revoked=pipeline.revoked, baseline=baseline)
    assert not m.joined

    await m.on_partitions_assigned({TP0, TP1})
    assert m.joined
    assert m.assigned == {TP0, TP1}
    assert sample(registry, "t_assigned_partitions", group=GROUP) == 2
    assert sample(registry, "t_rebalances_total") == 1
    assert baselines == [{TP0, TP1}]

    await m.on_partitions_revoked({TP1})
    assert m.assigned == {TP0}
    assert pipeline.calls == [("assigned", {TP0, TP1}), ("revoked", {TP1})]

    await m.on_partitions_assigned({TP0})
    assert sample(registry, "t_assigned_partitions", group=GROUP) == 1
    assert sample(registry, "t_rebalances_total") == 2


async def test_a_failed_baseline_does_not_fail_the_assignment() -> None:
    async def baseline(partitions: set[TopicPartition]) -> None:
        raise KafkaConnectionError()

    m = membership(baseline=baseline)
    await m.on_partitions_assigned({TP0})
    assert m.joined
    assert m.assigned == {TP0}

"""Group membership: a rebalance listener that knows whether the consumer is in its group and which
partitions it holds, for readiness, supervision and the lag metric."""

import logging
from collections.abc import Awaitable, Callable

from aiokafka import ConsumerRebalanceListener, TopicPartition

from kafka_delivery.operations.metrics import PipelineMetrics

logger = logging.getLogger(__name__)


Rebalance = Callable[[set[TopicPartition]], Awaitable[None]]


class GroupMembership(ConsumerRebalanceListener):  # type: ignore[misc]
    """The one rebalance listener of a subscription: tracks whether the consumer is a member of its
    group, and hands both events to the pipeline (`on_assigned`, `on_revoked`: the engine's own
    methods); `baseline` reads the offsets of new partitions (for the lag metric)."""

    def __init__(
        self,
        metrics: PipelineMetrics,
        group: str,
        *,
        on_assigned: Rebalance | None = None,
        on_revoked: Rebalance | None = None,
        baseline: Rebalance | None = None,
    ) -> None:
        self._metrics = metrics
        self._group = self.group = group
        self._on_assigned = on_assigned
        self._on_revoked = on_revoked
        self.baseline = baseline
        self.joined = False
        self.assigned: frozenset[TopicPartition] = frozenset()
        # A series before the first assignment: none yet, and none while the consumer never joins.
        metrics.assigned.labels(group).set(0)

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self.assigned = self.assigned - revoked
        if self._on_revoked is not None:
            await self._on_revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        # Called after every successful join, also with an empty assignment.
        self.joined = True
        self.assigned = frozenset(assigned)
        self._metrics.rebalances.inc()
        self._metrics.assigned.labels(self._group).set(len(assigned))
        if self._on_assigned is not None:
            await self._on_assigned(assigned)
        if self.baseline is not None:
            try:
                await self.baseline(assigned)
            except Exception as exc:  # noqa: BLE001 - lag shows once the first fetch or commit lands
                logger.warning("could not read the offsets of %s: %r", self._group, exc)

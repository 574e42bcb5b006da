"""Rebalance listeners of the pipelines: drain the in-flight batch, or hand the events over."""

import asyncio
from collections.abc import Awaitable, Callable

from aiokafka import ConsumerRebalanceListener, TopicPartition


class DrainBeforeRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(
        self, in_flight: asyncio.Lock, *, on_revoked: Callable[[set[TopicPartition]], None] | None = None
    ) -> None:
        self._in_flight = in_flight
        self._on_revoked = on_revoked

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        # aiokafka awaits this before rejoining, so the batch commits under the old generation.
        async with self._in_flight:
            if self._on_revoked is not None:
                self._on_revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        pass


class Callbacks(ConsumerRebalanceListener):  # type: ignore[misc]
    """A listener that hands both events to a pipeline's own methods."""

    def __init__(
        self,
        *,
        on_assigned: Callable[[set[TopicPartition]], Awaitable[None]],
        on_revoked: Callable[[set[TopicPartition]], Awaitable[None]],
    ) -> None:
        self._on_assigned = on_assigned
        self._on_revoked = on_revoked

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._on_revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self._on_assigned(assigned)

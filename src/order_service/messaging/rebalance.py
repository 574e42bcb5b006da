"""Rebalance listener that lets the in-flight batch finish and commit before partitions move."""

import asyncio
from collections.abc import Callable

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

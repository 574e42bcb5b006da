"""Rebalance listener that lets the in-flight batch finish and commit before partitions move."""

from collections.abc import Awaitable, Callable

from aiokafka import ConsumerRebalanceListener, TopicPartition


class DrainBeforeRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, drain: Callable[[], Awaitable[None]]) -> None:
        self._drain = drain

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        # aiokafka awaits this before rejoining, so the commit happens under the old generation.
        await self._drain()

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        pass

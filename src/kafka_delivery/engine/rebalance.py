"""The rebalance listener of the delivery engine: hands both events over."""

from collections.abc import Awaitable, Callable

from aiokafka import ConsumerRebalanceListener, TopicPartition


class RebalanceCallbacks(ConsumerRebalanceListener):  # type: ignore[misc]
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

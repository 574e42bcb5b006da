"""One transactional producer per input partition: EOS v1 zombie fencing.

aiokafka's send_offsets_to_transaction carries no group generation (no KIP-447), so a stale
instance could commit offsets for a partition it lost. With a transactional.id derived from the
input partition, the new owner's init_transactions bumps the epoch of that id: the old owner's
producer is fenced, and its open transaction is aborted before the new owner reads offsets.
This is the design of Kafka's EOS v1 and of its TransactionalMessageCopier.

Each producer is handed out in a transaction, ready to publish into, with its batches (batches.py).
"""

import asyncio
from collections.abc import Callable, Iterable

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import ProducerClosed

from kafka_delivery.producing.batches import Batches


def transactional_id(app_id: str, tp: TopicPartition) -> str:
    return f"{app_id}-{tp.topic}-{tp.partition}"


class PartitionProducers:
    def __init__(
        self,
        build: Callable[[str], AIOKafkaProducer],
        *,
        app_id: str,
        topics: Iterable[str] = (),
        linger_ms: int = 0,
    ) -> None:
        self._build = build
        self._app_id = app_id
        self._topics = tuple(topics)
        self._linger_s = linger_ms / 1000
        self._producers: dict[TopicPartition, AIOKafkaProducer] = {}
        self._batches: dict[TopicPartition, Batches] = {}

    def __getitem__(self, tp: TopicPartition) -> AIOKafkaProducer:
        return self._producers[tp]

    def batches(self, tp: TopicPartition) -> Batches:
        """The batches of the partition's producer (KeyError when it has none)."""
        return self._batches[tp]

    def __contains__(self, tp: object) -> bool:
        return tp in self._producers

    def transactional_ids(self) -> list[str]:
        return [transactional_id(self._app_id, tp) for tp in self._producers]

    async def open(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, BaseException]:
        """Start (and so fence any previous owner of) a producer for each partition; returns failures."""
        wanted = [tp for tp in partitions if tp not in self._producers]
        results = await asyncio.gather(*(self._open(tp) for tp in wanted), return_exceptions=True)
        return {tp: r for tp, r in zip(wanted, results, strict=True) if isinstance(r, BaseException)}

    async def _open(self, tp: TopicPartition) -> None:
        producer = self._build(transactional_id(self._app_id, tp))
        try:
            await producer.start()
            # The producer id is fetched lazily; waiting for it completes the fencing now.
            await producer._txn_manager.wait_for_pid()
            batches = Batches(producer, linger_s=self._linger_s)
            await batches.learn(self._topics)
            await producer.begin_transaction()
        except BaseException:
            await producer.stop()
            raise
        # Two opens of one partition at once: the later one fenced the earlier, which is closed.
        old, self._producers[tp] = self._producers.get(tp), producer
        old_batches, self._batches[tp] = self._batches.get(tp), batches
        if old_batches is not None:
            await old_batches.close(ProducerClosed())
        if old is not None:
            await old.stop()

    async def close(self, partitions: Iterable[TopicPartition]) -> None:
        partitions = [tp for tp in partitions if tp in self._producers]
        closing = [self._producers.pop(tp) for tp in partitions]
        for tp in partitions:
            if (batches := self._batches.pop(tp, None)) is not None:
                await batches.close(ProducerClosed())
        await asyncio.gather(*(p.stop() for p in closing), return_exceptions=True)

    async def recreate(self, tp: TopicPartition) -> None:
        """Replace a producer whose transaction outcome is unknown; the new one resolves it."""
        await self.close([tp])
        await self._open(tp)

    async def close_all(self) -> None:
        await self.close(list(self._producers))

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
        close_wait_s: float = 30.0,
    ) -> None:
        self._build = build
        self._close_wait_s = close_wait_s
        self._app_id = app_id
        self._topics = tuple(topics)
        self._linger_s = linger_ms / 1000
        self._producers: dict[TopicPartition, AIOKafkaProducer] = {}
        self._batches: dict[TopicPartition, Batches] = {}
        # Per partition: how often it was closed, and the opens in flight. An open that a close
        # overtook must not land, and the close waits for it to end. Found by make chaos scenario
        # 11 (a 30 s blackhole to the transaction coordinator, exactly-once): a producer re-created
        # after a timed-out commit got its producer id *after* the expelled instance had revoked
        # the partition and another had taken it over; stored anyway, it fenced the new owner and
        # was handed out again when the partition came back, already fenced itself: the partition
        # then stopped for good ("fenced: another instance owns the partition now", while none did).
        self._closes: dict[TopicPartition, int] = {}
        self._in_flight: dict[TopicPartition, set[asyncio.Future[None]]] = {}

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
        closes = self._closes.get(tp, 0)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._in_flight.setdefault(tp, set()).add(done)
        try:
            await self._start(tp, closes)
        finally:
            self._in_flight[tp].discard(done)
            done.set_result(None)

    async def _start(self, tp: TopicPartition, closes: int) -> None:
        producer = self._build(transactional_id(self._app_id, tp))
        try:
            await producer.start()
            # The producer id is fetched lazily; waiting for it completes the fencing now.
            await producer._txn_manager.wait_for_pid()
            batches = Batches(producer, linger_s=self._linger_s)
            await batches.learn(self._topics)
            await producer.begin_transaction()
            if self._closes.get(tp, 0) != closes:  # closed (revoked) while it opened
                raise ProducerClosed()
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
        """Stop the partitions' producers, once the opens of them in flight have ended (none of
        them lands; waited for at most `close_wait_s`): on return, no producer of these partitions
        can fence anyone any more, so a next owner's producer, opened later, is the newest."""
        partitions = list(partitions)
        for tp in partitions:
            self._closes[tp] = self._closes.get(tp, 0) + 1
        opening = [done for tp in partitions for done in self._in_flight.get(tp, ())]
        if opening:
            # Bounded: an open that outlasts it still never lands (it checks the closes).
            await asyncio.wait(opening, timeout=self._close_wait_s)
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

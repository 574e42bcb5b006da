"""Output records into the producer's batches, without aiokafka's per-record `send`.

aiokafka's `send` costs about 20 µs a record in Python (a metadata wait, the partitioner, the
accumulator's loop, a future per record). Here a record costs its partition (murmur2) and an append
to a batch builder (C): about 4 µs. Each batch gets one future, resolved when the broker acks it.

A topic-partition has one open batch. A task hands it to the producer (`send_batch`); while the
producer still holds the previous batch of that partition, the open one keeps filling. Once handed
over, a batch is closed: records after it start the next one. So a partition's batches reach the
producer in the order their records were appended, and a busy producer gets larger batches, as its
own accumulator would make them.

No gaps. A batch that fails (the producer refuses it, or the broker does) takes the partition's
batches after it down with it, and records appended to the partition fail at once until the
failure's callbacks have run: whoever appended a record to the failed batch hears of it before
anything it appended later can reach the log. Otherwise a later batch could be written while the
failed one is sent again after it, out of order (at-least-once would publish outputs out of input
order). One gap remains beyond reach: a batch the producer already holds when the batch before it
fails for good, which an idempotent producer only does on errors it cannot retry.
"""

import asyncio
import copy
import random
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError, ProducerClosed, UnknownTopicOrPartitionError
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from murmurhash2 import murmurhash2

from kafka_delivery.producing.partitioner import SEED
from kafka_delivery.types import OutgoingRecord

_estimate = DefaultRecordBatchBuilder.estimate_size_in_bytes


@dataclass(slots=True, eq=False)
class _Batch:
    topic: str
    partition: int
    builder: Any  # aiokafka's BatchBuilder (untyped)
    acked: "asyncio.Future[Any]"
    handing: bool = False  # being handed to the producer: it decides what becomes of it now


class Batches:
    """One producer's open batches; `append` is synchronous, the hand-over is the tasks' own."""

    def __init__(
        self,
        producer: AIOKafkaProducer,
        *,
        linger_s: float = 0.0,
        on_failure: Callable[[BaseException], None] | None = None,
    ) -> None:
        self._producer = producer
        self._linger_s = linger_s
        self._on_failure = on_failure
        # Each topic's partitions in order (the partitioner's list), from the producer's metadata.
        self._partitions: dict[str, list[int]] = {}
        # Per partition, the batches not handed to the producer yet; the last one is open.
        self._open: dict[str, dict[int, deque[_Batch]]] = {}
        self._handing: dict[tuple[str, int], asyncio.Task[None]] = {}
        self._learning: dict[str, asyncio.Task[None]] = {}
        # Partitions a batch of which failed, until the failure's callbacks ran: the last failure.
        self._broken: dict[tuple[str, int], BaseException] = {}
        self._settled = asyncio.Event()
        self._settled.set()
        self._max_request_bytes: int = producer._max_request_size  # send() checks it too
        self._closed = False

    async def learn(self, topics: Iterable[str]) -> None:
        """Wait for the topics' metadata, each bounded by the request timeout (as `send` is): the
        topics a service writes to are known before its first record."""
        for topic in topics:
            await self._learn(topic)

    async def _learn(self, topic: str) -> None:
        await self._producer.client._wait_on_metadata(topic)  # what send() awaits
        self._refresh(topic)

    def _unknown(self, topic: str) -> BaseException:
        """Why a record for `topic` cannot be appended yet; its metadata is fetched meanwhile (the
        record is retried after its partition's backoff)."""
        if (learning := self._learning.pop(topic, None)) is not None and learning.done():
            failure: BaseException | None = None if learning.cancelled() else learning.exception()
            if failure is not None:
                return failure  # e.g. not authorized: the caller sees the broker's answer
        if learning is None or learning.done():
            learning = asyncio.create_task(self._learn(topic))
        self._learning[topic] = learning
        unknown: BaseException = UnknownTopicOrPartitionError(f"no metadata for {topic} yet; fetching it")
        return unknown

    def _refresh(self, topic: str) -> bool:
        partitions = self._producer.client.cluster.partitions_for_topic(topic)
        if not partitions:
            return False
        self._partitions[topic] = sorted(partitions)
        self._open.setdefault(topic, {})
        return True

    def append(self, record: OutgoingRecord) -> "asyncio.Future[Any]":
        """Add `record` to its partition's open batch; the future resolves when that batch is acked."""
        if self._closed:
            raise RuntimeError("the producer's batches are closed")
        topic, key, value, headers = record.topic, record.key, record.value, record.headers
        if (size := _estimate(key, value, headers)) > self._max_request_bytes:
            raise MessageSizeTooLargeError(
                f"the record is {size} bytes when serialized, more than the producer's maximum "
                f"request size of {self._max_request_bytes} bytes"
            )
        partitions = self._partitions.get(topic)
        if partitions is None:
            if not self._refresh(topic):  # not in the producer's metadata either
                raise self._unknown(topic)
            partitions = self._partitions[topic]
        if key is None:
            partition = random.choice(partitions)
        else:
            partition = partitions[(murmurhash2(key, SEED) & 0x7FFFFFFF) % len(partitions)]
        if self._broken and (broken := self._broken.get((topic, partition))) is not None:
            raise copy.copy(broken)
        queue = self._open[topic].get(partition)
        if queue:
            batch = queue[-1]
            if batch.builder.append(timestamp=None, key=key, value=value, headers=headers) is not None:
                return batch.acked
        builder = self._producer.create_batch()
        # The first record of a batch always fits: a batch is as large as its largest record.
        builder.append(timestamp=None, key=key, value=value, headers=headers)
        batch = _Batch(topic, partition, builder, asyncio.get_running_loop().create_future())
        if queue is None:
            queue = self._open[topic][partition] = deque()
        queue.append(batch)
        if (topic, partition) not in self._handing:
            self._settled.clear()
            self._handing[topic, partition] = asyncio.create_task(self._hand_over(topic, partition, queue))
        return batch.acked

    async def _hand_over(self, topic: str, partition: int, queue: "deque[_Batch]") -> None:
        """Hand the partition's batches to the producer, one after the other, in order."""
        try:
            if self._linger_s:
                await asyncio.sleep(self._linger_s)
            while queue:
                batch = queue[0]
                batch.handing = True
                try:
                    # Waits while the producer holds the partition's previous batch; this one fills meanwhile.
                    acked = await self._producer.send_batch(batch.builder, topic, partition=partition)
                except Exception as exc:  # noqa: BLE001 - the batch's records are failed, not lost silently
                    self._fail(batch, exc)
                except asyncio.CancelledError:
                    self._fail(batch, ProducerClosed())
                    raise
                else:
                    acked.add_done_callback(lambda done, batch=batch: self._settle(batch, done))
                finally:
                    batch.builder.close()
                    queue.popleft()
            self._refresh(topic)
        finally:
            del self._handing[topic, partition]
            if not self._handing:
                self._settled.set()

    def _settle(self, batch: _Batch, done: "asyncio.Future[Any]") -> None:
        if done.cancelled():
            self._fail(batch, asyncio.CancelledError())
        elif (exc := done.exception()) is not None:
            self._fail(batch, exc)
        elif not batch.acked.done():
            batch.acked.set_result(None)

    def _fail(self, batch: _Batch, exc: BaseException) -> None:
        self._reject(batch, exc)
        if isinstance(exc, Exception) and not isinstance(exc, ProducerClosed):
            self._break(batch.topic, batch.partition, exc)
        if self._on_failure is not None:
            self._on_failure(exc)

    @staticmethod
    def _reject(batch: _Batch, exc: BaseException) -> None:
        if not batch.acked.done():
            batch.acked.set_exception(exc)
            batch.acked.exception()  # read: a batch nobody waits for any more must not warn

    def _break(self, topic: str, partition: int, exc: BaseException) -> None:
        """A batch of the partition failed: so do the batches after it not handed over yet, and
        the records appended to it until the failure's callbacks ran (see the module docstring)."""
        queue = self._open.get(topic, {}).get(partition)
        if queue:
            for batch in [b for b in queue if not b.handing]:
                queue.remove(batch)
                batch.builder.close()
                self._reject(batch, exc)
        key = (topic, partition)
        self._broken[key] = exc
        # After the callbacks the failed futures just scheduled (asyncio runs them in order).
        asyncio.get_running_loop().call_soon(self._mend, key, exc)

    def _mend(self, key: tuple[str, int], exc: BaseException) -> None:
        if self._broken.get(key) is exc:  # else a later failure's own mend comes after this one
            del self._broken[key]

    async def flush(self) -> None:
        """Until every record appended so far is in the producer's hands (not yet acked)."""
        while not self._settled.is_set():
            await self._settled.wait()

    async def close(self, error: BaseException) -> None:
        """Stop handing over; the records not handed over yet fail with `error`."""
        self._closed = True
        tasks = [*self._handing.values(), *self._learning.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for queues in self._open.values():
            for queue in queues.values():
                for batch in queue:
                    self._reject(batch, error)
                queue.clear()

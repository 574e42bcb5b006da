"""Reading partitions over offset ranges: `scan`.

A scan hands each partition's records in `[start, end)` to its topic's handler, in log order, with
the reading toolkit's `read_to_end`; reading that makes no progress raises `KafkaUnreachable`
(tools/bounded_calls.py `stalled`), whose message is the one line to show.
"""

from collections.abc import Callable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from kafka_delivery.tools.bounded_calls import stalled
from kafka_delivery.tools.reading import read_to_end

Progress = Callable[[int, int], None]  # offsets read so far, offsets to read


async def scan(
    consumer: AIOKafkaConsumer,
    bounds: Mapping[TopicPartition, tuple[int, int]],
    handlers: Mapping[str, Callable[[Any], None]],
    timeout: float,
    progress: Progress | None,
) -> None:
    """Hand the records of each partition in `[start, end)` to its topic's handler, in log order.

    `KafkaUnreachable` when no partition moved for `timeout` seconds (reading.read_to_end).
    """
    total = sum(end - start for start, end in bounds.values())
    ends = {tp: end for tp, (start, end) in bounds.items() if start < end}
    reached = {tp: start for tp, (start, _) in bounds.items()}
    for tp in ends:
        consumer.seek(tp, bounds[tp][0])
    if idle := [tp for tp in bounds if tp not in ends]:
        consumer.pause(*idle)
    done = 0
    if progress is not None:
        progress(done, total)
    try:
        async for records in read_to_end(consumer, ends, stall_timeout_s=timeout):
            if not records:
                continue
            handle = handlers[records[0].topic]
            for record in records:
                handle(record)
            # Positions, not records, tell how far a partition is: transaction markers and
            # aborted records take offsets that no record is returned for.
            tp = TopicPartition(records[0].topic, records[0].partition)
            position = min(await consumer.position(tp), ends[tp])
            done += position - reached[tp]
            reached[tp] = position
            if position >= ends[tp]:
                consumer.pause(tp)  # read_to_end no longer asks for it; nor should the fetcher
            if progress is not None:
                progress(done, total)
    except TimeoutError:
        raise await stalled(consumer, ends, timeout) from None
    if progress is not None:
        progress(total, total)

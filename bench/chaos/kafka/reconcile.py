"""Our own check of a chaos run by order id, for when `order_service.cli.verify` cannot run: a row
must still say what was lost, repeated or reordered, rather than only that it was not checked."""

import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.chaos.kafka.clients import CALL_TIMEOUT_S, hosts
from kafka_delivery.tools import close, within


@dataclass
class KeyReport:
    inputs: int = 0
    outputs: int = 0
    dead_letters: int = 0
    missing: int = 0
    duplicates: int = 0
    order_violations: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "result": "fallback",
            "counts": {
                "inputs": self.inputs,
                "processed": self.outputs,
                "dead_lettered": self.dead_letters,
                "missing": self.missing,
                "duplicates": self.duplicates,
                "unmatched": 0,
                "order_violations": self.order_violations,
            },
            "records_read": {"input": self.inputs, "output": self.outputs, "dead_letter": self.dead_letters},
        }


async def read_whole(bootstrap: str, topic: str) -> list[Any]:
    """Every committed record of `topic` up to its end offsets at the start (read_committed)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=hosts(bootstrap),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    records: list[Any] = []
    try:
        await within(consumer.start(), 30)
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not tps:
            await within(consumer._client.force_metadata_update(), 30)
            tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await within(consumer.end_offsets(tps), 30)
        remaining = {tp for tp in tps if ends[tp] > 0}
        moved = time.monotonic()
        while remaining:
            batches = await within(consumer.getmany(*remaining, timeout_ms=500, max_records=20_000), 30)
            for batch in batches.values():
                records.extend(r for r in batch if r.offset < ends[TopicPartition(r.topic, r.partition)])
                moved = time.monotonic()
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
            if time.monotonic() - moved > 60:
                raise TimeoutError(f"no progress reading {topic} for 60s")
    finally:
        await close(consumer, CALL_TIMEOUT_S)
    return records


async def reconcile_by_key(bootstrap: str, input_topic: str, output: str, dead_letter: str) -> KeyReport:
    """Our own check when `order_service.cli.verify` cannot run: every input key (order id) must have as
    many outcomes (output or dead letter, read_committed) as it has input records, and per output
    partition the first outcomes of one input partition must follow input order."""
    inputs = await read_whole(bootstrap, input_topic)
    outcomes = {name: await read_whole(bootstrap, name) for name in (output, dead_letter)}
    report = KeyReport(
        inputs=len(inputs), outputs=len(outcomes[output]), dead_letters=len(outcomes[dead_letter])
    )
    wanted: Counter[bytes] = Counter(r.key for r in inputs)
    where: dict[bytes, tuple[int, int]] = {}
    for r in inputs:
        where.setdefault(r.key, (r.partition, r.offset))
    got: Counter[bytes] = Counter(r.key for records in outcomes.values() for r in records)
    report.missing = sum(max(0, n - got[k]) for k, n in wanted.items())
    report.duplicates = sum(max(0, n - wanted[k]) for k, n in got.items())
    for records in outcomes.values():
        highest: dict[tuple[int, int], int] = {}
        seen: set[bytes] = set()
        for r in sorted(records, key=lambda r: (r.partition, r.offset)):
            if r.key in seen or r.key not in where:
                continue
            seen.add(r.key)
            in_partition, in_offset = where[r.key]
            lane = (r.partition, in_partition)
            if in_offset < highest.get(lane, -1):
                report.order_violations += 1
            highest[lane] = max(highest.get(lane, -1), in_offset)
    return report

"""Exactly-once mode under crashes, failover and zombies: every input comes out once, in order."""

import asyncio
import json
import signal
from collections import Counter
from collections.abc import Callable

from order_service.cli.samples import malformed_corpus
from tests.support.kafka import committed_and_end_offsets, produce, read_all, wait_all_committed
from tests.support.orders import Record, keys, valid_orders
from tests.support.service import SHORT_SESSION, ServiceProcess, ServiceTopics
from tests.support.waiting import eventually

Service = Callable[..., ServiceProcess]
EOS = {
    "delivery__guarantee": "exactly_once",
    "consumer__max_batch_records": "100",
    **SHORT_SESSION,
}


def orders_with_invalid(count: int, prefix: str) -> list[Record]:
    records = valid_orders(count, prefix=prefix)
    corpus = malformed_corpus()
    for i in range(0, count, 97):
        bad = corpus[i % len(corpus)]
        records[i] = (f"{prefix}-bad-{i}".encode(), bad.value, [])
    return records


async def committed_progress(kafka: str, topics: ServiceTopics) -> int:
    committed, _ = await committed_and_end_offsets(kafka, topics.input, topics.group)
    return sum(offset or 0 for offset in committed.values())


async def wait_progress(kafka: str, topics: ServiceTopics, at_least: int, timeout: float = 120) -> int:
    return await eventually(
        lambda: committed_progress(kafka, topics),
        until=lambda n: n >= at_least,
        timeout=timeout,
        interval=0.05,
        what=f"{at_least} input records committed",
    )


async def assert_exactly_once_in_order(kafka: str, topics: ServiceTopics, inputs: list[Record]) -> None:
    await wait_all_committed(kafka, topics.input, topics.group, timeout=120)
    invalid = {key for key in keys(inputs) if "-bad-" in key}
    valid = set(keys(inputs)) - invalid
    processed = await read_all(kafka, topics.output, expected=len(inputs) - len(invalid))
    dead = await read_all(kafka, topics.dead_letter, expected=len(invalid))
    outputs = Counter(keys([(r.key, r.value, []) for r in [*processed, *dead]]))
    duplicates = {key: n for key, n in outputs.items() if n > 1}
    print(f"read_committed: {len(processed)} processed + {len(dead)} dead letters for {len(inputs)} inputs")
    assert duplicates == {}
    assert set(outputs) == valid | invalid
    assert len(processed) + len(dead) == len(inputs)
    source = await read_all(kafka, topics.input, expected=len(inputs))
    valid_by_partition: dict[int, list[str]] = {}
    for record in source:
        [key] = keys([(record.key, record.value, [])])
        if key not in invalid:
            valid_by_partition.setdefault(record.partition, []).append(key)
    out_by_partition: dict[int, list[str]] = {}
    for record in processed:
        out_by_partition.setdefault(record.partition, []).append(json.loads(record.value)["order_id"])
    assert out_by_partition == valid_by_partition, "per-key (and per-partition) order preserved"


async def test_three_crashes_leave_exactly_one_output_per_input(
    kafka: str, topics: ServiceTopics, service: Service
) -> None:
    inputs = orders_with_invalid(20_000, "eos")
    await produce(kafka, topics.input, inputs)
    instance = service(**EOS)
    done = 0
    for crash in range(3):
        instance.start()
        done = await wait_progress(kafka, topics, max(done + 1, len(inputs) * (crash + 1) // 5))
        instance.kill()
        print(f"crash {crash + 1}: SIGKILL after {done} of {len(inputs)} inputs committed")
        assert done < len(inputs), "the crash landed mid-stream"
    instance.start()
    await assert_exactly_once_in_order(kafka, topics, inputs)


async def test_failover_between_two_instances_keeps_exactly_once(
    kafka: str, topics: ServiceTopics, service: Service
) -> None:
    inputs = orders_with_invalid(20_000, "pair")
    await produce(kafka, topics.input, inputs)
    first, second = service(**EOS).start(), service(**EOS).start()
    done = await wait_progress(kafka, topics, len(inputs) // 4)
    first.kill()
    print(f"failover: first instance SIGKILLed after {done} inputs committed")
    await assert_exactly_once_in_order(kafka, topics, inputs)
    assert second.terminate() == 0


async def test_a_zombie_instance_is_fenced_and_commits_no_duplicate(
    kafka: str, topics: ServiceTopics, service: Service
) -> None:
    first_wave, second_wave = orders_with_invalid(6_000, "z1"), orders_with_invalid(6_000, "z2")
    zombie, survivor = service(**EOS).start(), service(**EOS).start()
    producing = asyncio.create_task(produce(kafka, topics.input, first_wave))
    await wait_progress(kafka, topics, 500)
    zombie.signal(signal.SIGSTOP)
    await producing
    # Only the survivor can commit now: all input committed means it took the zombie's partitions.
    await wait_all_committed(kafka, topics.input, topics.group, timeout=120)
    zombie.signal(signal.SIGCONT)
    await produce(kafka, topics.input, second_wave)
    await assert_exactly_once_in_order(kafka, topics, first_wave + second_wave)
    for name, instance in (("zombie", zombie), ("survivor", survivor)):
        lines = [line for line in instance.output().splitlines() if "transaction" in line or "fenced" in line]
        print(f"{name}: {len(lines)} transaction incidents", *lines[:5], sep="\n  ")

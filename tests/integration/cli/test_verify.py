"""`python -m order_service.cli.verify` against the real service's topics, and against doctored copies."""

import json
import random
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer

from kafka_delivery.headers import (
    DLQ_ORIGINAL_OFFSET,
    DLQ_ORIGINAL_PARTITION,
    DLQ_ORIGINAL_TOPIC,
    INPUT_OFFSET,
    INPUT_PARTITION,
    INPUT_TOPIC,
)
from order_service.cli.samples import malformed_corpus
from tests.support.effects import STOCK_PROCESSOR, fill_stock, scarce_stock
from tests.support.kafka import create_topics, hosts, produce, read_all, unique, wait_all_committed
from tests.support.orders import Record, valid_orders
from tests.support.service import ServiceProcess, ServiceTopics

Service = Callable[..., ServiceProcess]
PARTITIONS = 6


def run_verify(env: dict[str, str], *args: str, cwd: Path, **topics: str) -> tuple[int, dict[str, Any], str]:
    """Exit status, the JSON it printed, and its stderr."""
    env = {**env, **{f"ORDER_SERVICE_TOPICS__{k.upper()}": v for k, v in topics.items()}}
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "order_service.cli.verify", "--json", "--timeout", "20", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    print(f"verify {' '.join(args)} {topics}: exit {done.returncode} in {time.monotonic() - started:.1f}s")
    assert done.stdout.count("\n") == 1, (done.stdout, done.stderr)
    return done.returncode, json.loads(done.stdout), done.stderr


def coordinates(record: Any) -> dict[str, Any]:
    return {"topic": record.topic, "partition": record.partition, "offset": record.offset}


def input_of(output: Any) -> dict[str, Any]:
    headers = {k: v.decode() for k, v in output.headers}
    return {
        "topic": headers[INPUT_TOPIC],
        "partition": int(headers[INPUT_PARTITION]),
        "offset": int(headers[INPUT_OFFSET]),
    }


async def copy_topic(
    bootstrap: str, records: Sequence[Any], edit: Callable[[int, list[Any]], list[Any]]
) -> str:
    """A new topic with each partition's records, as `edit(partition, records)` returns them."""
    name = unique("verify-copy")
    partitions = max(r.partition for r in records) + 1
    await create_topics(bootstrap, [name], partitions=partitions)
    by_partition: dict[int, list[Any]] = defaultdict(list)
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        by_partition[record.partition].append(record)
    producer = AIOKafkaProducer(bootstrap_servers=hosts(bootstrap), acks="all", enable_idempotence=True)
    await producer.start()
    try:
        acks = [
            await producer.send(name, value=r.value, key=r.key, headers=list(r.headers), partition=p)
            for p in range(partitions)
            for r in edit(p, by_partition[p])
        ]
        for ack in acks:
            await ack
    finally:
        await producer.stop()
    return name


def mixed(valid: list[Record], bad: list[Record]) -> list[Record]:
    records = list(valid)
    rng = random.Random(5)
    for record in bad:
        records.insert(rng.randrange(len(records) + 1), record)
    return records


async def test_verify_finds_nothing_wrong_with_the_service_and_names_each_doctored_outcome(
    kafka: str, topics: ServiceTopics, service: Service, tmp_path: Path
) -> None:
    valid = valid_orders(2_000, prefix="verify")
    bad: list[Record] = [(f"bad-{m.name}".encode(), m.value, [("trace", b"t")]) for m in malformed_corpus()]
    await produce(kafka, topics.input, mixed(valid, bad))
    instance = service().start()
    outputs = await read_all(kafka, topics.output, expected=len(valid))
    await read_all(kafka, topics.dead_letter, expected=len(bad))
    await wait_all_committed(kafka, topics.input, topics.group)
    assert instance.terminate() == 0
    # The service's own settings; a retry topic that does not exist is not read.
    env = {**instance.env, "ORDER_SERVICE_TOPICS__RETRY": f"{topics.input}.retry"}

    code, result, stderr = run_verify(env, cwd=tmp_path)
    assert (code, result["result"]) == (0, "clean"), stderr
    assert result["counts"] == {
        "inputs": len(valid) + len(bad),
        "processed": len(valid),
        "dead_lettered": len(bad),
        "retried": 0,
        "missing": 0,
        "duplicates": 0,
        "unmatched": 0,
        "order_violations": 0,
        "outside_range": 0,
        "unattributed": 0,
    }
    assert result["records_read"] == {
        "input": 2_000 + len(bad),
        "output": 2_000,
        "dead_letter": len(bad),
        "retry": 0,
    }
    assert len(result["ranges"]) == PARTITIONS
    assert result["topics"]["retry"] is None

    # A range: only the first 100 offsets of each partition; the other outcomes are information.
    code, ranged, _ = run_verify(env, "--from-offset", "0", "--to-offset", "99", cwd=tmp_path)
    assert code == 0
    checked = sum(min(100, r["end_offset"]) for r in result["ranges"])
    assert ranged["counts"]["inputs"] == checked
    assert ranged["counts"]["outside_range"] == len(valid) + len(bad) - checked
    # A time range after the last input holds no input at all.
    code, later, _ = run_verify(env, "--since", "2999-01-01", cwd=tmp_path)
    assert (code, later["counts"]["inputs"]) == (0, 0)

    by_partition: dict[int, list[Any]] = defaultdict(list)
    for output in sorted(outputs, key=lambda r: (r.partition, r.offset)):
        by_partition[output.partition].append(output)
    busiest = max(by_partition, key=lambda p: len(by_partition[p]))
    victim = by_partition[busiest][10]

    # (a) One outcome deleted: its input is missing.
    without = await copy_topic(kafka, outputs, lambda p, rs: [r for r in rs if r is not victim])
    code, result, _ = run_verify(env, cwd=tmp_path, output=without)
    assert (code, result["result"]) == (1, "violations")
    assert result["counts"]["missing"] == 1
    assert result["missing"] == [input_of(victim)]
    assert (result["counts"]["processed"], result["counts"]["duplicates"]) == (len(valid) - 1, 0)
    assert result["counts"]["order_violations"] == 0

    # (b) One outcome injected twice (at the end of its partition): a duplicate, but not disorder.
    doubled = await copy_topic(kafka, outputs, lambda p, rs: [*rs, victim] if p == busiest else rs)
    code, result, _ = run_verify(env, cwd=tmp_path, output=doubled)
    assert code == 1
    assert (result["counts"]["duplicates"], result["counts"]["missing"]) == (1, 0)
    [duplicate] = result["duplicates"]
    assert duplicate["input"] == input_of(victim)
    end = len(by_partition[busiest])
    assert duplicate["outcomes"] == [
        {"topic": doubled, "partition": busiest, "offset": 10},
        {"topic": doubled, "partition": busiest, "offset": end},
    ]
    assert result["counts"]["order_violations"] == 0
    code, allowed, _ = run_verify(env, "--allow-duplicates", cwd=tmp_path, output=doubled)
    assert (code, allowed["result"], allowed["counts"]["duplicates"]) == (0, "clean", 1)

    # (c) Two outputs of one output partition, from one input partition, swapped: disorder.
    records = by_partition[busiest]
    i = next(
        i
        for i in range(5, len(records) - 1)
        if input_of(records[i])["partition"] == input_of(records[i + 1])["partition"]
    )
    first, second = records[i], records[i + 1]

    def swap(p: int, rs: list[Any]) -> list[Any]:
        return [*rs[:i], rs[i + 1], rs[i], *rs[i + 2 :]] if p == busiest else rs

    swapped = await copy_topic(kafka, outputs, swap)
    code, result, _ = run_verify(env, cwd=tmp_path, output=swapped)
    assert code == 1
    assert (result["counts"]["missing"], result["counts"]["duplicates"]) == (0, 0)
    assert result["counts"]["order_violations"] == 1
    assert result["order_violations"] == [
        {
            "outcome": {"topic": swapped, "partition": busiest, "offset": i + 1},
            "input": input_of(first),
            "after_input_offset": input_of(second)["offset"],
        }
    ]


async def test_verify_exits_2_in_one_line_when_it_cannot_check(kafka: str, tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "ORDER_SERVICE_KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:9",
        "ORDER_SERVICE_TOPICS__INPUT": unique("verify-absent"),
    }
    code, result, stderr = run_verify(env, cwd=tmp_path)
    assert (code, result["result"]) == (2, "error")
    assert stderr.count("\n") == 1, stderr
    assert stderr.startswith("order-service verify: cannot check: Kafka at 127.0.0.1:9: cannot connect")
    assert "Traceback" not in stderr

    env["ORDER_SERVICE_KAFKA__BOOTSTRAP_SERVERS"] = kafka
    code, result, stderr = run_verify(env, cwd=tmp_path)
    assert code == 2
    assert f"the input topic {env['ORDER_SERVICE_TOPICS__INPUT']} does not exist" in result["error"]


async def test_outcomes_through_the_retry_topic_name_the_original_input_and_keep_no_order(
    kafka: str, topics: ServiceTopics, service: Service, tmp_path: Path
) -> None:
    def order(order_id: str) -> Record:
        value = json.dumps({"order_id": order_id, "customer_id": "c-1", "total": "10.00"}).encode()
        return (order_id.encode(), value, [])

    instance = service(
        processing__processor="tests.support.processors:flaky",
        retry__backoff_ms="50",
        retry__attempts="2",
        retry__topic_enabled="true",
        retry__topic_hops="1",
        retry__topic_delay_ms="1000",
        topics__retry=f"{topics.input}.retry",
    ).start()
    others = valid_orders(300, prefix="around")
    # transient-3: two blocking tries, a hop, a third failure, then processed; always: dead-lettered.
    await produce(kafka, topics.input, [order("transient-3-v"), order("always-w"), *others])
    await read_all(kafka, topics.output, expected=len(others) + 1, timeout=90)
    await read_all(kafka, topics.dead_letter, expected=1, timeout=90)
    await wait_all_committed(kafka, topics.input, topics.group)
    assert instance.terminate() == 0

    code, result, stderr = run_verify(instance.env, cwd=tmp_path)
    assert (code, result["result"]) == (0, "clean"), stderr
    assert result["topics"]["retry"] == f"{topics.input}.retry"
    counts = result["counts"]
    assert (counts["inputs"], counts["processed"], counts["dead_lettered"]) == (302, 301, 1)
    assert (counts["retried"], counts["order_violations"], counts["outside_range"]) == (2, 0, 0)
    assert result["records_read"]["retry"] == 2


async def test_verify_effects_checks_the_inbox_and_names_each_doctored_row(
    kafka: str, topics: ServiceTopics, service: Service, database_url: str, tmp_path: Path
) -> None:
    valid = valid_orders(1_000, prefix="inbox")
    bad: list[Record] = [(f"bad-{m.name}".encode(), m.value, []) for m in malformed_corpus()]
    await fill_stock(database_url, scarce_stock(valid))
    await produce(kafka, topics.input, mixed(valid, bad))
    instance = service(processing__processor=STOCK_PROCESSOR, effects__database_url=database_url).start()
    outputs = await read_all(kafka, topics.output, expected=len(valid))
    await wait_all_committed(kafka, topics.input, topics.group)
    assert instance.terminate() == 0
    env = {**instance.env, "ORDER_SERVICE_TOPICS__RETRY": f"{topics.input}.retry"}

    code, result, stderr = run_verify(env, "--effects", cwd=tmp_path)
    assert (code, result["result"]) == (0, "clean"), stderr
    assert result["inbox"]["counts"] == {
        "rows": len(valid),
        "checked": len(valid),
        "missing_rows": 0,
        "differing": 0,
        "dead_lettered_rows": 0,
        "unpublished_rows": 0,
    }

    # Doctor the inbox: a row deleted, an outcome changed, a row for a dead-lettered input.
    deleted, changed = input_of(outputs[0]), input_of(outputs[1])
    dead = (await read_all(kafka, topics.dead_letter, expected=len(bad)))[0]
    dead_input = {k: int(v) if k != "topic" else v for k, v in _original(dead).items()}
    conn = await asyncpg.connect(database_url)
    try:
        where = "group_id = $1 AND input_topic = $2 AND input_partition = $3 AND input_offset = $4"
        key = (topics.group,)
        await conn.execute(f"DELETE FROM order_service_inbox WHERE {where}", *key, *deleted.values())
        await conn.execute(
            f"UPDATE order_service_inbox SET outcome = 'x' WHERE {where}",
            *key,
            *changed.values(),
        )
        await conn.execute(
            "INSERT INTO order_service_inbox (group_id, input_topic, input_partition, input_offset, outcome)"
            " VALUES ($1, $2, $3, $4, 'y')",
            *key,
            *dead_input.values(),
        )
    finally:
        await conn.close()
    code, doctored, _ = run_verify(env, "--effects", cwd=tmp_path)
    assert (code, doctored["result"]) == (1, "violations")
    inbox = doctored["inbox"]
    assert inbox["counts"]["missing_rows"] == 1
    assert inbox["counts"]["differing"] == 1
    assert inbox["counts"]["dead_lettered_rows"] == 1
    assert inbox["missing_rows"] == [deleted]
    assert inbox["differing"] == [changed]
    assert inbox["dead_lettered_rows"] == [dead_input]

    # Without a database URL it cannot check, and says which variable is missing.
    del env["ORDER_SERVICE_EFFECTS__DATABASE_URL"]
    code, result, stderr = run_verify(env, "--effects", cwd=tmp_path)
    assert code == 2
    assert "--effects needs ORDER_SERVICE_EFFECTS__DATABASE_URL" in result["error"]
    env["ORDER_SERVICE_EFFECTS__DATABASE_URL"] = database_url.replace(":postgres@", ":wrong-Secret-7@")
    code, result, stderr = run_verify(env, "--effects", cwd=tmp_path)
    assert code == 2
    assert "ORDER_SERVICE_EFFECTS__DATABASE_URL: the database refused the connection" in result["error"]
    assert "wrong-Secret-7" not in stderr + json.dumps(result)


def _original(dead_letter: Any) -> dict[str, str]:
    headers = {k: v.decode() for k, v in dead_letter.headers}
    return {
        "topic": headers[DLQ_ORIGINAL_TOPIC],
        "partition": headers[DLQ_ORIGINAL_PARTITION],
        "offset": headers[DLQ_ORIGINAL_OFFSET],
    }

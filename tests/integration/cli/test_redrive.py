"""Re-driving dead letters after a fix: replayed once, processed, and never twice."""

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from kafka_delivery.headers import DLQ_ERROR_CATEGORY, DLQ_ORIGINAL_TOPIC, DLQ_REPLAYED_FROM
from order_service.cli.samples import encode
from tests.support.kafka import produce, read_all
from tests.support.orders import order_ids, valid_orders
from tests.support.service import ServiceProcess, ServiceTopics

Service = Callable[..., ServiceProcess]
CLI = str(Path(sys.executable).with_name("order-service"))


def dlq_cli(instance: ServiceProcess, *args: str) -> str:
    done = subprocess.run(
        [CLI, "dlq", *args], env=instance.env, capture_output=True, text=True, timeout=120, check=True
    )
    return done.stdout


async def test_replay_after_a_fix_processes_dead_letters_once(
    kafka: str, topics: ServiceTopics, service: Service
) -> None:
    broken = service(processing__processor="tests.support.processors:flaky").start()
    bugs = [
        (
            f"bug-{i}".encode(),
            encode({"order_id": f"bug-{i}", "customer_id": "c", "total": "5.00"}),
            [("h", b"1")],
        )
        for i in range(5)
    ]
    good = valid_orders(50, prefix="ok")
    await produce(kafka, topics.input, [*bugs, *good, (b"junk", b"not json", [])])
    dead = await read_all(kafka, topics.dead_letter, expected=6)
    assert broken.terminate() == 0

    listing = dlq_cli(broken, "list")
    assert "processing" in listing
    assert "ValueError" in listing
    assert "deserialization" in listing
    shown = dlq_cli(broken, "show", "--partition", str(dead[0].partition), "--offset", str(dead[0].offset))
    assert f"{DLQ_ERROR_CATEGORY}:" in shown
    assert f"{DLQ_ORIGINAL_TOPIC}: {topics.input}" in shown

    fixed = service().start()  # the rule is fixed: the default rules process bug-* orders
    dry = dlq_cli(fixed, "replay", "--category", "processing", "--dry-run")
    assert "would replay 5 of 6" in dry
    assert "replayed 5 of 6" in dlq_cli(fixed, "replay", "--category", "processing")

    processed = await read_all(kafka, topics.output, expected=len(good) + len(bugs))
    assert sorted(i for i in order_ids(processed) if i.startswith("bug-")) == [f"bug-{i}" for i in range(5)]
    replayed = [r for r in await read_all(kafka, topics.input, expected=56 + 5) if r.key.startswith(b"bug-")]
    again = [r for r in replayed if any(k == DLQ_REPLAYED_FROM for k, _ in r.headers)]
    assert len(again) == 5
    assert all(
        ("h", b"1") in r.headers and not any(k.startswith("dlq.e") for k, _ in r.headers) for r in again
    )

    assert "replayed 0 of 0" in dlq_cli(fixed, "replay", "--category", "processing"), (
        "a second replay sends nothing"
    )
    assert "would replay 5 of 6" in dlq_cli(
        fixed, "replay", "--category", "processing", "--dry-run", "--force"
    )
    total = await read_all(kafka, topics.input, expected=61)
    assert len(total) == 61, "neither the second replay nor the dry run sent anything"

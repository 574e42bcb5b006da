"""The service on a secured broker (scripts/kafka up --secure): SASL_SSL/SCRAM-SHA-512 and mutual
TLS as the least-privilege `order-service` principal under ACLs; misconfigurations fail fast and
name the setting; a revoked ACL blocks its partition visibly; no secret ever reaches a log."""

import asyncio
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import announce
from tests.support.kafka import (
    committed_and_end_offsets,
    create_topics,
    produce,
    read_all,
    wait_all_committed,
)
from tests.support.orders import Record, order_ids, valid_orders
from tests.support.secure import GROUP_PREFIX, SESSION_GRANT, TOPIC_PREFIXES, SecureBroker, forward
from tests.support.service import ServiceProcess, ServiceTopics, health, scrape, total
from tests.support.waiting import eventually

CLI = str(Path(sys.executable).with_name("order-service"))
PARTITIONS = 6
# The dead-letter topic must take the input's largest record plus the envelope (provisioning checks).
CARRIER = {"max.message.bytes": str(1_048_588 + 64 * 1024)}
BLOCKED = "order_service_blocked_partitions"
PASSWORD_VAR = "ORDER_SERVICE_KAFKA__SASL_PASSWORD"
# What `scripts/kafka up --secure` grants the order-service principal (docs/security.md): literal
# ACLs on the service's default topic names, the group prefix `order-service`.
DEFAULT_NAMES = {
    "input": "orders.created",
    "output": "orders.processed",
    "dead_letter": "orders.created.dlq",
}
DEFAULT_GROUP = "order-service"


@pytest.fixture(scope="module")
def secure_kafka(pytestconfig: pytest.Config) -> Iterator[SecureBroker]:
    """The secured single-node broker (`scripts/kafka up --secure`: SASL_SSL/SCRAM-SHA-512 on
    127.0.0.1:21192, mutual TLS on 21193, controller 21194, ACLs on), in `.cache/test-secure`,
    started fresh for this module (with `up`'s ACLs for the default names) and deleted after its
    last test, so it does not idle through the rest of the suite. The order-service principal is
    also granted its ACLs for the name prefixes of these tests (tests.support.secure.SESSION_GRANT)."""

    broker = SecureBroker(Path(__file__).resolve().parents[2] / ".cache" / "test-secure", 21192)
    announce(pytestconfig, f"starting the secured Kafka broker (scripts/kafka up --secure, {broker.run_dir})")
    env = {"KAFKA_CONTROLLER_PORT": "21194", "KAFKA_UP_TIMEOUT": "180"}
    try:
        broker.script("down", env=env)
        broker.script("up", env=env)
        broker.grant("--prefixed", *SESSION_GRANT)
    except RuntimeError as exc:
        pytest.fail(f"the secured Kafka broker did not start: {exc}", pytrace=False)
    try:
        yield broker
    finally:
        broker.script("down", env=env)


def names() -> ServiceTopics:
    tag = uuid.uuid4().hex[:10]
    return ServiceTopics(
        input=f"{TOPIC_PREFIXES['input']}{tag}",
        output=f"{TOPIC_PREFIXES['output']}{tag}",
        dead_letter=f"{TOPIC_PREFIXES['dead_letter']}{tag}",
        group=f"{GROUP_PREFIX}-{tag}",
    )


async def provision(broker: SecureBroker, topics: ServiceTopics) -> dict[str, Any]:
    admin = broker.admin
    await create_topics(admin, [topics.input, topics.output], partitions=PARTITIONS)
    await create_topics(admin, [topics.dead_letter], partitions=PARTITIONS, configs=CARRIER)
    return admin


def service(broker: SecureBroker, mode: str, topics: ServiceTopics, **settings: str) -> ServiceProcess:
    env = broker.env(mode)
    instance = ServiceProcess(
        env["ORDER_SERVICE_KAFKA__BOOTSTRAP_SERVERS"], topics, topics__create="false", **settings
    )
    instance.env.update(env)
    return instance


def assert_no_secret(broker: SecureBroker, *outputs: str) -> None:
    for secret in broker.secrets():
        for text in outputs:
            assert secret not in text, "a secret value is in a log"


def orders_with_malformed(tag: str, total_count: int = 2000, bad: int = 20) -> list[Record]:
    records = valid_orders(total_count - bad, prefix=tag)
    for i in range(bad):
        records.insert(i * (total_count // bad), (f"bad-{tag}-{i}".encode(), b"{not json", []))
    return records


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
@pytest.mark.parametrize("mode", ["scram", "mtls"])
async def test_the_restricted_principal_processes_and_dead_letters_each_exactly_once(
    secure_kafka: SecureBroker, mode: str, guarantee: str
) -> None:
    topics = names()
    admin = await provision(secure_kafka, topics)
    records = orders_with_malformed(f"{mode}-{guarantee}")
    await produce(admin, topics.input, records)
    instance = service(secure_kafka, mode, topics, delivery__guarantee=guarantee).start()
    try:
        processed = await read_all(admin, topics.output, expected=1980)
        dead = await read_all(admin, topics.dead_letter, expected=20)
        await wait_all_committed(admin, topics.input, topics.group)
    finally:
        instance.stop()
    output = instance.output()
    assert sorted(order_ids(processed)) == sorted(
        k.decode() for k, _, _ in records if k and not k.startswith(b"bad-")
    )
    assert sorted(r.key for r in dead) == sorted(k for k, _, _ in records if k and k.startswith(b"bad-"))
    if guarantee == "at_least_once":  # the CLI over the same mode, as the admin
        env = {**instance.env, **secure_kafka.env("admin" if mode == "scram" else "admin-mtls")}
        tail = cli(env, "tail", topics.dead_letter, "--from-beginning", "--limit", "20")
        replay = cli(env, "dlq", "replay", "--dry-run")
        assert tail.returncode == 0, tail.stderr
        assert tail.stdout.count("bad-") >= 20
        assert replay.returncode == 0, replay.stderr
        output += tail.stdout + tail.stderr + replay.stdout + replay.stderr
    assert_no_secret(secure_kafka, output)


async def fails_fast(instance: ServiceProcess) -> str:
    started = time.monotonic()
    instance.start()
    try:
        code = await asyncio.to_thread(instance.wait, 30)
    finally:
        instance.stop()
    assert code != 0
    assert time.monotonic() - started < 30
    return instance.output()


async def test_a_wrong_password_ends_the_service_naming_the_setting(secure_kafka: SecureBroker) -> None:
    instance = service(secure_kafka, "scram", names())
    wrong = f"wrong-{uuid.uuid4().hex}"
    instance.env[PASSWORD_VAR] = wrong
    output = await fails_fast(instance)
    assert PASSWORD_VAR in output
    assert wrong not in output
    assert_no_secret(secure_kafka, output)


@pytest.mark.parametrize("mode", ["scram", "mtls"])
async def test_an_untrusted_ca_ends_the_service_naming_the_setting(
    secure_kafka: SecureBroker, mode: str
) -> None:
    instance = service(secure_kafka, mode, names())
    instance.env["ORDER_SERVICE_KAFKA__SSL_CAFILE"] = str(secure_kafka.pki / "untrusted-ca.pem")
    output = await fails_fast(instance)
    assert "ORDER_SERVICE_KAFKA__SSL_CAFILE" in output
    assert_no_secret(secure_kafka, output)


async def test_a_hostname_mismatch_ends_the_service_naming_the_address(secure_kafka: SecureBroker) -> None:
    # 127.0.0.2 reaches the broker (through a forwarder) but is not in its certificate.
    server = await forward(("127.0.0.2", secure_kafka.port), ("127.0.0.1", secure_kafka.port))
    try:
        instance = service(secure_kafka, "scram", names())
        instance.env["ORDER_SERVICE_KAFKA__BOOTSTRAP_SERVERS"] = f"127.0.0.2:{secure_kafka.port}"
        output = await fails_fast(instance)
    finally:
        server.close()
    assert "Hostname mismatch" in output or "IP address mismatch" in output, output[-2000:]
    assert "ORDER_SERVICE_KAFKA__SSL_CAFILE" in output
    assert_no_secret(secure_kafka, output)


async def test_a_revoked_dead_letter_acl_blocks_its_partition_until_granted_back(
    secure_kafka: SecureBroker,
) -> None:
    # The default names, outside the session's prefixes: their ACLs are `up --secure`'s own (one
    # literal ACL per topic, none prefixed), so removing one takes the right away. The only test
    # on these names in the module, whose broker is deleted after it: no revoke needed.
    topics = ServiceTopics(
        input=DEFAULT_NAMES["input"],
        output=DEFAULT_NAMES["output"],
        dead_letter=DEFAULT_NAMES["dead_letter"],
        group=f"{DEFAULT_GROUP}-{uuid.uuid4().hex[:10]}",
    )
    admin = await provision(secure_kafka, topics)
    instance = service(
        secure_kafka, "scram", topics, delivery__backoff_ms="200", delivery__stall_after_s="3"
    ).start()
    try:
        await produce(admin, topics.input, valid_orders(60, prefix="rv-before"))
        await wait_all_committed(admin, topics.input, topics.group)
        secure_kafka.acl("remove", "--operation", "Write", "--topic", topics.dead_letter)
        bad: list[Record] = [(f"bad-rv-{i}".encode(), b"{not json", []) for i in range(3)]
        await produce(admin, topics.input, bad)
        inputs = await read_all(admin, topics.input, expected=63)
        bad_records = [r for r in inputs if r.key and r.key.startswith(b"bad-rv-")]
        blocked = {r.partition for r in bad_records}
        first_bad = {p: min(r.offset for r in bad_records if r.partition == p) for p in blocked}
        metrics = await eventually(
            lambda: asyncio.to_thread(scrape, instance.http_port),
            until=lambda m: all(
                total(m, BLOCKED, BLOCKED, topic=topics.input, partition=str(p)) == 1 for p in blocked
            ),
            timeout=60,
            what="the blocked partitions in the metrics",
        )
        assert metrics
        status, body = await asyncio.to_thread(health, instance.http_port)
        assert status == 503
        assert any(f"{topics.input}-" in line and "not_authorized" in line for line in body["blocked"]), body
        later = valid_orders(60, prefix="rv-during")
        await produce(admin, topics.input, later)
        later_keys = {k for k, _, _ in later}
        records = await read_all(admin, topics.input, expected=123)
        elsewhere = {r.key.decode() for r in records if r.key in later_keys and r.partition not in blocked}
        processed = await read_all(admin, topics.output, expected=60 + len(elsewhere))
        assert set(order_ids(processed)) >= elsewhere
        committed, _ = await committed_and_end_offsets(admin, topics.input, topics.group)
        for p, offset in first_bad.items():
            assert (committed[p] or 0) <= offset

        secure_kafka.acl("add", "--operation", "Write", "--topic", topics.dead_letter)
        dead = await read_all(admin, topics.dead_letter, expected=3)
        assert sorted(r.key for r in dead) == sorted(k for k, _, _ in bad if k)
        await wait_all_committed(admin, topics.input, topics.group)
        await eventually(
            lambda: asyncio.to_thread(health, instance.http_port),
            until=lambda sb: sb[0] == 200,
            timeout=30,
            what="ready again",
        )
    finally:
        instance.stop()
    assert_no_secret(secure_kafka, instance.output())

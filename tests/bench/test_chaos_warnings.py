"""The chaos report's warnings after a fault (bench/chaos/service.py `warnings_since`), the network
rows' limit on them (Result.failures), and the cluster's client ports (LocalCluster)."""

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from bench.chaos.result import Result
from bench.chaos.service import warnings_since
from bench.kafka.cluster import LocalCluster

FAULT = datetime(2026, 12, 7, 15, 0, 0, tzinfo=UTC).timestamp()


def line(seconds: float, level: str, message: str) -> str:
    at = datetime.fromtimestamp(FAULT + seconds, UTC).isoformat(timespec="milliseconds")
    return json.dumps({"time": at, "level": level, "logger": "x", "message": message})


def test_warnings_count_from_the_fault_on_without_the_malformed_records(tmp_path: Path) -> None:
    log = tmp_path / "service-a.log"
    log.write_text(
        "\n".join(
            [
                json.dumps({"chaos": "starting (start #1)", "instance": "a"}),
                line(-5, "WARNING", "Auto create topics is disabled."),  # before the fault
                line(1, "INFO", "assigned"),
                line(2, "ERROR", "Failed fetch messages from 1: KafkaConnectionError"),
                line(3, "WARNING", "dead-lettering record t-1@7: validation ValidationError"),
                line(4, "ERROR", "Failed fetch messages from 1: KafkaConnectionError"),
                line(5, "CRITICAL", "cannot make progress"),
                "Traceback (most recent call last):",  # stderr, after a line past the fault
                "",
            ]
        )
    )
    count, messages = warnings_since(log, FAULT)
    assert count == 4
    assert next(iter(messages.items())) == ("ERROR Failed fetch messages from 1: KafkaConnectionError", 2)
    assert "CRITICAL cannot make progress" in messages
    assert "(not JSON) Traceback (most recent call last):" in messages
    assert warnings_since(tmp_path / "missing.log", FAULT) == (0, {})


def passing(**changes: object) -> Result:
    result = Result(10, "blackhole to the leader", "at_least_once", 100, "evidence")
    for key, value in {
        "lost": 0,
        "duplicates": 3,
        "order_violations": 0,
        "unmatched": 0,
        "drained": True,
        "fault_at_s": 12.0,
        **changes,
    }.items():
        setattr(result, key, value)
    return result


def test_a_network_row_fails_past_its_warning_limit_and_without_its_fault() -> None:
    assert passing(warning_limit=50, warning_lines={"a": 50, "b": 0}).passed
    failed = passing(warning_limit=50, warning_lines={"a": 51, "b": 0})
    assert failed.failures() == ["instance a logged 51 WARNING-or-worse lines after the fault (at most 50)"]
    assert passing(warning_lines={"a": 500}).passed  # no limit: counted, not judged
    assert passing(fault_at_s=None).failures() == ["the fault never came"]


def cluster(client_port: int | None = None, advertised_client_port: int | None = None) -> LocalCluster:
    return LocalCluster(
        brokers=3,
        port=19392,
        controller_port=19492,
        run_dir=Path("run"),
        client_port=client_port,
        advertised_client_port=advertised_client_port,
    )


def test_the_cluster_advertises_proxy_ports_only_when_given_both() -> None:
    assert cluster().client_bootstrap == cluster().bootstrap
    proxied = cluster(client_port=19592, advertised_client_port=19692)
    assert proxied.client_bootstrap == "127.0.0.1:19692,127.0.0.1:19693,127.0.0.1:19694"
    with pytest.raises(ValueError, match="both"):
        cluster(client_port=19592)
    with pytest.raises(ValueError, match="overlap"):
        cluster(client_port=19394, advertised_client_port=19692)
    with pytest.raises(ValueError, match="ephemeral"):
        cluster(client_port=19592, advertised_client_port=40000)

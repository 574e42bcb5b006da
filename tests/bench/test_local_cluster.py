"""LocalCluster.ensure_all_running: `scripts/kafka up` (whose health check starts a JVM) only when
`status` shows a node not running, or a node was resumed since the last `up`."""

from pathlib import Path

from bench.kafka.cluster import LocalCluster


def fake_cluster(tmp_path: Path, states: list[str]) -> tuple[LocalCluster, Path]:
    calls = tmp_path / "calls"
    script = tmp_path / "kafka"
    lines = "\n".join(f"echo 'node{i}: {s} (port {19392 + i - 1})'" for i, s in enumerate(states, start=1))
    script.write_text(f'#!/usr/bin/env bash\necho "$*" >>{calls}\nif [[ $1 == status ]]; then\n{lines}\nfi\n')
    script.chmod(0o755)
    run_dir = tmp_path / "run"
    cluster = LocalCluster(brokers=3, port=19392, controller_port=19492, run_dir=run_dir, script=script)
    return cluster, calls


def test_all_running_needs_no_up(tmp_path: Path) -> None:
    cluster, calls = fake_cluster(tmp_path, ["running"] * 3)
    cluster.ensure_all_running()
    assert calls.read_text().split("\n")[:-1] == ["status"]


def test_a_node_not_running_is_brought_up(tmp_path: Path) -> None:
    for state in ("stopped", "paused"):
        cluster, calls = fake_cluster(tmp_path, ["running", state, "running"])
        calls.unlink(missing_ok=True)
        cluster.ensure_all_running()
        assert calls.read_text().split("\n")[:-1] == ["status", "up --brokers 3"]


def test_a_resumed_node_is_checked_by_up_once(tmp_path: Path) -> None:
    cluster, calls = fake_cluster(tmp_path, ["running"] * 3)
    cluster.resume(2)
    cluster.ensure_all_running()
    cluster.ensure_all_running()
    assert calls.read_text().split("\n")[:-1] == ["resume 2", "up --brokers 3", "status"]

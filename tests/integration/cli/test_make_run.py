"""`make run` as a newcomer types it, when another process already holds the broker's port."""

import os
import re
import socket
import subprocess
from pathlib import Path

from tests.support.service import ROOT, free_port


def test_a_port_held_by_another_process_stops_make_run_after_one_line(tmp_path: Path) -> None:
    with socket.socket() as holder:  # not a broker, and not ours
        holder.bind(("127.0.0.1", free_port()))
        holder.listen()
        port = holder.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ORDER_SERVICE_", "MAKE", "MFLAGS"))}
        env.update(KAFKA_PORT=str(port), KAFKA_RUN_DIR=str(tmp_path / "kafka-run"))
        done = subprocess.run(
            ["make", "--no-print-directory", "run"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode != 0
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    # make's own last word on a failed recipe follows; nothing of ours does (no misleading second error).
    assert re.fullmatch(r"make: \*\*\* \[Makefile:\d+: run\] Error 1", lines[-1]), lines
    assert lines[:-1] == [
        f"kafka: port {port} is already in use by another process: set ORDER_SERVICE_KAFKA__BOOTSTRAP_SERVERS"
        " to use the broker there, or KAFKA_PORT to start ours elsewhere"
    ]
    assert not (tmp_path / "kafka-run").exists(), "it went on to set up a broker"

"""A service instance of the chaos run: `faststream run order_service.app:app` as users run it, its
output appended to one log file across restarts, its /health/ready a bounded HTTP call away."""

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from bench.ports import free_port

FASTSTREAM = str(Path(sys.executable).with_name("faststream"))
# Ports for the instances' HTTP servers: below Linux's ephemeral range (32768-60999), above the
# chaos clusters' broker and controller ports (19392-19494, 20392-20494).
HTTP_PORTS = range(21000, 22000)


def http_port() -> int:
    """A port of HTTP_PORTS that nothing listens on now, picked at random."""
    return free_port(HTTP_PORTS, "a service instance's HTTP server")


class Instance:
    """One service instance. `kill()` is a deliberate SIGKILL; an exit that was not asked for is
    what `exited_on_its_own` reports."""

    def __init__(self, name: str, env: dict[str, str], log: Path) -> None:
        self.name = name
        self.port = http_port()
        self.env = {
            **env,
            "ORDER_SERVICE_HTTP__HOST": "127.0.0.1",
            "ORDER_SERVICE_HTTP__PORT": str(self.port),
        }
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.deliberately_stopped = False

    def start(self) -> None:
        assert not self.alive, f"instance {self.name} is already running"
        self.note(f"starting (start #{self.starts + 1})")
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [FASTSTREAM, "run", "order_service.app:app"],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.starts += 1
        self.deliberately_stopped = False

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def exit_code(self) -> int | None:
        return None if self.process is None else self.process.poll()

    @property
    def exited_on_its_own(self) -> bool:
        return self.process is not None and not self.deliberately_stopped and self.process.poll() is not None

    def signal_kill(self) -> None:
        """SIGKILL, without waiting: for a kill that must land at a given moment (then `kill()`)."""
        self.deliberately_stopped = True
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)

    def kill(self) -> None:
        """SIGKILL, and wait until it is gone."""
        self.deliberately_stopped = True
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(15)
        self.note("SIGKILLed")

    def terminate(self, timeout: float = 40) -> int | None:
        """SIGTERM, SIGKILL if it has not exited within `timeout` seconds; the exit code."""
        self.deliberately_stopped = True
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(15)
        code = self.process.poll()
        self.note(f"stopped, exit code {code}")
        return code

    def note(self, text: str) -> None:
        """A line of the harness in the instance's log, so that the log tells the story alone."""
        line = {
            "chaos": text,
            "instance": self.name,
            "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        }
        with self.log.open("a") as out:
            out.write(json.dumps(line) + "\n")

    async def ready(self) -> int:
        """/health/ready's status; 0 when nothing answers (or the process is gone)."""
        if not self.alive:
            return 0
        return await asyncio.to_thread(_status, f"http://127.0.0.1:{self.port}/health/ready")

    async def ready_answer(self) -> tuple[int, str]:
        """/health/ready's status and body (for the timeline: why it is not ready)."""
        if not self.alive:
            return 0, ""
        return await asyncio.to_thread(_answer, f"http://127.0.0.1:{self.port}/health/ready")

    async def wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if await self.ready() == 200:
                return True
            if not self.alive:
                return False
            await asyncio.sleep(0.5)
        return False

    def tail(self, lines: int = 40) -> list[str]:
        return log_tail(self.log, lines)


def log_tail(
    path: Path, lines: int = 40, levels: tuple[str, ...] = ("ERROR", "CRITICAL", "WARNING")
) -> list[str]:
    """The last `lines` lines of a service log at these levels, with the harness's own lines."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return []
    picked = [
        line
        for line in text.splitlines()
        if '"chaos"' in line
        or (
            any(f'"{level}"' in line or f" {level} " in line for level in levels)
            and "dead-lettering record" not in line  # the malformed 1 %, by design
        )
    ]
    return picked[-lines:]


def warnings_since(path: Path, since: float) -> tuple[int, dict[str, int]]:
    """The service log lines at WARNING or worse from `since` (a time.time()) on, and how often each
    message came (its first 80 characters), the most frequent first.

    The dead-lettering of a malformed record is left out: the run's input holds 1 % of them by
    design, whatever the fault. A line that is not the service's JSON (a traceback on stderr)
    counts when the last JSON line before it was from `since` on."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return 0, {}
    messages: dict[str, int] = {}
    after = False
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            entry = None
        if not isinstance(entry, dict):
            if after and line.strip():
                key = "(not JSON) " + line.strip()[:69]
                messages[key] = messages.get(key, 0) + 1
            continue
        if "chaos" in entry or "time" not in entry:
            continue
        with contextlib.suppress(ValueError):
            after = datetime.fromisoformat(entry["time"]).timestamp() >= since
        if not after or entry.get("level") not in ("WARNING", "ERROR", "CRITICAL"):
            continue
        message = str(entry.get("message", ""))
        if message.startswith("dead-lettering record"):
            continue
        key = f"{entry['level']} {message[:80]}"
        messages[key] = messages.get(key, 0) + 1
    ranked = dict(sorted(messages.items(), key=lambda kv: -kv[1]))
    return sum(ranked.values()), ranked


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return int(response.status)
    except urllib.error.HTTPError as refused:
        return refused.code
    except OSError:
        return 0


def _answer(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return int(response.status), response.read(2000).decode(errors="replace")
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read(2000).decode(errors="replace")
    except OSError as exc:
        return 0, type(exc).__name__


def service_env(
    *,
    bootstrap: str,
    input_topic: str,
    output: str,
    dead_letter: str,
    group: str,
    guarantee: str,
    replication_factor: int,
) -> dict[str, str]:
    """The ORDER_SERVICE_* settings of a run, on top of this process's environment."""
    return {
        **os.environ,
        "ORDER_SERVICE_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
        "ORDER_SERVICE_TOPICS__INPUT": input_topic,
        "ORDER_SERVICE_TOPICS__OUTPUT": output,
        "ORDER_SERVICE_TOPICS__DEAD_LETTER": dead_letter,
        "ORDER_SERVICE_TOPICS__REPLICATION_FACTOR": str(replication_factor),
        "ORDER_SERVICE_CONSUMER__GROUP_ID": group,
        "ORDER_SERVICE_DELIVERY__GUARANTEE": guarantee,
        "ORDER_SERVICE_LOG_FORMAT": "json",
        "ORDER_SERVICE_LOG_LEVEL": "INFO",
    }

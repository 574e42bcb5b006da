"""Network faults on a TCP link: `scripts/toxiproxy` driven from Python, and Toxiproxy's HTTP API.

Issue 27's chaos scenarios put a proxy in front of each broker of the chaos cluster and slow, cut or
reset the links through it; tests/integration/test_toxiproxy.py proves these pieces on an echo
server. It lives in bench because the bench must run without the tests, while tests may import it.

The API calls block (urllib): each is one request to 127.0.0.1 that Toxiproxy answers in about a
millisecond, so async callers may make them inline or through `asyncio.to_thread`. A refused call
raises `ToxiproxyError` with Toxiproxy's own message.
"""

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from bench.scripts import run_script

SCRIPT: Final = Path(__file__).resolve().parents[1] / "scripts" / "toxiproxy"
# `up` may build toxiproxy first: 31 s on 2 cores with empty Go caches; the bound leaves room for a
# wait on another checkout's build and a machine busy with a benchmark.
BUILD_TIMEOUT_S: Final = 900.0

Stream = Literal["upstream", "downstream"]  # client to server, server to client


class ToxiproxyError(RuntimeError):
    """A `scripts/toxiproxy` command or an API call failed, or did not finish in time."""


@dataclass(frozen=True)
class Toxic:
    """One toxic as the API takes it: it acts on the data of one `stream` of every connection of a
    proxy, established ones included, for a `toxicity` share of the connections. Toxiproxy names it
    TYPE_STREAM unless `name` is given; a proxy holds one toxic of a name."""

    type: str
    attributes: Mapping[str, int]
    stream: Stream = "downstream"
    toxicity: float = 1.0
    name: str = field(default="")

    @property
    def key(self) -> str:
        return self.name or f"{self.type}_{self.stream}"

    def body(self) -> dict[str, Any]:
        return {
            "name": self.key,
            "type": self.type,
            "stream": self.stream,
            "toxicity": self.toxicity,
            "attributes": dict(self.attributes),
        }


def latency(ms: int, *, jitter_ms: int = 0, stream: Stream = "downstream") -> Toxic:
    """Each chunk of data waits `ms` ± `jitter_ms` (uniform) before it is passed on."""
    return Toxic("latency", {"latency": ms, "jitter": jitter_ms}, stream)


def timeout(ms: int = 0, *, stream: Stream = "downstream") -> Toxic:
    """Data is dropped; the connection is closed after `ms`, never when 0: a blackhole."""
    return Toxic("timeout", {"timeout": ms}, stream)


def reset_peer(ms: int = 0, *, stream: Stream = "downstream") -> Toxic:
    """The connection is reset (TCP RST, pending data discarded) `ms` after data arrives."""
    return Toxic("reset_peer", {"timeout": ms}, stream)


def bandwidth(kb_per_s: int, *, stream: Stream = "downstream") -> Toxic:
    """At most `kb_per_s` KB/s (1000 bytes a KB) pass, per connection and direction."""
    return Toxic("bandwidth", {"rate": kb_per_s}, stream)


def limit_data(limit: int, *, stream: Stream = "downstream") -> Toxic:
    """The connection is closed once `limit` bytes have passed."""
    return Toxic("limit_data", {"bytes": limit}, stream)


class Toxiproxy:
    """The HTTP API of one Toxiproxy server at `url` (e.g. http://127.0.0.1:8474)."""

    def __init__(self, url: str, *, timeout: float = 5.0) -> None:
        self.url: Final = url.rstrip("/")
        self.timeout: Final = timeout

    def __repr__(self) -> str:
        return f"Toxiproxy({self.url})"

    def version(self) -> str:
        return str(self._call("GET", "/version"))

    def create_proxy(self, name: str, *, listen: int, upstream: int, enabled: bool = True) -> None:
        """127.0.0.1:`listen` forwards each connection to 127.0.0.1:`upstream`."""
        body = {"name": name, "listen": f"127.0.0.1:{listen}", "upstream": f"127.0.0.1:{upstream}"}
        self._call("POST", "/proxies", {**body, "enabled": enabled})

    def delete_proxy(self, name: str) -> None:
        """Stop listening and close its connections."""
        self._call("DELETE", f"/proxies/{name}")

    def proxies(self) -> dict[str, Any]:
        """Name -> the proxy as the API shows it (listen, upstream, enabled, toxics)."""
        return dict(self._call("GET", "/proxies"))

    def set_enabled(self, name: str, enabled: bool) -> None:
        """Disabled, a proxy closes its connections and refuses new ones (a port nobody listens on)."""
        self._call("POST", f"/proxies/{name}", {"enabled": enabled})

    def add_toxic(self, proxy: str, toxic: Toxic) -> None:
        self._call("POST", f"/proxies/{proxy}/toxics", toxic.body())

    def remove_toxic(self, proxy: str, toxic: Toxic | str) -> None:
        """The link works again. A timeout toxic closes the connections it held as it goes (Toxiproxy's
        cleanup): what they had in flight fails then, instead of at the client's request timeout."""
        name = toxic.key if isinstance(toxic, Toxic) else toxic
        self._call("DELETE", f"/proxies/{proxy}/toxics/{name}")

    def toxics(self, proxy: str) -> list[dict[str, Any]]:
        return list(self._call("GET", f"/proxies/{proxy}/toxics"))

    def reset(self) -> None:
        """Every proxy enabled, every toxic removed: the state to start a scenario from."""
        self._call("POST", "/reset")

    def _call(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method)
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                text = response.read().decode()
        except urllib.error.HTTPError as e:
            said = e.read().decode(errors="replace").strip()
            raise ToxiproxyError(f"toxiproxy {method} {path}: HTTP {e.code}: {said}") from None
        except OSError as e:  # refused, timed out
            raise ToxiproxyError(f"toxiproxy {method} {path}: no answer from {self.url}: {e}") from None
        if response.headers.get_content_type() != "application/json" or not text:
            return text
        return json.loads(text)


class LocalToxiproxy:
    """The server of `scripts/toxiproxy` (TOXIPROXY_PORT=`port`, TOXIPROXY_RUN_DIR=`run_dir`).

    `up_timeout` bounds the script's wait for the API (TOXIPROXY_UP_TIMEOUT), `stop_timeout` a
    SIGTERM before SIGKILL (TOXIPROXY_STOP_TIMEOUT); `up` may first build toxiproxy.
    """

    def __init__(
        self, *, port: int, run_dir: Path, up_timeout: float = 15.0, stop_timeout: float = 10.0
    ) -> None:
        self.port: Final = port
        self.run_dir: Final = run_dir
        self.up_timeout: Final = up_timeout
        self.stop_timeout: Final = stop_timeout

    def __repr__(self) -> str:
        return f"LocalToxiproxy(127.0.0.1:{self.port}, run dir {self.run_dir})"

    def up(self) -> Toxiproxy:
        """Build if missing, start unless it runs; its API, once it answers."""
        lines = self._run("up", timeout=BUILD_TIMEOUT_S + self._short).strip().splitlines()
        if not lines or not lines[-1].startswith("http://"):
            raise ToxiproxyError(f"scripts/toxiproxy up printed no URL: {lines!r}")
        return Toxiproxy(lines[-1])

    def down(self) -> None:
        """Stop it; its proxies go with it."""
        self._run("down", timeout=self._short)

    def running(self) -> bool:
        return self._run("status", timeout=self._short, ok=(0, 1)).startswith("running")

    @property
    def _short(self) -> float:
        # Possibly a wait for another command's lock (the script's own bound), then its own waits.
        return 2 * (self.up_timeout + self.stop_timeout) + 60

    def _run(self, *args: str, timeout: float, ok: tuple[int, ...] = (0,)) -> str:
        env = {
            "TOXIPROXY_PORT": str(self.port),
            "TOXIPROXY_RUN_DIR": str(self.run_dir),
            "TOXIPROXY_UP_TIMEOUT": str(round(self.up_timeout)),
            "TOXIPROXY_STOP_TIMEOUT": str(round(self.stop_timeout)),
        }
        return run_script(SCRIPT, *args, env=env, timeout=timeout, error=ToxiproxyError, ok=ok).stdout

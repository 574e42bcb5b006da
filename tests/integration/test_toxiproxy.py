"""scripts/toxiproxy and bench/toxiproxy.py against a real Toxiproxy, in front of a local echo server:
the faults issue 27's chaos scenarios will put between the service and its brokers, on a link whose
every byte the test sees. No Kafka: a few seconds."""

import os
import socket
import socketserver
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from bench.ports import free_port
from bench.toxiproxy import (
    SCRIPT,
    LocalToxiproxy,
    Toxiproxy,
    ToxiproxyError,
    bandwidth,
    latency,
    limit_data,
    reset_peer,
    timeout,
)

# This file's servers: Toxiproxy's API, the echo server and the proxy (others: tests/support/).
PORTS = range(29200, 29300)
LATENCY_S = 0.2


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


class _EchoServer(socketserver.ThreadingTCPServer):
    daemon_threads = True  # a connection the proxy still holds open must not hold up the test
    allow_reuse_address = True


@pytest.fixture(scope="module")
def local_toxiproxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalToxiproxy, Toxiproxy]]:
    """A Toxiproxy of its own (built first on a fresh machine) and its API; stopped after the module."""
    run_dir = tmp_path_factory.mktemp("toxiproxy") / "run"
    server = LocalToxiproxy(port=free_port(PORTS, "Toxiproxy's API"), run_dir=run_dir)
    api = server.up()
    try:
        yield server, api
    finally:
        server.down()


@pytest.fixture
def toxiproxy(local_toxiproxy: tuple[LocalToxiproxy, Toxiproxy]) -> Toxiproxy:
    return local_toxiproxy[1]


@pytest.fixture
def echo_port() -> Iterator[int]:
    port = free_port(PORTS, "the echo server")
    server = _EchoServer(("127.0.0.1", port), _Echo)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield port
    server.shutdown()
    server.server_close()


@pytest.fixture
def proxy(toxiproxy: Toxiproxy, echo_port: int) -> Iterator[tuple[str, int]]:
    """A proxy in front of the echo server: its name and port; removed after the test."""
    name, port = "echo", free_port(PORTS, "the proxy")
    toxiproxy.create_proxy(name, listen=port, upstream=echo_port)
    yield name, port
    toxiproxy.delete_proxy(name)


def round_trip(conn: socket.socket, payload: bytes = b"order\n") -> float:
    """Seconds until `payload` came back whole."""
    started = time.monotonic()
    conn.sendall(payload)
    received = b""
    while len(received) < len(payload):
        chunk = conn.recv(65536)
        if not chunk:
            raise ConnectionError("the proxy closed the connection")
        received += chunk
    assert received == payload
    return time.monotonic() - started


def connect(port: int) -> socket.socket:
    conn = socket.create_connection(("127.0.0.1", port), timeout=5)
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return conn


def test_up_again_keeps_the_server_and_its_proxies(
    local_toxiproxy: tuple[LocalToxiproxy, Toxiproxy], proxy: tuple[str, int]
) -> None:
    server, api = local_toxiproxy
    assert server.running()
    assert server.up().url == api.url
    assert api.version() == "v2.5.0"
    assert api.proxies()[proxy[0]]["listen"] == f"127.0.0.1:{proxy[1]}"


def test_up_on_a_port_another_process_holds_says_so_in_one_line(tmp_path: Path) -> None:
    """Before any build or start: the one line names the variable to change."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", free_port(PORTS, "a port to hold")))
        holder.listen()
        port = holder.getsockname()[1]
        env = {**os.environ, "TOXIPROXY_PORT": str(port), "TOXIPROXY_RUN_DIR": str(tmp_path / "run")}
        done = subprocess.run(
            [str(SCRIPT), "up"], env=env, capture_output=True, text=True, timeout=30, check=False
        )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"toxiproxy: port {port} is already in use by another process:"
        " set TOXIPROXY_PORT to start ours elsewhere"
    ]
    assert not (tmp_path / "run").exists()


def test_latency_delays_a_round_trip_until_removed(toxiproxy: Toxiproxy, proxy: tuple[str, int]) -> None:
    name, port = proxy
    with connect(port) as conn:
        assert min(round_trip(conn) for _ in range(3)) < LATENCY_S / 2
        toxic = latency(round(LATENCY_S * 1000), jitter_ms=0)
        toxiproxy.add_toxic(name, toxic)
        assert round_trip(conn) >= LATENCY_S
        toxiproxy.remove_toxic(name, toxic)
        assert min(round_trip(conn) for _ in range(3)) < LATENCY_S / 2


def test_a_timeout_toxic_of_0_blackholes_the_link_until_removed(
    toxiproxy: Toxiproxy, proxy: tuple[str, int]
) -> None:
    """Both ways, as a network partition: the connection stays open and nothing comes back. Removed,
    the toxic closes the connections it held (so a client's requests in flight fail at once rather
    than at their timeout), and new ones work."""
    name, port = proxy
    blackhole = [timeout(0, stream="upstream"), timeout(0, stream="downstream")]
    with connect(port) as conn:
        round_trip(conn)
        for toxic in blackhole:
            toxiproxy.add_toxic(name, toxic)
        conn.settimeout(1.0)
        with pytest.raises(TimeoutError):
            round_trip(conn)
        with connect(port) as during:  # a new connection is accepted, and blackholed too
            during.settimeout(0.5)
            with pytest.raises(TimeoutError):
                round_trip(during)
        for toxic in blackhole:
            toxiproxy.remove_toxic(name, toxic)
        conn.settimeout(2.0)
        with pytest.raises(ConnectionError):  # not TimeoutError: closed, not silent
            round_trip(conn, b"again\n")
    with connect(port) as conn:
        assert round_trip(conn) < 1.0


def test_a_disabled_proxy_refuses_connections(toxiproxy: Toxiproxy, proxy: tuple[str, int]) -> None:
    name, port = proxy
    toxiproxy.set_enabled(name, False)
    with pytest.raises(ConnectionRefusedError):
        connect(port)
    toxiproxy.set_enabled(name, True)
    with connect(port) as conn:
        round_trip(conn)


def test_every_toxic_of_the_scenarios_is_accepted_as_built(
    toxiproxy: Toxiproxy, proxy: tuple[str, int]
) -> None:
    """The request bodies match v2.5.0's API: each toxic comes back with its attributes."""
    name = proxy[0]
    built = [
        latency(200, jitter_ms=50),
        timeout(0, stream="upstream"),
        reset_peer(3000),
        bandwidth(100, stream="upstream"),
        limit_data(1024),
    ]
    for toxic in built:
        toxiproxy.add_toxic(name, toxic)
    shown = {t["name"]: t for t in toxiproxy.toxics(name)}
    assert {key: (t["type"], t["stream"], t["attributes"]) for key, t in shown.items()} == {
        t.key: (t.type, t.stream, dict(t.attributes)) for t in built
    }
    with pytest.raises(ToxiproxyError, match="409"):
        toxiproxy.add_toxic(name, built[0])
    toxiproxy.reset()
    assert toxiproxy.toxics(name) == []

"""The peers of the CPU-bound table, each in a bench-only venv: the frameworks Quix Streams and Faust,
and the loop a user writes by hand with confluent-kafka.

They do order-service's work (bench/throughput/contenders/order_work.py), importing its domain from src/.
A peer that cannot be installed or run here is listed with the reason instead of a result.
They run in rounds with order-service (bench/throughput/rounds.py).
"""

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pydantic

from bench.throughput import venvs
from bench.throughput.harness import ROOT, Contender
from bench.throughput.measure import PeerInfo
from bench.throughput.rounds import Planned

# The machine's interpreter of the project's Python version (its venvs are based on it).
BASE = Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"


@dataclass(frozen=True)
class Peer:
    venv: str
    requirements: tuple[str, ...]
    arguments: tuple[str, ...]
    runs: dict[str, dict[str, str]]  # run name -> its environment
    shown: tuple[str, ...]  # the distributions whose versions the report names
    stamped_outputs: bool = False
    records_cap: int | None = None  # fewer records for a slow peer
    # A framework order-service has a target against; the hand-written loop is a reference without one.
    framework: bool = True


PEERS = (
    # quixstreams 3.28 requires pydantic < 2.14: its venv gets the newest pydantic that allows.
    Peer(
        "quixstreams",
        ("quixstreams==3.28.1", "pydantic"),
        ("-m", "bench.throughput.contenders.quixstreams_pipeline"),
        {
            "quixstreams-alo": {"BENCH_GUARANTEE": "at-least-once"},
            "quixstreams-eos": {"BENCH_GUARANTEE": "exactly-once"},
        },
        ("quixstreams", "confluent-kafka", "pydantic"),
        stamped_outputs=True,
    ),
    Peer(
        "faust",
        ("faust-streaming[fast,uvloop]==0.15.3", f"pydantic=={pydantic.VERSION}"),
        # At its default level (warn) the worker sets the root logger to DEBUG for its terminal
        # spinner, and every debug call of Faust and aiokafka builds a record: 12 % of its CPU.
        (
            "-m",
            "bench.throughput.contenders.faust_agent",
            "-L",
            "uvloop",
            "worker",
            "--without-web",
            "--loglevel",
            "info",
        ),
        {"faust-alo": {}},
        ("faust-streaming", "aiokafka", "pydantic"),
        # About 1,800 records/s here: 20,000 give a steady rate in a tenth of the time of 200,000.
        records_cap=20_000,
    ),
    # Quix Streams' confluent-kafka (the same librdkafka), and order-service's pydantic: the loop's
    # domain work is the run `domain-work`'s (bench/throughput/cpu_bound/domain_work.py).
    Peer(
        "confluent-loop",
        ("confluent-kafka==2.12.2", f"pydantic=={pydantic.VERSION}"),
        ("-m", "bench.throughput.contenders.confluent_loop"),
        {
            "confluent-loop-alo": {"BENCH_GUARANTEE": "at-least-once"},
            "confluent-loop-eos": {"BENCH_GUARANTEE": "exactly-once"},
        },
        ("confluent-kafka", "pydantic"),
        framework=False,
    ),
)
NAMES = tuple(name for peer in PEERS for name in peer.runs)
FRAMEWORKS = tuple(name for peer in PEERS if peer.framework for name in peer.runs)
LOOPS = tuple(name for peer in PEERS if not peer.framework for name in peer.runs)  # written by hand


def versions(python: Path, distributions: tuple[str, ...]) -> dict[str, str]:
    code = "import sys, importlib.metadata as m; print(*(m.version(d) for d in sys.argv[1:]))"
    done = subprocess.run(
        [str(python), "-c", code, *distributions], capture_output=True, text=True, check=True
    )
    return dict(zip(distributions, done.stdout.split(), strict=True))


def peer_contenders(records: int) -> tuple[list[Planned], PeerInfo]:
    """Each peer's runs on `records` orders, in rounds; the packages' versions, and what cannot run here."""
    planned: list[Planned] = []
    info = PeerInfo(versions={}, not_run={})
    for peer in PEERS:
        try:
            python = venvs.ensure(peer.venv, peer.requirements, base=BASE)
        except venvs.Unavailable as unavailable:
            info["not_run"].update(dict.fromkeys(peer.runs, str(unavailable)))
            print(f"{', '.join(peer.runs)} not run: {unavailable}", flush=True)
            continue
        info["versions"][peer.venv] = versions(python, peer.shown)
        for name, env in peer.runs.items():
            contender = Contender(
                name,
                [str(python), *peer.arguments],
                {**env, "PYTHONPATH": str(ROOT / "src")},
                stamped_outputs=peer.stamped_outputs,
                dead_letter=True,
            )
            planned.append(Planned(contender, min(records, peer.records_cap or records), optional=True))
    return planned, info

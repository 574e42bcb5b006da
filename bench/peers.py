"""The peer frameworks of the CPU-bound table, Quix Streams and Faust, each in a bench-only venv.

They do order-service's work (bench/contenders/order_work.py), importing its domain from src/.
A peer that cannot be installed or run here is listed with the reason instead of a result.
"""

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pydantic

from bench import harness, kafka_io, venvs
from bench.harness import ROOT, Contender, run_contender, topic_env
from bench.measure import PeerInfo, Run

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


PEERS = (
    # quixstreams 3.28 requires pydantic < 2.14: its venv gets the newest pydantic that allows.
    Peer(
        "quixstreams",
        ("quixstreams==3.28.1", "pydantic"),
        ("-m", "bench.contenders.quixstreams_pipeline"),
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
            "bench.contenders.faust_agent",
            "-L",
            "uvloop",
            "worker",
            "--without-web",
            "--loglevel",
            "info",
        ),
        {"faust-alo": {}},
        ("faust-streaming", "aiokafka", "pydantic"),
    ),
)
NAMES = tuple(name for peer in PEERS for name in peer.runs)


def versions(python: Path, distributions: tuple[str, ...]) -> dict[str, str]:
    code = "import sys, importlib.metadata as m; print(*(m.version(d) for d in sys.argv[1:]))"
    done = subprocess.run(
        [str(python), "-c", code, *distributions], capture_output=True, text=True, check=True
    )
    return dict(zip(distributions, done.stdout.split(), strict=True))


def last_log_line(name: str) -> str:
    lines = (ROOT / "bench" / "results" / f"{name}.log").read_text(errors="replace").strip().splitlines()
    return lines[-1] if lines else "no output"


async def benchmark_peers(records: int) -> tuple[list[Run], PeerInfo]:
    """Each peer's runs on `records` orders; the packages' versions, and what could not run, and why."""
    runs: list[Run] = []
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
            await kafka_io.create_topics(harness.BOOTSTRAP, [topic_env(name)["BENCH_DEAD_LETTER"]])
            command = [str(python), *peer.arguments]
            extra = {**env, "PYTHONPATH": str(ROOT / "src")}
            try:
                runs.append(
                    await run_contender(Contender(name, command, extra, False, peer.stamped_outputs), records)
                )
            except RuntimeError as failed:
                info["not_run"][name] = f"{failed}: {last_log_line(name)}"
                print(f"{name} not run: {info['not_run'][name]}", flush=True)
    return runs, info

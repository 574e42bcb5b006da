"""`make chaos`: broker, service, database and network faults on a local 3-node cluster (docs/reliability.md).

    uv run python -m bench.chaos --orders 100000 --out docs/reliability.md   # every scenario, 1-13

starts its own 3-node cluster with `scripts/kafka up --brokers 3` (brokers on 127.0.0.1:20392-20394,
controllers on 20492-20494, data in .cache/chaos-cluster; `--port`, `--controller-port`, `--run-dir`
move it), runs each scenario in each guarantee (bench/chaos/harness.py), writes the report and
takes the cluster down again (`scripts/kafka down`). Before the first scenario with database
effects (7, 8) it starts its own PostgreSQL with `scripts/postgres up` (127.0.0.1:20432, data in
.cache/chaos-postgres; `--pg-port`, `--pg-run-dir` move it), each such run on a fresh database, and
takes it down at the end. The service instances reach the brokers through Toxiproxy
(`scripts/toxiproxy`, API on 127.0.0.1:20474, run dir .cache/chaos-toxiproxy): each broker has a
second listener (20592-20594) advertised at its proxy's port (20692-20694), so every connection of
the service crosses a proxy, and scenarios 9-13 put their network faults there; the harness's own
clients (producer, monitor, verify) connect directly. Service logs, verify output and the progress
samples of every run are kept under `--evidence` (default .cache/chaos/<time>).
Exit status: 0 when every row passes, 1 when a row fails (PostgreSQL not starting fails the rows
that need it), 2 when the cluster did not start.
"""

import argparse
import asyncio
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bench.chaos.harness import GUARANTEES, run_scenario
from bench.chaos.network import behind_proxies
from bench.chaos.report import DEFAULT_OUT, ROOT, machine, report
from bench.chaos.result import Result
from bench.chaos.run_state import Network
from bench.chaos.scenarios import SCENARIOS
from bench.kafka.cluster import ClusterError, LocalCluster
from bench.postgres import LocalPostgres, PostgresError
from bench.toxiproxy import LocalToxiproxy, ToxiproxyError

DEFAULT_SCENARIOS = ",".join(map(str, SCENARIOS))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__.split("\n\n")[0])
    p.add_argument("--orders", type=int, default=100_000, help="orders per run (default %(default)s)")
    p.add_argument(
        "--scenarios",
        default=DEFAULT_SCENARIOS,
        help="comma-separated scenario numbers (default %(default)s)",
    )
    p.add_argument(
        "--guarantees",
        default=",".join(GUARANTEES),
        help="comma-separated delivery guarantees (default %(default)s)",
    )
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the report (default docs/reliability.md)")
    p.add_argument(
        "--evidence", type=Path, default=None, help="logs and data of each run (default .cache/chaos/<time>)"
    )
    p.add_argument("--port", type=int, default=20392, help="first broker port (KAFKA_PORT)")
    p.add_argument(
        "--controller-port", type=int, default=20492, help="first controller port (KAFKA_CONTROLLER_PORT)"
    )
    p.add_argument("--run-dir", type=Path, default=ROOT / ".cache" / "chaos-cluster", help="KAFKA_RUN_DIR")
    p.add_argument(
        "--client-port", type=int, default=20592, help="first broker CLIENT listener (KAFKA_CLIENT_PORT)"
    )
    p.add_argument(
        "--proxy-port",
        type=int,
        default=20692,
        help="first proxy port, advertised by the brokers (KAFKA_ADVERTISED_CLIENT_PORT)",
    )
    p.add_argument("--toxiproxy-port", type=int, default=20474, help="Toxiproxy's API (TOXIPROXY_PORT)")
    p.add_argument(
        "--toxiproxy-run-dir",
        type=Path,
        default=ROOT / ".cache" / "chaos-toxiproxy",
        help="TOXIPROXY_RUN_DIR",
    )
    p.add_argument("--pg-port", type=int, default=20432, help="PostgreSQL's port (PG_PORT)")
    p.add_argument(
        "--pg-run-dir", type=Path, default=ROOT / ".cache" / "chaos-postgres", help="PostgreSQL's PG_RUN_DIR"
    )
    p.add_argument(
        "--keep-cluster", action="store_true", help="leave the cluster (and PostgreSQL) running at the end"
    )
    args = p.parse_args(argv)
    try:
        args.scenario_list = [int(s) for s in args.scenarios.split(",") if s.strip()]
    except ValueError:
        p.error(f"--scenarios takes numbers: {args.scenarios!r}")
    if unknown := [s for s in args.scenario_list if s not in SCENARIOS]:
        p.error(f"no scenario {unknown}; there are {sorted(SCENARIOS)}")
    args.guarantee_list = [g.strip() for g in args.guarantees.split(",") if g.strip()]
    if unknown_g := [g for g in args.guarantee_list if g not in GUARANTEES]:
        p.error(f"unknown guarantee {unknown_g}; there are {list(GUARANTEES)}")
    if args.orders < 100:
        p.error("--orders must be at least 100")
    return args


async def run_all(
    cluster: LocalCluster,
    postgres: LocalPostgres,
    network: Network,
    args: argparse.Namespace,
    written: Callable[[list[Result]], None],
) -> list[Result]:
    """Every scenario in every guarantee; the report is written again after each run. PostgreSQL is
    started before the first scenario with database effects (a start that fails is that run's
    error)."""
    results: list[Result] = []
    for number in args.scenario_list:
        for guarantee in args.guarantee_list:
            print(f"chaos: scenario {number}, {guarantee}", file=sys.stderr, flush=True)
            if SCENARIOS[number].effects and postgres.url is None:
                print(f"chaos: starting {postgres}", file=sys.stderr, flush=True)
                try:
                    await asyncio.to_thread(postgres.up)
                except PostgresError as exc:
                    print(f"chaos: PostgreSQL did not start: {exc}", file=sys.stderr, flush=True)
            result = await run_scenario(
                cluster,
                number,
                guarantee,
                orders_count=args.orders,
                evidence=args.evidence,
                postgres=postgres if postgres.url is not None else None,
                network=network,
            )
            print(f"chaos: {result.summary()}", file=sys.stderr, flush=True)
            results.append(result)
            written(results)
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    began = datetime.now(UTC)
    args.evidence = args.evidence or ROOT / ".cache" / "chaos" / began.strftime("%Y%m%dT%H%M%SZ")
    args.evidence.mkdir(parents=True, exist_ok=True)
    host = machine()
    cluster = LocalCluster(
        brokers=3,
        port=args.port,
        controller_port=args.controller_port,
        run_dir=args.run_dir.resolve(),
        client_port=args.client_port,
        advertised_client_port=args.proxy_port,
    )
    toxiproxy = LocalToxiproxy(port=args.toxiproxy_port, run_dir=args.toxiproxy_run_dir.resolve())
    postgres = LocalPostgres(port=args.pg_port, run_dir=args.pg_run_dir.resolve())
    started = time.monotonic()
    print(f"chaos: starting {cluster}", file=sys.stderr, flush=True)
    try:
        try:
            cluster.up()
        except ClusterError:
            cluster.down()  # what an interrupted run left may not come back: start over once
            cluster.up()
    except ClusterError as exc:
        print(f"chaos: the cluster did not start: {exc}", file=sys.stderr)
        return 2
    try:
        network = behind_proxies(cluster, toxiproxy)
    except ToxiproxyError as exc:
        print(f"chaos: Toxiproxy did not start: {exc}", file=sys.stderr)
        cluster.down()
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)

    def write(results: list[Result]) -> None:
        args.out.write_text(report(results, args, host, began, time.monotonic() - started))

    try:
        results = asyncio.run(run_all(cluster, postgres, network, args, write))
    finally:
        if not args.keep_cluster:
            try:
                cluster.down()
            except ClusterError as exc:
                print(f"chaos: scripts/kafka down failed: {exc}", file=sys.stderr)
            try:
                toxiproxy.down()
            except ToxiproxyError as exc:
                print(f"chaos: scripts/toxiproxy down failed: {exc}", file=sys.stderr)
            if postgres.url is not None or args.pg_run_dir.exists():
                try:
                    postgres.down()
                except PostgresError as exc:
                    print(f"chaos: scripts/postgres down failed: {exc}", file=sys.stderr)
    write(results)
    print(f"chaos: wrote {args.out}", file=sys.stderr)
    for r in results:
        print(("PASS " if r.passed else "FAIL ") + r.summary())
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())

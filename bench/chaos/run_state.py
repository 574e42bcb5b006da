"""The state of one chaos run, and what the scenarios do through it: act on brokers and instances
without blocking the event loop, wait for the moment a fault should land, find the broker to hit.

The harness creates it, the monitor fills in its samples and readiness, the scenarios act on it,
the checks read it at the end: one object that all of them share, and none of them owns."""

import asyncio
import contextlib
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from bench.chaos.kafka.metadata import PARTITIONS, leaders, most_common
from bench.chaos.kafka.progress import Offsets, Progress
from bench.chaos.network import proxy_name
from bench.chaos.producer import ProducerProcess
from bench.chaos.result import Sample
from bench.chaos.service import Instance, service_env
from bench.toxiproxy import Toxic

DATABASE_URL = "ORDER_SERVICE_EFFECTS__DATABASE_URL"
PROCESSOR = "ORDER_SERVICE_PROCESSING__PROCESSOR"


class Cluster(Protocol):
    """What a scenario does to the brokers (bench.kafka.cluster.LocalCluster). Node i is broker id i."""

    @property
    def bootstrap(self) -> str: ...
    @property
    def client_bootstrap(self) -> str: ...
    @property
    def nodes(self) -> range: ...
    def kill(self, node: int) -> None: ...
    def start(self, node: int) -> None: ...
    def stop(self, node: int) -> None: ...
    def pause(self, node: int) -> None: ...
    def resume(self, node: int) -> None: ...
    def ensure_all_running(self) -> None: ...
    def status(self) -> dict[int, str]: ...


class Database(Protocol):
    """What a scenario does to the PostgreSQL server (bench.postgres.LocalPostgres)."""

    def kill(self) -> None: ...
    def start(self) -> None: ...
    def running(self) -> bool: ...


class Network(Protocol):
    """The links between the instances and the brokers (bench.toxiproxy.Toxiproxy): one proxy per
    broker, named by `proxy_name`, in front of the broker's CLIENT listener."""

    def add_toxic(self, proxy: str, toxic: Toxic) -> None: ...
    def remove_toxic(self, proxy: str, toxic: Toxic | str) -> None: ...
    def reset(self) -> None: ...


class Run:
    """The state of one run that the scenarios act on."""

    def __init__(
        self,
        cluster: Cluster,
        guarantee: str,
        orders: int,
        evidence: Path,
        label: str,
        *,
        broker_down_s: float,
        postgres: Database | None = None,
        database_down_s: float = 0.0,
        network: Network | None = None,
        network_fault_s: float = 0.0,
    ) -> None:
        self.cluster = cluster
        self.network = network  # the proxies in front of the brokers (scenarios 9-13)
        self.network_fault_s = network_fault_s  # how long a network fault lasts (scenarios 9-13)
        self.broker_down_s = broker_down_s  # how long a killed broker stays down (scenarios 2, 3, 6)
        self.postgres = postgres  # the server of the runs with database effects (scenarios 7, 8)
        self.database_down_s = database_down_s  # how long a killed PostgreSQL stays down (scenario 7)
        self.database_url: str | None = None  # the run's own database, once `use_database` ran
        self.guarantee = guarantee
        self.orders = orders
        self.evidence = evidence
        base = f"chaos-{label}-{uuid.uuid4().hex[:8]}"
        self.input, self.output, self.dead_letter, self.group = (
            f"{base}.in",
            f"{base}.out",
            f"{base}.dlq",
            base,
        )
        self.env = service_env(
            bootstrap=cluster.bootstrap,
            input_topic=self.input,
            output=self.output,
            dead_letter=self.dead_letter,
            group=self.group,
            guarantee=guarantee,
            replication_factor=3,
        )
        # The instances alone reach the brokers at `client_bootstrap`: through the proxies when the
        # cluster has them, so a network fault hits the service and nothing else; the producer,
        # the monitor, the metadata a scenario aims with and verify stay on direct links.
        instance_env = {**self.env, "ORDER_SERVICE_KAFKA__BOOTSTRAP_SERVERS": cluster.client_bootstrap}
        self.instances = [
            Instance(name, instance_env, evidence / f"service-{name}.log") for name in ("a", "b")
        ]
        self.progress = Progress(cluster.bootstrap, self.input, self.group)
        self.started = time.monotonic()
        self.started_wall = time.time()  # the service logs' clock, for `now()`'s 0
        self.events: list[tuple[float, str]] = []
        self.samples: list[Sample] = []
        self.readiness: list[tuple[float, dict[str, int]]] = []
        self.fault_at: float | None = None  # the first fault action
        self.last_fault_at: float | None = None
        self.restored_at: float | None = None
        self.unexpected_exits: list[str] = []
        self.producer: ProducerProcess | None = None

    def use_database(self, url: str, processor: str) -> None:
        """Run `processor` with its effects in the database at `url`. Each instance's connections
        carry its own `application_name` (`application_name()`), so that pg_stat_activity tells
        them apart; verify gets the same settings without it."""
        self.database_url = url
        self.env.update({DATABASE_URL: url, PROCESSOR: processor})
        for instance in self.instances:
            separator = "&" if "?" in url else "?"
            instance.env.update(
                {
                    DATABASE_URL: f"{url}{separator}application_name={self.application_name(instance)}",
                    PROCESSOR: processor,
                }
            )

    @staticmethod
    def application_name(instance: Instance) -> str:
        return f"chaos-{instance.name}"

    def sample(self, offsets: Offsets | None) -> None:
        produced = 0 if self.producer is None else self.producer.production.acked
        self.samples.append(Sample(self.now(), offsets, produced))

    def now(self) -> float:
        return round(time.monotonic() - self.started, 2)

    def event(self, text: str) -> None:
        at = self.now()
        self.events.append((at, text))
        print(f"  [{self.group} +{at:6.1f}s] {text}", file=sys.stderr, flush=True)

    def fault(self, text: str) -> None:
        self.last_fault_at = self.now()
        if self.fault_at is None:
            self.fault_at = self.last_fault_at
        self.event(f"FAULT: {text}")

    def restored(self, text: str) -> None:
        self.restored_at = self.now()
        self.event(f"restored: {text}")

    # --- acting on the cluster and the instances, without blocking the event loop ---

    async def broker(self, action: str, node: int) -> None:
        call: Callable[[int], None] = getattr(self.cluster, action)
        started = time.monotonic()
        try:
            await asyncio.to_thread(call, node)
        except Exception as exc:  # each action is idempotent: once more, then give up
            self.event(f"scripts/kafka {action} {node} failed, once more: {' '.join(str(exc).split())[:300]}")
            await asyncio.sleep(2)
            await asyncio.to_thread(call, node)
        self.event(f"scripts/kafka {action} {node}: done in {time.monotonic() - started:.1f}s")

    async def database(self, action: str) -> None:
        """`scripts/postgres kill` or `start` on the run's server."""
        if self.postgres is None:
            raise RuntimeError("this run has no PostgreSQL")
        call: Callable[[], None] = getattr(self.postgres, action)
        started = time.monotonic()
        try:
            await asyncio.to_thread(call)
        except Exception as exc:  # idempotent: once more, then give up
            self.event(f"scripts/postgres {action} failed, once more: {' '.join(str(exc).split())[:300]}")
            await asyncio.sleep(2)
            await asyncio.to_thread(call)
        self.event(f"scripts/postgres {action}: done in {time.monotonic() - started:.1f}s")

    async def toxics(self, nodes: list[int], toxics: list[Toxic], *, quiet: bool = False) -> None:
        """Add each toxic to the proxy of each broker of `nodes`; `quiet`: no event of it."""
        if self.network is None:
            raise RuntimeError("this run has no proxies in front of the brokers")
        for node in nodes:
            for toxic in toxics:
                await asyncio.to_thread(self.network.add_toxic, proxy_name(node), toxic)
        if not quiet:
            self.event(f"toxics {', '.join(t.key for t in toxics)} on the proxies of brokers {nodes}")

    async def clear_toxics(self, nodes: list[int], toxics: list[Toxic]) -> None:
        """Remove them again; a toxic that is already gone is fine (`reset` does all of them)."""
        assert self.network is not None
        for node in nodes:
            for toxic in toxics:
                try:
                    await asyncio.to_thread(self.network.remove_toxic, proxy_name(node), toxic)
                except Exception as exc:  # once more with every toxic of every proxy
                    self.event(f"removing {toxic.key} from broker {node}'s proxy failed ({exc}): reset")
                    await asyncio.to_thread(self.network.reset)

    async def kill_instance(self, instance: Instance) -> None:
        await asyncio.to_thread(instance.kill)

    async def restart_instance(self, instance: Instance) -> None:
        await asyncio.to_thread(instance.start)
        self.event(f"instance {instance.name} started again")

    # --- where the fault goes ---

    async def committed(self) -> int:
        offsets = self.latest()
        return 0 if offsets is None else offsets.committed_total

    def latest(self) -> Offsets | None:
        return next((s.offsets for s in reversed(self.samples) if s.offsets is not None), None)

    async def wait_committed(self, share: float, *, timeout: float = 180) -> None:
        """Until the group has committed `share` of the orders, or (should the group be slow, or its
        offsets unreadable) the producer has had `share` + 15 % of them acknowledged: the fault
        lands while orders are still coming. Past `timeout`, go on and say so."""
        target = int(self.orders * share)
        produced_target = int(self.orders * min(0.9, share + 0.15))
        deadline = time.monotonic() + timeout
        while True:
            committed, produced = await self.committed(), self.produced()
            if committed >= target:
                self.event(f"trigger: {committed} of {self.orders} committed ({produced} produced)")
                return
            if produced >= produced_target:
                self.event(
                    f"trigger: {produced} of {self.orders} produced, only {committed} committed "
                    f"(of {target} awaited)"
                )
                return
            if time.monotonic() > deadline:
                self.event(f"trigger: only {committed} of {target} committed after {timeout:.0f}s")
                return
            await asyncio.sleep(0.2)

    async def wait_moving(self, *, timeout: float) -> None:
        """Until every instance is ready and every partition with input pending has committed
        something since this call began; past `timeout`, go on and say so."""
        began = time.monotonic()
        before = self.latest()
        while time.monotonic() - began < timeout:
            now = self.latest()
            ready = [at for at, statuses in self.readiness if at >= self.now() - 1.5]
            if (
                now is not None
                and before is not None
                and all(i.alive for i in self.instances)
                and ready
                and all(code == 200 for code in self.readiness[-1][1].values())
                and all(
                    now.committed.get(p, 0) > before.committed.get(p, 0) or now.committed.get(p, 0) >= end
                    for p, end in now.end.items()
                )
            ):
                self.event(f"every partition moving again after {time.monotonic() - began:.1f}s")
                return
            await asyncio.sleep(0.5)
        self.event(f"not every partition moving again after {timeout:.0f}s; going on")

    def produced(self) -> int:
        return 0 if self.producer is None else self.producer.production.acked

    async def input_leader(self) -> int:
        """The broker that leads most input partitions (ties: most output and dead-letter leaderships)."""
        found = await leaders(self.cluster.bootstrap, self.input)
        others: list[int] = []
        for topic in (self.output, self.dead_letter):
            with contextlib.suppress(Exception):
                others += (await leaders(self.cluster.bootstrap, topic)).values()
        node = most_common(found.values(), prefer=[n for n, _ in _ranked(others)])
        self.event(f"input partition leaders {dict(sorted(found.items()))}: broker {node} leads most")
        return node

    def transactional_ids(self) -> list[str]:
        return [f"{self.group}-{self.input}-{p}" for p in range(PARTITIONS)]


def _ranked(ids: list[int]) -> list[tuple[int, int]]:
    tally: dict[int, int] = {}
    for i in ids:
        tally[i] = tally.get(i, 0) + 1
    return sorted(tally.items(), key=lambda kv: (-kv[1], kv[0]))

"""A real Prometheus (Debian's) scraping the service as an operator's would: no alert on a metric that
has no series, no empty dashboard panel, and rules that load and evaluate.

What is checked is read from the files, so that a new alert, panel or metric is checked too: every
vector selector of every alert expression in deploy/prometheus/alerts.yml, every query of every
panel of docs/grafana/order-service.json (its variables given a value) and every selector in them,
and every metric of docs/operations.md's table. Once the service has processed orders, in
exactly-once mode and with malformed ones among them, each must return at least one series, and a
panel's query a number (not only NaN). A labelled counter that only appears at its first event has
no series here, and `increase(...) > 0` would miss that event.
"""

import asyncio
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from order_service.cli.samples import malformed_corpus
from tests.support.kafka import produce
from tests.support.orders import Record, valid_orders
from tests.support.prometheus import (
    ALERTS,
    DASHBOARD,
    PrometheusServer,
    alert_rules,
    dashboard_queries,
    dashboard_variables,
    documented_metrics,
    prometheus_binary,
    selectors,
    substitute,
)
from tests.support.service import SHORT_SESSION, ServiceProcess, ServiceTopics, scrape, total
from tests.support.waiting import eventually

Service = Callable[..., ServiceProcess]
EOS = {"delivery__guarantee": "exactly_once", "consumer__max_batch_records": "100", **SHORT_SESSION}
ORDERS, MALFORMED_EVERY = 2_000, 200  # 10 malformed ones, dead-lettered
PROCESSED = "order_service_orders_processed"
DEAD = "order_service_records_dead_lettered"


@pytest.fixture(scope="session")
def binary() -> Path:
    return prometheus_binary()


@pytest.fixture
def prometheus(binary: Path, tmp_path: Path) -> Iterator[Callable[[int], PrometheusServer]]:
    """Starts Prometheus scraping the service's HTTP port; stopped (by its pid) at the end."""
    started: list[PrometheusServer] = []

    def start(port: int) -> PrometheusServer:
        server = PrometheusServer(binary, tmp_path, [f"127.0.0.1:{port}"], rule_files=[ALERTS], interval_s=1)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()
        print(f"--- prometheus log {server.log} ---\n{server.output()[-3000:]}")


def mixed_orders() -> tuple[list[Record], int]:
    records, corpus, invalid = valid_orders(ORDERS, prefix="prom"), malformed_corpus(), 0
    for i in range(MALFORMED_EVERY - 1, ORDERS, MALFORMED_EVERY):
        records[i] = (f"bad-{i}".encode(), corpus[i % len(corpus)].value, [])
        invalid += 1
    return records, invalid


@dataclass(frozen=True)
class Check:
    origin: str  # where the query comes from
    number: bool  # a panel's own query: one series at least must hold a number (NaN draws nothing)


def checks(server: PrometheusServer) -> dict[str, Check]:
    """The queries to make, read from the rules, the dashboard and the docs."""
    wanted: dict[str, Check] = {}
    for rule in alert_rules():
        named = selectors(rule["expr"])
        assert named, f"{rule['alert']}: no metric found in {rule['expr']!r}"
        for selector in named:
            wanted.setdefault(selector, Check(f"alert {rule['alert']}", number=False))
    dashboard = json.loads(DASHBOARD.read_text())

    def label_values(selector: str, label: str) -> list[str]:
        params = {"match[]": selector} if selector else {}
        values: list[str] = server.api(f"label/{label}/values", **params)
        return values

    variables = dashboard_variables(dashboard, label_values)
    queries = dashboard_queries(dashboard)
    assert queries, "the dashboard has no queries"
    for title, expr in queries:
        query = substitute(expr, variables)
        wanted[query] = Check(f"panel {title!r}", number=True)
        for selector in selectors(query):
            wanted.setdefault(selector, Check(f"panel {title!r}, selector", number=False))
    documented = documented_metrics()
    assert documented, "docs/operations.md: no metrics table found"
    for metric in documented:
        # A histogram is documented by its name, exported as _bucket, _sum and _count.
        wanted.setdefault(
            f'{{__name__=~"{metric}|{metric}_count"}}', Check("docs/operations.md", number=False)
        )
    return wanted


def values(series: list[dict[str, Any]]) -> list[float]:
    return [float(s["value"][1]) for s in series]


async def test_every_alert_metric_and_dashboard_query_has_series_on_a_real_prometheus(
    kafka: str, topics: ServiceTopics, service: Service, prometheus: Callable[[int], PrometheusServer]
) -> None:
    instance = service(**EOS).start()
    server = await asyncio.to_thread(prometheus, instance.http_port)
    await eventually(
        lambda: asyncio.to_thread(scrape, instance.http_port),
        until=lambda m: len(m.get("order_service_consumer_lag_records", [])) == 6,
        timeout=60,
        what="the service serving /metrics with its 6 partitions assigned",
    )
    # Prometheus has a sample from before the orders: the counters' increase shows in rate() (a
    # series first scraped after the run would hold its total from the start, at a rate of 0).
    await eventually(
        lambda: asyncio.to_thread(server.query, "order_service_consumer_lag_records"),
        until=lambda series: len(series) == 6,
        timeout=30,
        what="Prometheus scraping the service",
    )
    records, invalid = mixed_orders()
    await produce(kafka, topics.input, records)
    await eventually(
        lambda: asyncio.to_thread(scrape, instance.http_port),
        until=lambda m: (
            total(m, PROCESSED, f"{PROCESSED}_total") == ORDERS - invalid
            and total(m, DEAD, f"{DEAD}_total") == invalid
        ),
        timeout=60,
        what=f"{ORDERS - invalid} orders processed and {invalid} dead-lettered",
    )

    wanted = await asyncio.to_thread(checks, server)

    def missing() -> dict[str, str]:
        """The queries without a series, or a panel's without a number: what is empty."""
        found = {query: values(server.query(query)) for query in wanted}
        return {
            query: wanted[query].origin
            for query, numbers in found.items()
            if not numbers or (wanted[query].number and all(math.isnan(v) for v in numbers))
        }

    # A few scrapes after the last order: every rate() window holds two samples or more.
    await eventually(
        lambda: asyncio.to_thread(missing),
        until=lambda missing: not missing,
        timeout=30,
        interval=1,
        what="a series for every query (the last value lists those without)",
    )

    print(f"{len(wanted)} queries, each with at least one series:")
    for query, check in wanted.items():
        found = values(server.query(query))
        numbers = [v for v in found if not math.isnan(v)]
        top = f"{max(numbers):g}" if numbers else "NaN"
        print(f"  {len(found):3} series, max {top:>9}  {check.origin}: {query}")

    # The rules loaded and evaluate without errors; none fires on a healthy service.
    async def rules() -> list[dict[str, object]]:
        groups = (await asyncio.to_thread(server.api, "rules"))["groups"]
        return [rule for group in groups for rule in group["rules"]]

    def evaluated(found: list[dict[str, object]]) -> bool:  # never evaluated: year 1
        return len(found) == len(alert_rules()) and not any(
            str(r.get("lastEvaluation", "0001")).startswith("0001") for r in found
        )

    loaded = await eventually(rules, until=evaluated, timeout=10, what="every rule evaluated")
    print("rules:", ", ".join(f"{r['name']} {r['health']} {r['state']}" for r in loaded))
    assert {str(r["name"]): r["health"] for r in loaded} == {r["alert"]: "ok" for r in alert_rules()}
    assert [r["name"] for r in loaded if r.get("state") == "firing"] == []

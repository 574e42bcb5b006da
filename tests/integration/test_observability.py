"""What operators see: /metrics during and after a run, JSON logs, and traces across records."""

import asyncio
import json
from collections.abc import Callable

from opentelemetry import propagate, trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from order_service.bootstrap import create_app
from order_service.cli.samples import malformed_corpus
from order_service.settings import load_settings
from tests.support.kafka import produce, read_all
from tests.support.orders import Record, valid_orders
from tests.support.service import ServiceProcess, ServiceTopics, scrape, total
from tests.support.waiting import eventually

Service = Callable[..., ServiceProcess]


def mixed_orders(count: int, every: int) -> tuple[list[Record], int]:
    records, corpus, invalid = valid_orders(count, prefix="obs"), malformed_corpus(), 0
    for i in range(every - 1, count, every):
        records[i] = (f"bad-{i}".encode(), corpus[i % len(corpus)].value, [])
        invalid += 1
    return records, invalid


async def test_metrics_show_lag_falling_to_zero_and_count_every_outcome(
    kafka: str, topics: ServiceTopics, service: Service
) -> None:
    records, invalid = mixed_orders(5_000, every=50)
    instance = service(consumer__max_batch_records="100").start()
    during = await eventually(
        lambda: asyncio.to_thread(scrape, instance.http_port),
        until=lambda m: "order_service_consumer_lag_records" in m,
        timeout=60,
        what="/metrics served",
    )
    await produce(kafka, topics.input, records)
    busy = await asyncio.to_thread(scrape, instance.http_port)
    processed = total(busy, "order_service_orders_processed", "order_service_orders_processed_total")
    print(f"scraped during the run: {processed:.0f} processed")
    assert "order_service_batch_size_records" in during

    def settled(m: dict[str, list[tuple[str, dict[str, str], float]]]) -> bool:
        lags = [v for _, _, v in m.get("order_service_consumer_lag_records", [])]
        done = total(m, "order_service_orders_processed", "order_service_orders_processed_total")
        return len(lags) == 6 and max(lags) == 0 and done == len(records) - invalid

    after = await eventually(
        lambda: asyncio.to_thread(scrape, instance.http_port),
        until=settled,
        timeout=120,
        what="lag 0, all counted",
    )
    assert (
        total(after, "order_service_records_dead_lettered", "order_service_records_dead_lettered_total")
        == invalid
    )
    assert total(
        after, "order_service_orders_processed", "order_service_orders_processed_total", status="processed"
    ) == (len(records) - invalid)
    histogram = "order_service_end_to_end_latency_seconds"
    assert total(after, histogram, f"{histogram}_count") > 0, histogram
    # The engine's flow gauges: one series per partition, all drained once everything is committed.
    for gauge in ("order_service_buffered_records", "order_service_processed_uncommitted_records"):
        series = after.get(gauge, [])
        assert len(series) == 6, (gauge, series)
        assert all(v == 0 for _, _, v in series), (gauge, series)
    assert total(after, "order_service_records_in_flight", "order_service_records_in_flight") == 0
    assert total(after, "order_service_assigned_partitions", "order_service_assigned_partitions") == 6
    assert total(after, "order_service_rebalances", "order_service_rebalances_total") >= 1
    assert any(name.startswith("faststream_") for name in after), "FastStream's own middleware metrics too"


async def test_every_log_line_is_json_and_processing_lines_carry_the_order_id(
    kafka: str, topics: ServiceTopics, service: Service
) -> None:
    records, invalid = mixed_orders(300, every=30)
    records.append(order_with_currency("obs-rejected", "JPY"))
    instance = service(log_level="DEBUG").start()
    await produce(kafka, topics.input, records)
    await read_all(kafka, topics.dead_letter, expected=invalid)
    await read_all(kafka, topics.output, expected=len(records) - invalid)
    assert instance.terminate() == 0

    lines = [json.loads(line) for line in instance.output().splitlines()]  # every line parses
    processing = [line for line in lines if line["message"].startswith(("order ", "dead-lettering"))]
    assert len(processing) >= len(records)
    assert all("order_id" in line and "offset" in line and "partition" in line for line in processing)
    rejected = [line for line in processing if line["message"].startswith("order rejected")]
    assert [line["order_id"] for line in rejected] == ["obs-rejected"]


def order_with_currency(order_id: str, currency: str) -> Record:
    value = json.dumps({"order_id": order_id, "customer_id": "c", "total": "1.00", "currency": currency})
    return (order_id.encode(), value.encode(), [])


async def test_the_output_record_continues_the_input_trace_as_a_child(
    kafka: str, topics: ServiceTopics
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    settings = load_settings(
        kafka={"bootstrap_servers": kafka},
        topics={"input": topics.input, "output": topics.output, "dead_letter": topics.dead_letter},
        consumer={"group_id": topics.group},
    )
    app = create_app(settings, tracer_provider=provider)
    upstream = provider.get_tracer("upstream")
    with upstream.start_as_current_span("place order") as parent:
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
    key, value, _ = valid_orders(1, prefix="traced")[0]
    await app.start()
    try:
        await produce(kafka, topics.input, [(key, value, [(k, v.encode()) for k, v in carrier.items()])])
        [output] = await read_all(kafka, topics.output, expected=1)
    finally:
        await app.stop()

    traceparent = dict(output.headers)["traceparent"].decode()
    _, trace_id, span_id, _ = traceparent.split("-")
    parent_context = parent.get_span_context()
    assert int(trace_id, 16) == parent_context.trace_id, "same trace as the input"
    spans = exporter.get_finished_spans()
    scope_of = {s.context.span_id: s.instrumentation_scope.name for s in spans if s.instrumentation_scope}
    scopes = set(scope_of.values())
    assert "opentelemetry.instrumentation.faststream" in scopes, "FastStream's telemetry middleware is on"
    [process_span] = [
        s for s in spans if s.instrumentation_scope and s.instrumentation_scope.name == "order_service"
    ]
    assert process_span.context.span_id == int(span_id, 16), "the output names the processing span"
    assert process_span.parent is not None
    assert process_span.parent.span_id == parent_context.span_id, "which is a child of the input's span"
    assert trace.get_tracer_provider() is not provider

"""Trace context flows from an input record to the records it produces."""

from collections.abc import Sequence
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from kafka_delivery.handlers.tracing import RecordTracing
from kafka_delivery.types import OutgoingRecord
from tests.support.fakes import record

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


class Outputs:
    """Two outputs, one with a stale traceparent; awaited or made `now` (ImmediateHandler)."""

    async def __call__(self, rec: Any) -> Sequence[OutgoingRecord]:
        return self.now(rec)

    def now(self, rec: Any) -> Sequence[OutgoingRecord]:
        return [
            OutgoingRecord("out", b"v", b"k", headers=[("traceparent", b"stale"), ("keep", b"1")]),
            OutgoingRecord("out.dlq", b"v", b"k"),
        ]


outputs = Outputs()


@pytest.mark.parametrize("how", ["awaited", "now"])
async def test_the_handler_runs_in_a_span_of_the_input_trace_and_outputs_carry_it(how: str) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    middleware = RecordTracing(outputs, provider.get_tracer("test"))
    traceparent = f"00-{TRACE_ID}-{PARENT_ID}-01".encode()
    traced = record("in", 2, 40, headers=[("traceparent", traceparent)])

    outs = await middleware(traced) if how == "awaited" else middleware.now(traced)

    [span] = exporter.get_finished_spans()
    assert span.name == "in process"
    assert span.kind is SpanKind.CONSUMER
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert span.parent is not None
    assert format(span.parent.span_id, "016x") == PARENT_ID
    assert dict(span.attributes or {}) == {
        "messaging.system": "kafka",
        "messaging.destination.name": "in",
        "messaging.kafka.destination.partition": 2,
        "messaging.kafka.message.offset": 40,
    }
    expected = f"00-{TRACE_ID}-{format(span.context.span_id, '016x')}-01".encode()
    for out in outs:
        assert [v for k, v in out.headers if k == "traceparent"] == [expected]
    assert ("keep", b"1") in outs[0].headers


async def test_an_input_without_trace_context_starts_a_new_trace() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    outs = await RecordTracing(outputs, provider.get_tracer("test"))(record())
    [span] = exporter.get_finished_spans()
    assert span.parent is None
    [stamped] = [v for k, v in outs[1].headers if k == "traceparent"]
    ids = f"00-{format(span.context.trace_id, '032x')}-{format(span.context.span_id, '016x')}-"
    assert stamped.decode().startswith(ids)

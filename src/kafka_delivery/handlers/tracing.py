"""W3C trace context from input records to the records they produce."""

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import cast

from opentelemetry import propagate
from opentelemetry.trace import Span, SpanKind, Tracer

from kafka_delivery.types import ImmediateHandler, InputRecord, OutgoingRecord, RecordHandler

_TRACE_HEADERS = ("traceparent", "tracestate")


class RecordTracing:
    """Runs the handler in a span that continues the input's trace, and stamps outputs with it."""

    def __init__(self, handler: RecordHandler, tracer: Tracer) -> None:
        self._handler = handler
        self._tracer = tracer

    async def __call__(self, record: InputRecord) -> Sequence[OutgoingRecord]:
        with self._span(record):
            return self._stamp(await self._handler(record))

    def now(self, record: InputRecord) -> Sequence[OutgoingRecord]:
        """The same, made in the caller (`ImmediateHandler`)."""
        with self._span(record):
            return self._stamp(cast(ImmediateHandler, self._handler).now(record))

    def _span(self, record: InputRecord) -> AbstractContextManager[Span]:
        carrier = {k: v.decode("latin-1") for k, v in record.headers if k in _TRACE_HEADERS}
        attributes = {
            "messaging.system": "kafka",
            "messaging.destination.name": record.topic,
            "messaging.kafka.destination.partition": record.partition,
            "messaging.kafka.message.offset": record.offset,
        }
        return self._tracer.start_as_current_span(
            f"{record.topic} process",
            context=propagate.extract(carrier),
            kind=SpanKind.CONSUMER,
            attributes=attributes,
        )

    @staticmethod
    def _stamp(outputs: Sequence[OutgoingRecord]) -> Sequence[OutgoingRecord]:
        stamp: dict[str, str] = {}
        propagate.inject(stamp)
        for out in outputs:
            out.headers = [h for h in out.headers if h[0] not in stamp]
            out.headers += [(k, v.encode()) for k, v in stamp.items()]
        return outputs

"""Metrics registry, tracer provider and the /metrics route of one service instance."""

import os
from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from prometheus_client import CollectorRegistry, make_asgi_app

from kafka_delivery.operations import CountsPerLabel, PipelineMetrics


@dataclass
class Observability:
    registry: CollectorRegistry
    metrics: PipelineMetrics
    orders: CountsPerLabel
    tracer_provider: TracerProvider | None

    def metrics_route(self) -> tuple[str, Any]:
        return ("/metrics", make_asgi_app(self.registry))


def tracer_provider_for(exporter_name: str) -> TracerProvider | None:
    """A provider when OTEL_TRACES_EXPORTER names an exporter; None (no tracing, no cost) otherwise.

    Settings validated the name, and that the otlp exporter is installed, before anything started.
    """
    if exporter_name == "none" or os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return None
    exporter: SpanExporter
    if exporter_name == "console":
        exporter = ConsoleSpanExporter()
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()  # reads OTEL_EXPORTER_OTLP_* itself
    service = os.environ.get("OTEL_SERVICE_NAME", "order-service")
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def build_observability(
    exporter_name: str = "none", tracer_provider: TracerProvider | None = None
) -> Observability:
    registry = CollectorRegistry()
    return Observability(
        registry=registry,
        metrics=PipelineMetrics(registry, "order_service"),
        orders=CountsPerLabel(
            "order_service_orders_processed",
            "Orders by outcome",
            "status",
            ("processed", "rejected"),
            registry,
        ),
        tracer_provider=tracer_provider or tracer_provider_for(exporter_name),
    )

"""The service's broker over a given sink, for FastStream's in-memory TestKafkaBroker."""

from faststream.kafka import KafkaBroker

from kafka_delivery.types import RecordSink
from order_service.adapters.connection import ProducerFactory
from order_service.adapters.observability import build_observability
from order_service.bootstrap import Subscription, create_broker
from order_service.processing import Processor
from order_service.settings import Settings


def create_test_broker(settings: Settings, sink: RecordSink) -> tuple[KafkaBroker, list[Subscription]]:
    """The same subscriptions and pipelines as the service, publishing through `sink`; the caller
    closes the pipelines (their workers) when done. A plain processing function only: a factory is
    entered by the app (`create_app`), and effects need a database."""
    return create_broker(
        settings,
        build_observability(),
        sink=sink,
        producers=ProducerFactory(settings.kafka, settings.producer),
        processor=Processor(settings.processing),
        effects=None,
    )

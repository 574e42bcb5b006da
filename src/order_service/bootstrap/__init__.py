"""The composition root: builds every part of the service from settings, and nothing else does.

    app.py         create_app: the sink, the broker, readiness, stall monitors, start and shutdown
    broker.py      create_broker: the FastStream broker, one subscription per subscribed topic
    pipelines.py   one subscription's pipeline: the order handler, dead letters, the engine and its
                   guarantee

Everything is built complete, before any I/O. Two facts exist only once the service runs, and each
has one named place: the consumer, which FastStream creates on the subscriber when the broker starts
(`Subscription.consumer`), and the largest request a producer must send, learned from the input
topic's configuration at start (`ProducerFactory.max_request_size`).
"""

from order_service.bootstrap.app import create_app
from order_service.bootstrap.broker import Subscription, create_broker

__all__ = ["Subscription", "create_app", "create_broker"]

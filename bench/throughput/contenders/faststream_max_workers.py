"""FastStream's own concurrency, order kept per partition: `max_workers` with an ack after processing.

The same work as order-service's I/O-bound runs (bench.throughput.io_bound.processor), on pydantic models.
"""

import logging
import os

from faststream import AckPolicy, FastStream
from faststream.kafka import KafkaBroker

from bench.throughput.io_bound.processor import process
from bench.throughput.kafka_io import PARTITIONS
from order_service.domain.events import OrderCreated, OrderProcessed
from order_service.domain.rules import OrderPolicy

# With any ack policy but ACK_FIRST, FastStream starts `max_workers` consumers in the group, each
# handling its partitions one record at a time; its docs: as many workers as partitions, more idle.
WORKERS = PARTITIONS
POLICY = OrderPolicy()

# Its two lines per message at DEBUG, as order-service logs them: the work compared is the same.
broker = KafkaBroker(os.environ["BENCH_BOOTSTRAP"].split(","), log_level=logging.DEBUG)
app = FastStream(broker)


@broker.subscriber(
    os.environ["BENCH_INPUT"],
    group_id=os.environ["BENCH_GROUP"],
    auto_offset_reset="earliest",
    max_workers=WORKERS,
    ack_policy=AckPolicy.NACK_ON_ERROR,
)
@broker.publisher(os.environ["BENCH_OUTPUT"])
async def handle(order: OrderCreated) -> OrderProcessed:
    return await process(order, POLICY)

"""The seed's FastStream example: a subscriber and a publisher on pydantic models, FastStream defaults."""

import os
from datetime import UTC, datetime
from decimal import Decimal

from faststream import FastStream
from faststream.kafka import KafkaBroker
from pydantic import BaseModel


class OrderCreated(BaseModel):
    order_id: str
    customer_id: str
    total: Decimal


class OrderProcessed(BaseModel):
    order_id: str
    customer_id: str
    status: str
    total: Decimal
    processed_at: datetime


broker = KafkaBroker(os.environ["BENCH_BOOTSTRAP"].split(","))
app = FastStream(broker)


@broker.subscriber(
    os.environ["BENCH_INPUT"], group_id=os.environ["BENCH_GROUP"], auto_offset_reset="earliest"
)
@broker.publisher(os.environ["BENCH_OUTPUT"])
async def handle(order: OrderCreated) -> OrderProcessed:
    return OrderProcessed(
        order_id=order.order_id,
        customer_id=order.customer_id,
        status="processed",
        total=order.total,
        processed_at=datetime.now(UTC),
    )

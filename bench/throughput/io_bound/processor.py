"""The I/O-bound runs' processor: the simulated call (BENCH_IO_MS), then the default rules.

order-service loads it with ORDER_SERVICE_PROCESSING__PROCESSOR=bench.throughput.io_bound.processor:process.
"""

from bench.throughput.contenders.json_work import simulated_call
from order_service.domain.events import OrderCreated, OrderProcessed
from order_service.domain.rules import OrderPolicy, process_order


async def process(order: OrderCreated, policy: OrderPolicy) -> OrderProcessed:
    await simulated_call()
    return process_order(order, policy)

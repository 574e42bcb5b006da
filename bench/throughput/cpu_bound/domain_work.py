"""The run `domain-work`: the work every contender of the CPU-bound table does per order, timed alone.

bench/throughput/contenders/order_work.py's `outcome` (validate, apply the rules, encode) over the
bench's generated orders, in this process, no Kafka: what is left of a contender's CPU per record
after it is the framework's and the Kafka client's (the report's "framework overhead"). Same
pydantic as order-service and the confluent-loop venv (bench/throughput/cpu_bound/peers.py).
"""

import gc
import time

from bench.throughput import kafka_io
from bench.throughput.contenders.order_work import outcome
from bench.throughput.measure import Run
from bench.throughput.rounds import median_run

NAME = "domain-work"


def time_domain_work(records: int, *, label: str) -> Run:
    """`records` orders through `outcome`; its CPU per record (this thread's) and records per second."""
    orders = [value for _, value in kafka_io.make_orders(records, prefix=label)]
    gc.collect()  # the garbage of making the orders is not the domain's
    wall, cpu = time.perf_counter(), time.thread_time()
    valid = sum(outcome(value) is not None for value in orders)
    cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
    if valid != records:
        raise RuntimeError(f"{records - valid} of the bench's {records} orders are malformed")
    return Run(label, records, records / wall, None, None, None, cpu_us_per_record=cpu / records * 1e6)


def domain_work(records: int, rounds: int) -> Run:
    """`rounds` timings of `records` orders; the row is the median by records per second."""
    runs = [time_domain_work(records, label=f"{NAME}-{n}") for n in range(1, rounds + 1)]
    for run in runs:
        print(f"{run.name}: {run.as_dict()}", flush=True)
    return median_run(NAME, runs)

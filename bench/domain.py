"""The domain's work per order, timed alone: decode, rules, encode, before and after issue 28.

`python -m bench.domain` (under `flock /tmp/quiet.lock` on a shared machine): the benchmark's
sample orders (make_orders, rng 42), each step as the service does it, for the frozen pre-issue-28
domain (tests/service/domain/reference.py) and the current one, interleaved in one process. A
figure is the fastest pass of a run, in µs per order; each run is printed, then the medians.
"""

import argparse
import gc
import statistics
import time
from collections.abc import Callable
from typing import Any

from tests.service.domain import reference

from bench.throughput.kafka_io import make_orders
from order_service.domain import rules
from order_service.domain.decoding import decode_order

Steps = dict[str, Callable[[], None]]


def steps(values: list[bytes], decode: Callable[[bytes], Any], process: Callable[[Any], Any]) -> Steps:
    """Each step over every value, and the three in turn per value as the service runs them. Each
    result is dropped at once, as in the service: kept, they would make the collector's work."""
    orders = [decode(value) for value in values]
    outcomes = [process(order) for order in orders]

    def decoding() -> None:
        for value in values:
            decode(value)

    def ruling() -> None:
        for order in orders:
            process(order)

    def encoding() -> None:
        for outcome in outcomes:
            outcome.__pydantic_serializer__.to_json(outcome)

    def all_three() -> None:
        for value in values:
            outcome = process(decode(value))
            outcome.__pydantic_serializer__.to_json(outcome)

    return {"decode": decoding, "rules": ruling, "encode": encoding, "all": all_three}


def fastest(cases: dict[str, Steps], *, passes: int, count: int) -> dict[str, float]:
    best: dict[str, float] = {}
    for _ in range(passes):
        for side, timed in cases.items():
            for step, run in timed.items():
                started = time.perf_counter()
                run()
                took = (time.perf_counter() - started) / count * 1e6
                best[f"{side}.{step}"] = min(took, best.get(f"{side}.{step}", took))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description="The domain's work per order, before and after issue 28.")
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--passes", type=int, default=15)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    values = [value for _, value in make_orders(args.orders, prefix="ord")]
    old_policy, policy = reference.OrderPolicy(), rules.OrderPolicy()
    cases = {
        "before": steps(
            values,
            reference.OrderCreated.__pydantic_validator__.validate_json,
            lambda order: reference.process_order(order, old_policy),
        ),
        "after": steps(values, decode_order, lambda order: rules.process_order(order, policy)),
    }
    gc.collect()
    gc.freeze()
    runs = [fastest(cases, passes=args.passes, count=len(values)) for _ in range(args.runs)]
    for run in runs:
        print(" ".join(f"{name}={took:.2f}" for name, took in run.items()))
    print("median of", len(runs), "runs, µs per order:")
    for name in runs[0]:
        print(f"  {name:14} {statistics.median(run[name] for run in runs):6.2f}")


if __name__ == "__main__":
    main()

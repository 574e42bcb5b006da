"""bench.domain: each step of both domains gets a time per order."""

from bench.domain import fastest, steps
from bench.throughput.kafka_io import make_orders

from order_service.domain import rules
from order_service.domain.decoding import decode_order
from tests.service.domain import reference


def test_each_step_of_each_domain_gets_a_time_per_order() -> None:
    values = [value for _, value in make_orders(20, prefix="ord")]
    before = steps(
        values,
        reference.OrderCreated.model_validate_json,
        lambda o: reference.process_order(o, reference.OrderPolicy()),
    )
    after = steps(values, decode_order, lambda o: rules.process_order(o, rules.OrderPolicy()))

    best = fastest({"before": before, "after": after}, passes=2, count=len(values))

    assert set(best) == {
        f"{side}.{step}" for side in ("before", "after") for step in ("decode", "rules", "encode", "all")
    }
    assert all(0 < took < 10_000 for took in best.values())

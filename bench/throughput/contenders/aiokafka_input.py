"""The input side of the aiokafka contenders (seed_naive, batch_copier): the run's group on its input.

aiokafka and the standard library only, as in the contenders themselves: their peak RSS is measured.
They run as `python -m bench.throughput.contenders.<name>` from the repository, which imports this.
"""

import os

from aiokafka import AIOKafkaConsumer


def input_consumer(**settings: object) -> AIOKafkaConsumer:
    """BENCH_INPUT in group BENCH_GROUP from the earliest offset, committed by hand; `settings` added."""
    return AIOKafkaConsumer(
        os.environ["BENCH_INPUT"],
        bootstrap_servers=os.environ["BENCH_BOOTSTRAP"].split(","),
        group_id=os.environ["BENCH_GROUP"],
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **settings,
    )

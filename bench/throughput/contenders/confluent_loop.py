"""The loop a user writes by hand with confluent-kafka (librdkafka), as its docs recommend for throughput.

`consume(num_messages=2000)`, then for each record order-service's work
(bench/throughput/contenders/order_work.py) and a `produce` of its outcome, or of the record itself to
the dead-letter topic when it is malformed. BENCH_GUARANTEE "at-least-once": an idempotent producer
(acks=all), `flush`, then a synchronous commit of what was consumed. "exactly-once": one transaction
per batch, the consumer's positions sent to it (confluent-kafka's examples/eos-transactions.py),
inputs read `read_committed`. A failed delivery or transaction ends the process before its offsets
are committed: a restart reads the batch again. Runs in a venv of its own
(bench/throughput/cpu_bound/peers.py); SIGTERM ends the loop after the batch in hand.
"""

import os
import signal
from collections.abc import Mapping
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer  # type: ignore[import-not-found]

from bench.throughput.contenders.order_work import outcome

BATCH = 2000
# A batch short of BATCH (the end of the backlog) waits this long for more.
CONSUME_TIMEOUT_S = 0.1


class Loop:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.output, self.dead_letter = env["BENCH_OUTPUT"], env["BENCH_DEAD_LETTER"]
        self.exactly_once = env["BENCH_GUARANTEE"] == "exactly-once"
        self.failed: list[KafkaError] = []
        self.running = True
        self.consumer = Consumer(
            {
                "bootstrap.servers": env["BENCH_BOOTSTRAP"],
                "group.id": env["BENCH_GROUP"],
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",  # librdkafka's default; exactly-once needs it
            }
        )
        producer: dict[str, Any] = {
            "bootstrap.servers": env["BENCH_BOOTSTRAP"],
            "enable.idempotence": True,
            "acks": "all",
            "on_delivery": self.delivered,
        }
        if self.exactly_once:
            producer["transactional.id"] = f"{env['BENCH_GROUP']}.loop"
        self.producer = Producer(producer)
        self.consumer.subscribe([env["BENCH_INPUT"]])

    def delivered(self, error: KafkaError | None, _record: Any) -> None:
        if error is not None:
            self.failed.append(error)

    def process(self, records: list[Any]) -> None:
        for record in records:
            if record.error():
                raise KafkaException(record.error())
            done = outcome(record.value())
            if done is None:
                self.producer.produce(self.dead_letter, value=record.value(), key=record.key())
            else:
                self.producer.produce(self.output, value=done[1], key=done[0])
            self.producer.poll(0)

    def run(self) -> None:
        if self.exactly_once:
            self.producer.init_transactions()
        while self.running:
            records = self.consumer.consume(num_messages=BATCH, timeout=CONSUME_TIMEOUT_S)
            if not records:
                continue
            if self.exactly_once:
                self.producer.begin_transaction()
                self.process(records)
                self.producer.send_offsets_to_transaction(
                    self.consumer.position(self.consumer.assignment()),
                    self.consumer.consumer_group_metadata(),
                )
                self.producer.commit_transaction()
            else:
                self.process(records)
                self.producer.flush()
                if self.failed:
                    raise KafkaException(self.failed[0])
                self.consumer.commit(asynchronous=False)
        self.consumer.close()

    def stop(self, *_: object) -> None:
        self.running = False


def main() -> None:
    loop = Loop(os.environ)
    signal.signal(signal.SIGTERM, loop.stop)
    loop.run()


if __name__ == "__main__":
    main()

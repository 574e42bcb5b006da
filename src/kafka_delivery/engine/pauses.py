"""Pausing input partitions for several reasons at once: a backoff, a delayed retry, a full buffer.

A partition is fetched again only when no reason to pause it is left; each part of the engine pauses
and resumes through its own view, so a backoff ending never resumes a partition whose buffer is full.
"""

from collections.abc import Callable, Iterable

from aiokafka import AIOKafkaConsumer, TopicPartition


class Pauses:
    def __init__(self, consumer: Callable[[], AIOKafkaConsumer | None]) -> None:
        # The consumer of the moment (None before it starts), also for the views' seeks.
        self.consumer = consumer
        self._reasons: dict[TopicPartition, set[str]] = {}

    def pause(self, tp: TopicPartition, reason: str) -> None:
        consumer = self.consumer()
        if consumer is None or tp not in consumer.assignment():
            return
        reasons = self._reasons.setdefault(tp, set())
        if not reasons:
            consumer.pause(tp)
        reasons.add(reason)

    def resume(self, tp: TopicPartition, reason: str) -> None:
        reasons = self._reasons.get(tp)
        if reasons is None or reason not in reasons:
            return
        reasons.discard(reason)
        if reasons:
            return
        del self._reasons[tp]
        consumer = self.consumer()
        if consumer is not None and tp in consumer.assignment():
            consumer.resume(tp)

    def paused_for(self, reason: str) -> set[TopicPartition]:
        return {tp for tp, reasons in self._reasons.items() if reason in reasons}

    def forget(self, partitions: Iterable[TopicPartition]) -> None:
        """Revoked partitions: their next assignment starts unpaused."""
        for tp in partitions:
            self._reasons.pop(tp, None)

    def view(self, reason: str) -> "PauseView":
        return PauseView(self, reason)


class PauseView:
    """The consumer calls a backoff or a delay gate makes (assignment, seek, pause, resume),
    with its pauses counted under one reason."""

    def __init__(self, pauses: Pauses, reason: str) -> None:
        self._pauses = pauses
        self._reason = reason

    def assignment(self) -> set[TopicPartition]:
        consumer = self._pauses.consumer()
        return set() if consumer is None else set(consumer.assignment())

    def seek(self, tp: TopicPartition, offset: int) -> None:
        consumer = self._pauses.consumer()
        if consumer is not None:
            consumer.seek(tp, offset)

    def pause(self, *partitions: TopicPartition) -> None:
        for tp in partitions:
            self._pauses.pause(tp, self._reason)

    def resume(self, *partitions: TopicPartition) -> None:
        for tp in partitions:
            self._pauses.resume(tp, self._reason)

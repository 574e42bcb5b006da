"""Exception middleware that turns a failing record into a dead letter, one record at a time."""

import logging
from collections.abc import Iterable, Sequence

from order_service.messaging.envelope import Failure, dead_letter
from order_service.messaging.errors import classify, safe_message
from order_service.messaging.records import InputRecord, OutgoingRecord, RecordHandler

logger = logging.getLogger(__name__)


class DeadLetterMiddleware:
    """Wraps a record handler: an exception routes that record, and only it, to the DLQ publisher."""

    def __init__(
        self,
        handler: RecordHandler,
        *,
        topic: str,
        group_id: str,
        secrets: Iterable[str] = (),
        max_message_chars: int = 512,
    ) -> None:
        self._handler = handler
        self.topic = topic
        self._group_id = group_id
        self._secrets = tuple(secrets)
        self._max_message_chars = max_message_chars

    async def __call__(self, record: InputRecord) -> Sequence[OutgoingRecord]:
        try:
            return await self._handler(record)
        except Exception as exc:  # noqa: BLE001 - every failure of one record is routed, none escapes
            return [self.route(record, exc, attempts=1)]

    def route(self, record: InputRecord, exc: BaseException, *, attempts: int) -> OutgoingRecord:
        failure = Failure(
            category=classify(exc),
            error_type=type(exc).__name__,
            message=safe_message(exc, secrets=self._secrets, limit=self._max_message_chars),
            attempts=attempts,
        )
        logger.warning(
            "dead-lettering record: %s %s",
            failure.category.value,
            failure.error_type,
            extra={
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "error_category": failure.category.value,
            },
        )
        return dead_letter(record, failure, topic=self.topic, group_id=self._group_id)

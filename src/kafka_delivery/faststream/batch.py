"""FastStream glue: hand a fetched batch to the pipeline as raw aiokafka records."""

from typing import Any

from faststream.kafka.message import FAKE_CONSUMER, KafkaMessage

RawBatch = tuple[Any, ...]


async def parse_raw_batch(records: RawBatch) -> KafkaMessage:
    # FastStream's own batch parser decodes every header as UTF-8, so one record with a
    # binary header would fail its whole batch; the pipeline reads records as they are.
    first, last = records[0], records[-1]
    return KafkaMessage(
        raw_message=records,
        body=b"",
        message_id=f"{first.offset}-{last.offset}-{first.timestamp}",
        consumer=FAKE_CONSUMER,
    )


async def decode_raw_batch(message: KafkaMessage) -> RawBatch:
    records: RawBatch = message.raw_message
    return records

"""A record handler for JSON events described by pydantic models."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from pydantic import BaseModel

from order_service.messaging.errors import DeserializationError
from order_service.messaging.records import InputRecord, OutgoingRecord
from order_service.messaging.retry import provenance

In = TypeVar("In", bound=BaseModel)
Out = TypeVar("Out", bound=BaseModel)

JSON_HEADERS = [("content-type", b"application/json")]


@dataclass(frozen=True, kw_only=True)
class JsonHandler(Generic[In, Out]):
    """Decodes the value as `In`, awaits `process`, and encodes the result keyed by `key_of`.

    Each output carries the `input.*` provenance headers of the record it came from (retry.py).
    """

    input_model: type[In]
    process: Callable[[In], Awaitable[Out]]
    output_topic: str
    key_of: Callable[[Out], str]
    max_value_bytes: int

    def decode(self, value: bytes | None) -> In:
        if not value:
            raise DeserializationError("empty or null value")
        if len(value) > self.max_value_bytes:
            raise DeserializationError(
                f"value of {len(value)} bytes exceeds the limit of {self.max_value_bytes} bytes"
            )
        return self.input_model.model_validate_json(value)

    async def __call__(self, record: InputRecord) -> list[OutgoingRecord]:
        result = await self.process(self.decode(record.value))
        return [
            OutgoingRecord(
                topic=self.output_topic,
                key=self.key_of(result).encode(),
                value=result.model_dump_json().encode(),
                headers=[*JSON_HEADERS, *provenance(record)],
            )
        ]

"""A record handler for JSON events described by pydantic models."""

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from kafka_delivery.errors import DeserializationError
from kafka_delivery.handlers.retry import provenance
from kafka_delivery.types import InputRecord, OutgoingRecord

In = TypeVar("In", bound=BaseModel)
Out = TypeVar("Out", bound=BaseModel)

CONTENT_TYPE = ("content-type", b"application/json")


@dataclass(frozen=True, kw_only=True)
class JsonHandler(Generic[In, Out]):
    """Decodes the value as `In`, runs `process` (plain, or async and awaited), and encodes the
    result keyed by `key_of`. Decoding and encoding are pydantic's own (Rust) JSON paths.

    `validate_json`, when given, decodes instead of the model's own validator: a faster one that
    returns the same instances and raises the same ValidationError.

    Each output carries the `input.*` provenance headers of the record it came from (retry.py).
    """

    input_model: type[In]
    process: Callable[[In], Out] | Callable[[In], Awaitable[Out]]
    output_topic: str
    key_of: Callable[[Out], str]
    max_value_bytes: int
    validate_json: Callable[[bytes], In] | None = None
    _awaits: bool = field(init=False, repr=False)
    _validate: Callable[[bytes], In] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_awaits", inspect.iscoroutinefunction(self.process))
        validate = self.validate_json or self.input_model.__pydantic_validator__.validate_json
        object.__setattr__(self, "_validate", validate)

    def decode(self, value: bytes | None) -> In:
        if not value:
            raise DeserializationError("empty or null value")
        if len(value) > self.max_value_bytes:
            raise DeserializationError(
                f"value of {len(value)} bytes exceeds the limit of {self.max_value_bytes} bytes"
            )
        return self._validate(value)

    async def __call__(self, record: InputRecord) -> list[OutgoingRecord]:
        result: Any = self.process(self.decode(record.value))
        if self._awaits:
            result = await result
        return self._encode(record, result)

    def now(self, record: InputRecord) -> list[OutgoingRecord]:
        """The same, made in the caller (`ImmediateHandler`); only for a plain `process`."""
        if self._awaits:
            raise TypeError("an async process function is awaited: call the handler")
        return self._encode(record, self.process(self.decode(record.value)))

    def _encode(self, record: InputRecord, result: Any) -> list[OutgoingRecord]:
        return [
            OutgoingRecord(
                self.output_topic,
                result.__pydantic_serializer__.to_json(result),
                self.key_of(result).encode(),
                [CONTENT_TYPE, *provenance(record)],
            )
        ]

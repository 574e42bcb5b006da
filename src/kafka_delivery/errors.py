"""The library's errors on one base, the error categories of dead letters, and error messages
that are safe to publish."""

import re
from collections.abc import Iterable
from enum import StrEnum

from pydantic import ValidationError


class ErrorCategory(StrEnum):
    DESERIALIZATION = "deserialization"
    VALIDATION = "validation"
    PROCESSING = "processing"
    RETRIES_EXHAUSTED = "retries_exhausted"


class KafkaDeliveryError(Exception):
    """The base of the errors this library raises; its message is one line an operator can act on."""


class DeserializationError(KafkaDeliveryError, ValueError):
    """The record's bytes cannot be read as the expected format."""


class MissingTopicsError(KafkaDeliveryError):
    """Topics that are needed do not exist (and may not be created)."""


class KafkaUnreachable(KafkaDeliveryError):
    """Kafka did not answer in time, or could not be connected to; the message is the short cause."""


class CannotConnect(KafkaUnreachable):
    """No broker could be connected to; the message names each broker's cause, when aiokafka logged it."""


class TopicConfigError(KafkaDeliveryError):
    """A topic's configuration cannot be read."""

    def __init__(self, message: str, *, retriable: bool = False) -> None:
        super().__init__(message)
        self.retriable = retriable


# pydantic reports bytes that are not JSON (or too deeply nested) as json_invalid.
_UNREADABLE_JSON = frozenset({"json_invalid", "json_type"})
_SECRET_ASSIGNMENT = re.compile(r"(?i)\b(password|passwd|secret|token|api[_-]?key)\b(\s*[=:]\s*)\S+")


def classify(exc: BaseException) -> ErrorCategory:
    if isinstance(exc, DeserializationError):
        return ErrorCategory.DESERIALIZATION
    if isinstance(exc, ValidationError):
        if any(error["type"] in _UNREADABLE_JSON for error in exc.errors()):
            return ErrorCategory.DESERIALIZATION
        return ErrorCategory.VALIDATION
    return ErrorCategory.PROCESSING


def describe(exc: BaseException) -> str:
    # pydantic's own str() echoes input values; locations and messages are enough to act on.
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or '<root>'}: {error['msg']}"
            for error in exc.errors(include_url=False, include_input=False)
        )
    return str(exc) or type(exc).__name__


def safe_message(exc: BaseException, *, secrets: Iterable[str] = (), limit: int = 512) -> str:
    """A truncated error message with known secret values and secret-looking assignments redacted."""
    text = describe(exc)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = _SECRET_ASSIGNMENT.sub(r"\1\2***", text)
    return text if len(text) <= limit else text[: limit - 3] + "..."

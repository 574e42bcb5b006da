"""The settings groups, one per concern; `Settings` in the package puts them together."""

import inspect
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, Self
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ImportString,
    SecretStr,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic_settings import NoDecode

from kafka_delivery.handlers import RetryPolicy

ENV_PREFIX = "ORDER_SERVICE_"
NESTED_DELIMITER = "__"
Positive = Annotated[int, Field(gt=0)]


def _readable_file(path: Path | None) -> Path | None:
    if path is not None and not os.access(path, os.R_OK):
        raise ValueError(
            f"{path} does not exist or is not readable" if path.exists() else f"{path} not found"
        )
    return path


ReadableFile = Annotated[Path | None, AfterValidator(_readable_file)]


class Group(BaseModel):
    """A settings group. Given as one JSON object (`ORDER_SERVICE_KAFKA='{...}'`), a key that names
    no setting fails like an unknown variable does, instead of being dropped."""

    model_config = ConfigDict(extra="forbid")


class KafkaSettings(Group):
    # A comma-separated list in the environment; each entry host:port.
    bootstrap_servers: Annotated[tuple[str, ...], NoDecode] = ("localhost:9092",)
    client_id: str = "order-service"
    request_timeout_ms: Positive = 30_000
    # How long start-up waits for the cluster to answer before giving up.
    connect_timeout_s: Annotated[float, Field(gt=0, le=3600)] = 60.0
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: ReadableFile = None
    ssl_certfile: ReadableFile = None
    ssl_keyfile: ReadableFile = None
    ssl_password: SecretStr | None = None

    @field_validator("bootstrap_servers", mode="before")
    @classmethod
    def _split_bootstrap(cls, value: Any) -> Any:
        entries = [v.strip() for v in value.split(",")] if isinstance(value, str) else value
        for entry in entries:
            host, _, port = str(entry).rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"{entry!r} is not host:port (a comma-separated list is expected)")
        if not entries:
            raise ValueError("at least one host:port is needed")
        return tuple(entries)

    @model_validator(mode="after")
    def _credentials_for_the_protocol(self) -> Self:
        var = f"{ENV_PREFIX}KAFKA{NESTED_DELIMITER}"
        if self.security_protocol.startswith("SASL"):
            missing = [
                f"{var}{name.upper()}"
                for name in ("sasl_mechanism", "sasl_username", "sasl_password")
                if not getattr(self, name)
            ]
            if missing:
                raise ValueError(
                    f"{var}SECURITY_PROTOCOL={self.security_protocol} needs {', '.join(missing)}"
                )
        if self.ssl_keyfile is not None and self.ssl_certfile is None:
            raise ValueError(f"{var}SSL_KEYFILE is set: set {var}SSL_CERTFILE too")
        return self


class TopicSettings(Group):
    input: str = "orders.created"
    output: str = "orders.processed"
    dead_letter: str = "orders.created.dlq"
    retry: str = "orders.created.retry"
    partitions: Positive = 6
    replication_factor: Positive = 1
    create: bool = True

    def written(self, *, retry_topic: bool) -> list[str]:
        """The topics the service publishes to."""
        return [self.output, self.dead_letter, *([self.retry] if retry_topic else [])]


class ConsumerSettings(Group):
    group_id: str = Field("order-service", min_length=1)
    # Static membership: a stable id per instance (e.g. the pod name) avoids rebalances on restarts.
    group_instance_id: str | None = None
    max_batch_records: Annotated[int, Field(gt=0, le=100_000)] = 1000
    # How long a poll waits when no record is buffered. After an empty poll FastStream sleeps as long
    # again before the next, so this is also what a record arriving after a quiet moment can wait:
    # at 100 ms, a 100 ms gap in the input cost the next records up to 200 ms.
    batch_timeout_ms: Positive = 10
    # A fetch answers once it holds this many bytes (about 60 orders), or after fetch_max_wait_ms.
    # Kafka's defaults (1 byte, 500 ms) answer every fetch at once: fed at 13,000 orders/s a fetch
    # brought ~15 records, and the service and the broker spent their CPU on requests. 16 KB / 5 ms
    # halved the p99 latency there (48, 25, 38, 23 ms against 95, 78), for at most 5 ms more when
    # the input is quiet.
    fetch_min_bytes: Positive = 16 * 1024
    fetch_max_wait_ms: Annotated[int, Field(ge=0, le=60_000)] = 5
    session_timeout_ms: Positive = 10_000
    heartbeat_interval_ms: Positive = 3_000
    max_poll_interval_ms: Positive = 300_000
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    # A consumer that has not joined its group this long after start ends the process.
    join_timeout_s: Annotated[float, Field(gt=0, le=3600)] = 60.0

    # Every consumer group and instance id the service uses is named here.
    @property
    def retry_group_id(self) -> str:
        return f"{self.group_id}.retry"

    @property
    def replay_group_id(self) -> str:
        """Re-drive progress: `order-service dlq replay` does not resend what it already sent."""
        return f"{self.group_id}.dlq-replay"

    def instance_id(self, topic: str) -> str | None:
        """Static membership: one id per instance and subscribed topic."""
        return f"{self.group_instance_id}-{topic}" if self.group_instance_id is not None else None


class ProducerSettings(Group):
    # Idempotence, and with it the delivery guarantee, needs acks from all in-sync replicas.
    acks: Literal["all"] = "all"
    compression_type: Literal["none", "gzip", "snappy", "lz4", "zstd"] = "none"
    linger_ms: Annotated[int, Field(ge=0)] = 5
    max_batch_bytes: Positive = 256 * 1024


class RetrySettings(Group):
    attempts: Annotated[int, Field(ge=1, le=20)] = 3
    backoff_ms: Positive = 200
    max_backoff_ms: Positive = 5_000
    topic_enabled: bool = False
    topic_hops: Annotated[int, Field(ge=1, le=20)] = 3
    topic_delay_ms: Positive = 5_000

    def policy(self) -> RetryPolicy:
        return RetryPolicy(
            attempts=self.attempts, backoff_ms=self.backoff_ms, max_backoff_ms=self.max_backoff_ms
        )


ProcessorForm = Literal["function", "factory", "factory_with_context"]


def processor_form(processor: Callable[..., Any]) -> ProcessorForm:
    """Which form of processor `processor` is (README, "Write your own processor"):

    - "function": `(order, policy) -> OrderProcessed`, plain or async;
    - "factory": a zero-argument callable returning an async context manager that yields one;
    - "factory_with_context": the same, with one parameter named `context`: a `ProcessorContext`.
    """
    try:
        signature = inspect.signature(processor)
    except ValueError:  # a builtin without a signature: taken as a function
        return "function"
    for form, arguments in (("factory", ()), ("function", (None, None))):
        try:
            signature.bind(*arguments)
        except TypeError:
            continue
        return form  # type: ignore[return-value]
    if list(signature.parameters) == ["context"]:
        return "factory_with_context"
    raise ValueError(
        "must accept two positional arguments, (order, policy), and return an OrderProcessed (or, "
        "for an async function, a coroutine of one); or be a factory: a callable of no argument, or "
        "of one named context (a ProcessorContext), returning an async context manager that yields "
        "such a function"
    )


def _processor_shape(processor: Callable[..., Any]) -> Callable[..., Any]:
    if not callable(processor):
        raise ValueError("must be a callable (order, policy) -> OrderProcessed, plain or async, or a factory")
    processor_form(processor)
    return processor


class ProcessingSettings(Group):
    """How each record is processed, and how many at once."""

    processor: Annotated[ImportString[Callable[..., Any]], AfterValidator(_processor_shape)] = Field(
        "order_service.domain.rules:process_order", validate_default=True
    )
    max_record_bytes: Positive = 64 * 1024
    # key: records of one key one at a time, in offset order, other keys concurrently;
    # partition: one record at a time per partition.
    ordering: Literal["key", "partition"] = "key"
    max_in_flight: Annotated[int, Field(gt=0, le=100_000)] = 1_000
    max_buffered_per_partition: Annotated[int, Field(gt=0, le=1_000_000)] = 2_000
    # How long a rebalance waits for the revoked partitions' records to be committed.
    drain_timeout_s: Annotated[float, Field(gt=0, le=600)] = 10.0

    def form(self) -> ProcessorForm:
        return processor_form(self.processor)

    def awaits(self) -> bool:
        """Whether records run in tasks: the processor is async (`async def`, or an object whose
        `__call__` is), or a factory's, which is known only once entered. A plain function runs in
        the engine's own turn, without a task switch."""
        processor = self.processor
        return (
            self.form() != "function"
            or inspect.iscoroutinefunction(processor)
            or inspect.iscoroutinefunction(
                getattr(processor, "__call__", None)  # noqa: B004 - an instance with an async __call__
            )
        )


def _database_url(url: SecretStr | None) -> SecretStr | None:
    """postgresql://user:password@host:port/database; the value is never echoed, it holds a password."""
    if url is None:
        return None
    try:
        parts = urlsplit(url.get_secret_value())
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError:
        raise ValueError("is not a URL: postgresql://user:password@host:port/database") from None
    if parts.scheme not in ("postgresql", "postgres") or not parts.hostname or len(parts.path) < 2:
        raise ValueError("must be postgresql://user:password@host:port/database") from None
    return url


class EffectsSettings(Group):
    """The processor's effects in PostgreSQL, exactly once through the inbox (docs/delivery-guarantees.md).
    Off until a database URL is set."""

    database_url: Annotated[SecretStr | None, AfterValidator(_database_url)] = None
    # Off: the processor still gets a transaction per batch, but its effects are at least once.
    inbox: bool = True
    inbox_table: Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]{0,62}(\.[a-z_][a-z0-9_]{0,62})?$")] = (
        "order_service_inbox"
    )
    # Inbox rows older than this are deleted. A record redelivered later than this (an offset reset,
    # a replay) is processed again: keep it above the input topic's retention (7 days by default).
    inbox_retention_s: Annotated[float, Field(gt=0)] = 7 * 24 * 3600.0
    max_batch: Annotated[int, Field(gt=0, le=10_000)] = 500
    # Start-up waits this long for the database; a refused login fails at once.
    connect_timeout_s: Annotated[float, Field(gt=0, le=600)] = 10.0
    # One statement, and one batch's transaction, may take this long before it is retried.
    statement_timeout_s: Annotated[float, Field(gt=0, le=600)] = 10.0
    transaction_timeout_s: Annotated[float, Field(gt=0, le=600)] = 30.0
    backoff_ms: Positive = 100
    max_backoff_ms: Positive = 5_000

    @property
    def enabled(self) -> bool:
        return self.database_url is not None


class DeliverySettings(Group):
    """The delivery guarantee, and how publishes and commits are retried and watched."""

    guarantee: Literal["at_least_once", "exactly_once"] = "at_least_once"
    commit_interval_ms: Positive = 100
    commit_timeout_ms: Positive = 30_000
    transaction_timeout_ms: Positive = 60_000
    backoff_ms: Positive = 500
    max_backoff_ms: Positive = 30_000
    # A partition behind its log end with no commit for this long is reported as stalled.
    stall_after_s: Annotated[float, Field(gt=0)] = 60.0


class OrderSettings(Group):
    """The order policy the rules apply."""

    accepted_currencies: Annotated[frozenset[str], NoDecode] = frozenset({"EUR", "USD", "GBP"})
    default_currency: str = "EUR"

    @field_validator("accepted_currencies", mode="before")
    @classmethod
    def _split_codes(cls, value: Any) -> Any:
        return (
            frozenset(c.strip().upper() for c in value.split(",") if c.strip())
            if isinstance(value, str)
            else value
        )

    @field_serializer("accepted_currencies")
    def _sorted_codes(self, codes: frozenset[str]) -> list[str]:
        """In a stable order, for `order-service config`."""
        return sorted(codes)


class DeadLetterSettings(Group):
    max_error_message_chars: Annotated[int, Field(ge=32, le=16_384)] = 512


class HttpSettings(Group):
    host: str = "0.0.0.0"  # noqa: S104 - a container's port must be reachable from outside it
    port: Annotated[int, Field(gt=0, lt=65536)] = 8080

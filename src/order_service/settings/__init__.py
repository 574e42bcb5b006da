"""Service settings, read from ORDER_SERVICE_* environment variables and an optional .env file."""

import importlib.util
from typing import Annotated, Any, Literal, Self

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from order_service.messaging.errors import ConfigurationError
from order_service.settings.groups import (
    ENV_PREFIX,
    NESTED_DELIMITER,
    ConsumerSettings,
    DeadLetterSettings,
    DeliverySettings,
    HttpSettings,
    KafkaSettings,
    OrderSettings,
    ProcessingSettings,
    ProducerSettings,
    RetrySettings,
    TopicSettings,
)

__all__ = [
    "ENV_PREFIX",
    "ConfigurationError",
    "ConsumerSettings",
    "DeadLetterSettings",
    "DeliverySettings",
    "HttpSettings",
    "KafkaSettings",
    "OrderSettings",
    "ProcessingSettings",
    "ProducerSettings",
    "RetrySettings",
    "Settings",
    "TopicSettings",
    "env_name",
    "load_settings",
]
# Read under its standard OpenTelemetry name, not under the service's prefix.
OTEL_EXPORTER = "OTEL_TRACES_EXPORTER"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=NESTED_DELIMITER,
        env_file=".env",
        extra="ignore",
    )

    kafka: KafkaSettings = KafkaSettings()
    topics: TopicSettings = TopicSettings()
    consumer: ConsumerSettings = ConsumerSettings()
    producer: ProducerSettings = ProducerSettings()
    processing: ProcessingSettings = ProcessingSettings()
    delivery: DeliverySettings = DeliverySettings()
    orders: OrderSettings = OrderSettings()
    dead_letter: DeadLetterSettings = DeadLetterSettings()
    retry: RetrySettings = RetrySettings()
    http: HttpSettings = HttpSettings()
    shutdown_grace_period_s: Annotated[float, Field(gt=0, le=300)] = 20.0
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"
    otel_traces_exporter: Literal["none", "console", "otlp"] = Field("none", validation_alias=OTEL_EXPORTER)

    @model_validator(mode="after")
    def _retries_fit_the_poll_interval(self) -> Self:
        worst = self.retry.policy().worst_case_ms()
        if worst * 2 > self.consumer.max_poll_interval_ms:
            raise ValueError(
                f"retries may wait {worst} ms per record, more than half of "
                f"{ENV_PREFIX}CONSUMER__MAX_POLL_INTERVAL_MS; lower {ENV_PREFIX}RETRY__ATTEMPTS "
                f"or {ENV_PREFIX}RETRY__MAX_BACKOFF_MS"
            )
        return self

    @model_validator(mode="after")
    def _exporter_is_installed(self) -> Self:
        if self.otel_traces_exporter == "otlp" and not _installed("opentelemetry.exporter.otlp.proto.http"):
            raise ValueError(f"{OTEL_EXPORTER}=otlp needs the package opentelemetry-exporter-otlp-proto-http")
        return self

    def secret_values(self) -> list[str]:
        secrets = (self.kafka.sasl_password, self.kafka.ssl_password)
        return [s.get_secret_value() for s in secrets if s is not None]


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def env_name(location: tuple[int | str, ...]) -> str:
    if location == (OTEL_EXPORTER,):
        return OTEL_EXPORTER
    return ENV_PREFIX + NESTED_DELIMITER.join(str(part).upper() for part in location)


def load_settings(**overrides: Any) -> Settings:
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        # Input values are left out on purpose: they may be secrets.
        lines = [
            f"  {env_name(e['loc'])}: {e['msg']}" if e["loc"] else f"  {e['msg']}"
            for e in exc.errors(include_input=False)
        ]
        raise ConfigurationError("invalid configuration:\n" + "\n".join(lines)) from None

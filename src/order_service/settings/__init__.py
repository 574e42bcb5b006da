"""Service settings, read from ORDER_SERVICE_* environment variables and an optional .env file."""

import importlib.util
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Self
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from order_service.errors import ConfigurationError
from order_service.settings.groups import (
    ENV_PREFIX,
    NESTED_DELIMITER,
    ConsumerSettings,
    DeadLetterSettings,
    DeliverySettings,
    EffectsSettings,
    HttpSettings,
    KafkaSettings,
    OrderSettings,
    ProcessingSettings,
    ProducerSettings,
    RetrySettings,
    TopicSettings,
)
from order_service.settings.variables import (
    Source,
    groups_of,
    prefixed,
    present_names,
    source_of,
    unknown_names,
    variables_of,
)

__all__ = [
    "ENV_PREFIX",
    "ConfigurationError",
    "ConsumerSettings",
    "DeadLetterSettings",
    "DeliverySettings",
    "EffectiveSetting",
    "EffectsSettings",
    "HttpSettings",
    "KafkaSettings",
    "OrderSettings",
    "ProcessingSettings",
    "ProducerSettings",
    "RetrySettings",
    "Settings",
    "TopicSettings",
    "effective_settings",
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
    effects: EffectsSettings = EffectsSettings()
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
        """What error messages and dead letters must never show: the database URL's password too,
        as a driver's error may quote it alone."""
        secrets = (self.kafka.sasl_password, self.kafka.ssl_password, self.effects.database_url)
        values = [s.get_secret_value() for s in secrets if s is not None]
        if self.effects.database_url is not None:
            password = urlsplit(self.effects.database_url.get_secret_value()).password
            values += [password] if password else []
        return values


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def env_name(location: tuple[int | str, ...]) -> str:
    if location == (OTEL_EXPORTER,):
        return OTEL_EXPORTER
    return prefixed(location)


def load_settings(**overrides: Any) -> Settings:
    """The settings from the environment and `.env`, or `ConfigurationError` naming each variable at
    fault: one that names no setting (checked first, before any value is read), or an invalid value.
    """
    unknown = unknown_names(present_names(), variables_of(Settings), groups_of(Settings))
    if unknown:
        raise ConfigurationError(_invalid(unknown))
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        # Input values are left out on purpose: they may be secrets.
        raise ConfigurationError(
            _invalid(
                f"{env_name(e['loc'])}: {e['msg']}" if e["loc"] else e["msg"]
                for e in exc.errors(include_input=False)
            )
        ) from None


def _invalid(problems: Iterable[str]) -> str:
    """One problem on the line of `invalid configuration:`, several on a line each below it."""
    lines = list(problems)
    if len(lines) == 1:
        return f"invalid configuration: {lines[0]}"
    return "invalid configuration:\n" + "\n".join(f"  {line}" for line in lines)


@dataclass(frozen=True)
class EffectiveSetting:
    """What `order-service config` shows of one setting; a secret's value is masked, or None if unset."""

    variable: str
    value: Any
    source: Source
    secret: bool


def effective_settings(settings: Settings) -> list[EffectiveSetting]:
    """Every setting of `settings` with its value and where it came from, secrets masked."""
    dumped = settings.model_dump(mode="json")  # a SecretStr dumps as asterisks
    present = present_names()
    return [
        EffectiveSetting(v.name, v.value(dumped), source_of(v, present), v.secret)
        for v in variables_of(Settings)
    ]

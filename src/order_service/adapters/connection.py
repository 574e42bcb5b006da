"""Client settings shared by the broker, the producer and the admin client; waiting for the cluster."""

import asyncio
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from aiokafka import AIOKafkaProducer
from aiokafka.conn import create_conn
from aiokafka.errors import (
    AuthenticationFailedError,
    KafkaError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)
from faststream.kafka.security import parse_security
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from kafka_delivery.producing import Murmur2Partitioner
from order_service.errors import ConfigurationError
from order_service.settings import ENV_PREFIX, KafkaSettings, ProducerSettings

logger = logging.getLogger(__name__)
_SASL = {"PLAIN": SASLPlaintext, "SCRAM-SHA-256": SASLScram256, "SCRAM-SHA-512": SASLScram512}
_VAR = f"{ENV_PREFIX}KAFKA__"
# aiokafka's default; start-up raises it to what a dead letter of the largest input record needs.
DEFAULT_MAX_REQUEST_BYTES = 1024 * 1024
T = TypeVar("T")


def build_security(kafka: KafkaSettings) -> BaseSecurity | None:
    use_ssl = kafka.security_protocol in ("SSL", "SASL_SSL")
    context = _ssl_context(kafka) if use_ssl else None
    if kafka.security_protocol.startswith("SASL"):
        # Settings validation guarantees all three are present for a SASL protocol.
        assert kafka.sasl_mechanism
        assert kafka.sasl_username
        assert kafka.sasl_password
        sasl = _SASL[kafka.sasl_mechanism]
        return sasl(
            kafka.sasl_username, kafka.sasl_password.get_secret_value(), ssl_context=context, use_ssl=use_ssl
        )
    return BaseSecurity(ssl_context=context, use_ssl=use_ssl) if use_ssl else None


def client_kwargs(kafka: KafkaSettings) -> dict[str, Any]:
    """Keyword arguments for any aiokafka client."""
    return {
        # A list: aiokafka takes a string as one single host.
        "bootstrap_servers": list(kafka.bootstrap_servers),
        "client_id": kafka.client_id,
        "request_timeout_ms": kafka.request_timeout_ms,
        **parse_security(build_security(kafka)),
    }


def build_producer(kafka: KafkaSettings, producer: ProducerSettings, **extra: Any) -> AIOKafkaProducer:
    """The one way producers are built: idempotent, acks=all; `extra` adds e.g. a transactional id."""
    return AIOKafkaProducer(
        **client_kwargs(kafka),
        acks=producer.acks,
        enable_idempotence=True,
        linger_ms=producer.linger_ms,
        max_batch_size=producer.max_batch_bytes,
        compression_type=None if producer.compression_type == "none" else producer.compression_type,
        partitioner=Murmur2Partitioner(),
        **extra,
    )


@dataclass
class ProducerFactory:
    """Makes the service's producers: the sink's, and in exactly-once one per input partition.

    Every producer is made after start-up has learned `max_request_size`: a dead letter carries
    the input record whole, so a request must fit the input topic's largest record plus the
    envelope (provisioning reads the topic's limit; `fit` takes it). Until then it is the client's
    default, 1 MiB.
    """

    kafka: KafkaSettings
    producer: ProducerSettings
    max_request_size: int = DEFAULT_MAX_REQUEST_BYTES

    def fit(self, max_request_size: int) -> None:
        self.max_request_size = max_request_size

    def __call__(self, **extra: Any) -> AIOKafkaProducer:
        return build_producer(self.kafka, self.producer, max_request_size=self.max_request_size, **extra)


def _ssl_context(kafka: KafkaSettings) -> ssl.SSLContext:
    try:
        context = ssl.create_default_context(cafile=str(kafka.ssl_cafile) if kafka.ssl_cafile else None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(f"cannot load {_VAR}SSL_CAFILE: {_reason(exc)}") from None
    if kafka.ssl_certfile:
        password = kafka.ssl_password.get_secret_value() if kafka.ssl_password else None
        try:
            context.load_cert_chain(
                str(kafka.ssl_certfile), str(kafka.ssl_keyfile) if kafka.ssl_keyfile else None, password
            )
        except (OSError, ssl.SSLError) as exc:
            raise ConfigurationError(
                f"cannot load the client certificate ({_VAR}SSL_CERTFILE, {_VAR}SSL_KEYFILE, "
                f"{_VAR}SSL_PASSWORD): {_reason(exc)}"
            ) from None
    return context


async def wait_for_cluster(kafka: KafkaSettings, deadline: float) -> None:
    """Until one bootstrap broker answers, one log line per attempt, at most until `deadline`.

    Unreachable brokers are retried; a TLS or SASL failure is a configuration error and ends at once.
    """
    attempt = 0
    while True:
        attempt += 1
        causes = []
        for address in kafka.bootstrap_servers:
            cause = await _try_broker(kafka, address, deadline)
            if cause is None:
                if attempt > 1:
                    logger.info("Kafka answered at %s after %d attempts", address, attempt)
                return
            causes.append(f"{address}: {cause}")
        left = deadline - time.monotonic()
        if left <= 0:
            raise ConfigurationError(
                f"cannot reach Kafka at {','.join(kafka.bootstrap_servers)} ({_VAR}BOOTSTRAP_SERVERS) "
                f"within {kafka.connect_timeout_s:g}s: {'; '.join(causes)}"
            )
        logger.warning(
            "Kafka not reachable yet (attempt %d, %.0fs left): %s", attempt, left, "; ".join(causes)
        )
        await asyncio.sleep(min(2.0 ** min(attempt, 3) / 2, left))


async def retry_until(deadline: float, what: str, step: Callable[[], Awaitable[T]]) -> T:
    """Runs a start-up step again after transient cluster errors (a broker just died, a leader
    moving), one log line per failed attempt, until the start-up deadline."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return await step()
        except (KafkaError, OSError, TimeoutError) as exc:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ConfigurationError(
                    f"{what} did not succeed before the start-up deadline: {_reason(exc)}"
                ) from None
            logger.warning("%s failed (attempt %d, %.0fs left): %s", what, attempt, left, _reason(exc))
            await asyncio.sleep(min(2.0 ** min(attempt, 3) / 2, left))


async def _try_broker(kafka: KafkaSettings, address: str, deadline: float) -> str | None:
    host, _, port = address.rpartition(":")
    security = client_kwargs(kafka)
    security.pop("bootstrap_servers")
    try:
        async with asyncio.timeout(max(1.0, min(10.0, deadline - time.monotonic()))):
            conn = await create_conn(host.strip("[]"), int(port), **security)
        conn.close()
    except ssl.SSLCertVerificationError as exc:
        raise ConfigurationError(
            f"TLS: the certificate of {address} was rejected ({exc.verify_message}); "
            f"check {_VAR}SSL_CAFILE and that {address} is a name the certificate carries"
        ) from None
    except ssl.SSLError as exc:
        raise ConfigurationError(
            f"TLS handshake with {address} failed ({_reason(exc)}): is it a TLS listener? "
            f"check {_VAR}SECURITY_PROTOCOL={kafka.security_protocol}"
        ) from None
    except (SaslAuthenticationFailed, AuthenticationFailedError) as exc:
        raise ConfigurationError(
            f"SASL authentication at {address} failed ({type(exc).__name__}): "
            f"check {_VAR}SASL_USERNAME and {_VAR}SASL_PASSWORD"
        ) from None
    except UnsupportedSaslMechanismError:
        raise ConfigurationError(
            f"{address} does not accept {_VAR}SASL_MECHANISM={kafka.sasl_mechanism}"
        ) from None
    except (OSError, KafkaError, TimeoutError) as exc:
        if kafka.security_protocol in ("SSL", "SASL_SSL") and _closed_during_handshake(exc):
            raise ConfigurationError(
                f"TLS handshake with {address} failed (connection closed): is it a TLS listener? "
                f"check {_VAR}SECURITY_PROTOCOL={kafka.security_protocol}"
            ) from None
        return _reason(exc)
    return None


def _closed_during_handshake(exc: BaseException) -> bool:
    return isinstance(exc, ConnectionResetError | BrokenPipeError) or "closed" in str(exc).lower()


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__

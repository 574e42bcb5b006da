"""Client settings shared by the broker, the producer and the admin client."""

import ssl
from typing import Any

from faststream.kafka.security import parse_security
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from order_service.settings import KafkaSettings

_SASL = {"PLAIN": SASLPlaintext, "SCRAM-SHA-256": SASLScram256, "SCRAM-SHA-512": SASLScram512}


def build_security(kafka: KafkaSettings) -> BaseSecurity | None:
    use_ssl = kafka.security_protocol in ("SSL", "SASL_SSL")
    context = _ssl_context(kafka) if use_ssl else None
    if kafka.security_protocol.startswith("SASL"):
        if not (kafka.sasl_mechanism and kafka.sasl_username and kafka.sasl_password):
            raise ValueError(
                "ORDER_SERVICE_KAFKA__SECURITY_PROTOCOL is SASL: set ORDER_SERVICE_KAFKA__SASL_MECHANISM, "
                "ORDER_SERVICE_KAFKA__SASL_USERNAME and ORDER_SERVICE_KAFKA__SASL_PASSWORD"
            )
        sasl = _SASL[kafka.sasl_mechanism]
        return sasl(
            kafka.sasl_username, kafka.sasl_password.get_secret_value(), ssl_context=context, use_ssl=use_ssl
        )
    return BaseSecurity(ssl_context=context, use_ssl=use_ssl) if use_ssl else None


def client_kwargs(kafka: KafkaSettings) -> dict[str, Any]:
    """Keyword arguments for any aiokafka client."""
    return {
        "bootstrap_servers": kafka.bootstrap_servers,
        "client_id": kafka.client_id,
        "request_timeout_ms": kafka.request_timeout_ms,
        **parse_security(build_security(kafka)),
    }


def _ssl_context(kafka: KafkaSettings) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(kafka.ssl_cafile) if kafka.ssl_cafile else None)
    if kafka.ssl_certfile:
        password = kafka.ssl_password.get_secret_value() if kafka.ssl_password else None
        context.load_cert_chain(
            str(kafka.ssl_certfile), str(kafka.ssl_keyfile) if kafka.ssl_keyfile else None, password
        )
    return context

"""Client security for each protocol: what aiokafka is given (build_security, client_kwargs).

A throwaway CA and client certificate are made with the openssl command line.
"""

import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from order_service.adapters.connection import build_security, client_kwargs
from order_service.errors import ConfigurationError
from order_service.settings import KafkaSettings

MECHANISMS = [("PLAIN", SASLPlaintext), ("SCRAM-SHA-256", SASLScram256), ("SCRAM-SHA-512", SASLScram512)]
KEY_PASSWORD = "k3y-pass"


@dataclass(frozen=True)
class Pki:
    ca: Path
    cert: Path
    key: Path


def openssl_self_signed(directory: Path, name: str, *, password: str | None = None) -> tuple[Path, Path]:
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    protection = ["-passout", f"pass:{password}"] if password else ["-nodes"]
    command = ["openssl", "req", "-x509", "-days", "1"]
    command += ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
    command += ["-keyout", str(key), "-out", str(cert), "-subj", f"/CN={name}", *protection]
    subprocess.run(command, check=True, capture_output=True)
    return cert, key


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    ca, _ = openssl_self_signed(directory, "Test CA")
    cert, key = openssl_self_signed(directory, "client", password=KEY_PASSWORD)
    return Pki(ca, cert, key)


def settings(**fields: Any) -> KafkaSettings:
    return KafkaSettings.model_validate({"bootstrap_servers": "b1:9093,b2:9093", **fields})


def trusted_names(context: ssl.SSLContext) -> set[str]:
    """The common names of the CA certificates the context trusts."""
    subjects: list[Any] = [cert["subject"] for cert in context.get_ca_certs()]
    return {value for subject in subjects for rdn in subject for key, value in rdn if key == "commonName"}


def test_plaintext_has_no_security_and_aiokafka_defaults_apply() -> None:
    kafka = settings()
    assert build_security(kafka) is None
    assert client_kwargs(kafka) == {
        "bootstrap_servers": ["b1:9093", "b2:9093"],
        "client_id": "order-service",
        "request_timeout_ms": 30_000,
    }


def test_ssl_verifies_the_brokers_against_the_configured_ca(pki: Pki) -> None:
    kafka = settings(security_protocol="SSL", ssl_cafile=pki.ca)

    security = build_security(kafka)

    assert type(security) is BaseSecurity
    assert security.use_ssl
    context = security.ssl_context
    assert context is not None
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert trusted_names(context) == {"Test CA"}
    kwargs = client_kwargs(kafka)
    assert kwargs["security_protocol"] == "SSL"
    assert kwargs["ssl_context"] is not None


def test_ssl_without_a_ca_file_uses_the_system_trust_store() -> None:
    security = build_security(settings(security_protocol="SSL"))
    assert security is not None
    assert security.ssl_context is not None
    assert security.ssl_context.verify_mode == ssl.CERT_REQUIRED


def test_ssl_with_a_client_certificate_and_an_encrypted_key(pki: Pki) -> None:
    kafka = settings(
        security_protocol="SSL",
        ssl_cafile=pki.ca,
        ssl_certfile=pki.cert,
        ssl_keyfile=pki.key,
        ssl_password=KEY_PASSWORD,
    )
    security = build_security(kafka)
    assert security is not None
    assert security.ssl_context is not None
    assert trusted_names(security.ssl_context) == {"Test CA"}


def test_a_wrong_key_password_stops_the_start_naming_the_settings(pki: Pki) -> None:
    kafka = settings(
        security_protocol="SSL", ssl_certfile=pki.cert, ssl_keyfile=pki.key, ssl_password="wrong"
    )
    with pytest.raises(ConfigurationError, match="ORDER_SERVICE_KAFKA__SSL_CERTFILE") as raised:
        build_security(kafka)
    assert "wrong" not in str(raised.value)


def test_a_ca_file_that_is_not_a_certificate_stops_the_start(tmp_path: Path) -> None:
    garbage = tmp_path / "ca.pem"
    garbage.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    with pytest.raises(ConfigurationError, match="ORDER_SERVICE_KAFKA__SSL_CAFILE"):
        build_security(settings(security_protocol="SSL", ssl_cafile=garbage))


@pytest.mark.parametrize(("mechanism", "kind"), MECHANISMS)
def test_sasl_plaintext_sends_the_credentials_without_tls(mechanism: str, kind: type[BaseSecurity]) -> None:
    kafka = settings(
        security_protocol="SASL_PLAINTEXT", sasl_mechanism=mechanism, sasl_username="app", sasl_password="pw"
    )

    security = build_security(kafka)

    assert type(security) is kind
    assert not security.use_ssl
    kwargs = client_kwargs(kafka)
    assert {k: kwargs[k] for k in ("security_protocol", "sasl_mechanism", "ssl_context")} == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": mechanism,
        "ssl_context": None,
    }
    assert (kwargs["sasl_plain_username"], kwargs["sasl_plain_password"]) == ("app", "pw")


@pytest.mark.parametrize(("mechanism", "kind"), MECHANISMS)
def test_sasl_ssl_sends_the_credentials_over_verified_tls(
    pki: Pki, mechanism: str, kind: type[BaseSecurity]
) -> None:
    kafka = settings(
        security_protocol="SASL_SSL",
        sasl_mechanism=mechanism,
        sasl_username="app",
        sasl_password="pw",
        ssl_cafile=pki.ca,
    )

    security = build_security(kafka)

    assert type(security) is kind
    assert security.use_ssl
    assert security.ssl_context is not None
    assert trusted_names(security.ssl_context) == {"Test CA"}
    kwargs = client_kwargs(kafka)
    assert (kwargs["security_protocol"], kwargs["sasl_mechanism"]) == ("SASL_SSL", mechanism)
    assert (kwargs["sasl_plain_username"], kwargs["sasl_plain_password"]) == ("app", "pw")
    assert trusted_names(kwargs["ssl_context"]) == {"Test CA"}

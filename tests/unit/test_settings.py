from pathlib import Path

import pytest

from order_service.settings import ConfigurationError, load_settings


def test_nested_settings_come_from_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDER_SERVICE_KAFKA__BOOTSTRAP_SERVERS", "broker-1:9092, broker-2:9092")
    monkeypatch.setenv("ORDER_SERVICE_CONSUMER__GROUP_ID", "orders-eu")
    monkeypatch.setenv("ORDER_SERVICE_ORDERS__ACCEPTED_CURRENCIES", "eur, chf")
    settings = load_settings()
    assert settings.kafka.bootstrap_servers == ("broker-1:9092", "broker-2:9092")
    assert settings.consumer.group_id == "orders-eu"
    assert settings.orders.accepted_currencies == {"EUR", "CHF"}


def test_defaults_without_environment() -> None:
    settings = load_settings()
    assert settings.kafka.bootstrap_servers == ("localhost:9092",)
    assert (settings.topics.input, settings.topics.output, settings.topics.dead_letter) == (
        "orders.created",
        "orders.processed",
        "orders.created.dlq",
    )


def test_values_can_come_from_a_dotenv_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("ORDER_SERVICE_TOPICS__PARTITIONS=12\n")
    monkeypatch.chdir(tmp_path)
    assert load_settings().topics.partitions == 12


def test_an_invalid_value_fails_naming_the_variable_without_echoing_secrets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ORDER_SERVICE_CONSUMER__MAX_BATCH_RECORDS", "lots")
    monkeypatch.setenv("ORDER_SERVICE_KAFKA__SASL_PASSWORD", "hunter2")
    monkeypatch.setenv("ORDER_SERVICE_KAFKA__SECURITY_PROTOCOL", "hunter2")
    with pytest.raises(ConfigurationError) as failed:
        load_settings()
    message = str(failed.value)
    assert "ORDER_SERVICE_CONSUMER__MAX_BATCH_RECORDS" in message
    assert "ORDER_SERVICE_KAFKA__SECURITY_PROTOCOL" in message
    assert "hunter2" not in message


def test_secrets_are_masked_in_the_settings_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDER_SERVICE_KAFKA__SASL_PASSWORD", "hunter2")
    settings = load_settings()
    assert "hunter2" not in repr(settings)
    assert settings.secret_values() == ["hunter2"]


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ORDER_SERVICE_KAFKA__BOOTSTRAP_SERVERS", "xx"),
        ("ORDER_SERVICE_KAFKA__BOOTSTRAP_SERVERS", "broker-1:9092,broker-2"),
        ("ORDER_SERVICE_KAFKA__BOOTSTRAP_SERVERS", "broker-1:99999"),
        ("ORDER_SERVICE_KAFKA__SSL_CAFILE", "/nonexistent/ca.pem"),
        ("ORDER_SERVICE_KAFKA__SSL_CERTFILE", "/nonexistent/client.pem"),
        ("ORDER_SERVICE_KAFKA__CONNECT_TIMEOUT_S", "0"),
    ],
)
def test_bad_connection_settings_fail_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as failed:
        load_settings()
    assert f"{variable}:" in str(failed.value)


def test_sasl_without_credentials_names_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDER_SERVICE_KAFKA__SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("ORDER_SERVICE_KAFKA__SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("ORDER_SERVICE_KAFKA__SASL_USERNAME", "order-service")
    with pytest.raises(ConfigurationError) as failed:
        load_settings()
    assert "ORDER_SERVICE_KAFKA__SASL_PASSWORD" in str(failed.value)
    assert "ORDER_SERVICE_KAFKA__SASL_USERNAME" not in str(failed.value).split("needs", 1)[1]


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("order_service.settings.groups:ENV_PREFIX", "callable"),  # a string
        ("operator:add", None),  # accepts (order, policy): what it returns is checked per record
        ("asyncio:sleep", None),  # async, two positional arguments
        ("json:loads", "two positional arguments"),
        ("no.such.module:process", "ORDER_SERVICE_PROCESSING__PROCESSOR"),
    ],
)
def test_the_processor_must_be_a_callable_of_order_and_policy_plain_or_async(
    monkeypatch: pytest.MonkeyPatch, value: str, says: str | None
) -> None:
    monkeypatch.setenv("ORDER_SERVICE_PROCESSING__PROCESSOR", value)
    if says is None:
        assert callable(load_settings().processing.processor)
        return
    with pytest.raises(ConfigurationError) as failed:
        load_settings()
    assert "ORDER_SERVICE_PROCESSING__PROCESSOR:" in str(failed.value)
    assert says in str(failed.value)

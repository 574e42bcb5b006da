from pathlib import Path

import pytest

from order_service.settings import ConfigurationError, Settings, effective_settings, load_settings
from order_service.settings.variables import RENAMED, variables_of


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


@pytest.mark.parametrize(
    ("variable", "says"),
    [
        ("ORDER_SERVICE_DELIVERY__GUARANTE", "did you mean ORDER_SERVICE_DELIVERY__GUARANTEE?"),
        ("ORDER_SERVICE_KAFKA__BOOTSTRAP_SERVER", "did you mean ORDER_SERVICE_KAFKA__BOOTSTRAP_SERVERS?"),
        ("ORDER_SERVICE_LOGLEVEL", "did you mean ORDER_SERVICE_LOG_LEVEL?"),
        ("ORDER_SERVICE_TOPIC__INPUT", "did you mean ORDER_SERVICE_TOPICS__INPUT?"),
        ("ORDER_SERVICE_GUARANTEE", "did you mean ORDER_SERVICE_DELIVERY__GUARANTEE?"),  # no group
        ("order_service_delivery__guarante", "did you mean ORDER_SERVICE_DELIVERY__GUARANTEE?"),
        ("ORDER_SERVICE_KAFKA__TIMEOUT", "names no setting"),  # nothing close: no guess
    ],
)
def test_a_variable_that_names_no_setting_stops_the_start_with_a_suggestion(
    monkeypatch: pytest.MonkeyPatch, variable: str, says: str
) -> None:
    monkeypatch.setenv(variable, "s3cret-value")
    with pytest.raises(ConfigurationError) as failed:
        load_settings()
    message = str(failed.value)
    assert message.startswith(f"invalid configuration: {variable}: ")
    assert message.endswith(says)
    assert "\n" not in message
    assert "s3cret-value" not in message
    if "did you mean" not in says:
        assert "did you mean" not in message


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("ORDER_SERVICE_PROCESSING__GUARANTEE", "ORDER_SERVICE_DELIVERY__GUARANTEE"),
        ("ORDER_SERVICE_PROCESSING__COMMIT_INTERVAL_MS", "ORDER_SERVICE_DELIVERY__COMMIT_INTERVAL_MS"),
        ("ORDER_SERVICE_PROCESSING__RETRY_BACKOFF_MS", "ORDER_SERVICE_DELIVERY__BACKOFF_MS"),
        ("ORDER_SERVICE_PROCESSING__ACCEPTED_CURRENCIES", "ORDER_SERVICE_ORDERS__ACCEPTED_CURRENCIES"),
        (
            "ORDER_SERVICE_PROCESSING__MAX_ERROR_MESSAGE_CHARS",
            "ORDER_SERVICE_DEAD_LETTER__MAX_ERROR_MESSAGE_CHARS",
        ),
    ],
)
def test_a_renamed_variable_says_what_it_became(monkeypatch: pytest.MonkeyPatch, old: str, new: str) -> None:
    monkeypatch.setenv(old, "1")
    with pytest.raises(ConfigurationError) as failed:
        load_settings()
    assert str(failed.value) == f"invalid configuration: {old}: renamed to {new}"


def test_every_renamed_variable_names_a_setting_of_today_and_none_of_its_old_names_does() -> None:
    known = {v.name for v in variables_of(Settings)}
    assert set(RENAMED.values()) <= known
    assert not set(RENAMED) & known
    assert len(RENAMED) == 10  # the settings split moved ten PROCESSING__ settings


def test_every_unknown_name_is_listed_on_a_line_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDER_SERVICE_PROCESSING__GUARANTEE", "exactly_once")
    monkeypatch.setenv("ORDER_SERVICE_LOGLEVEL", "DEBUG")
    with pytest.raises(ConfigurationError) as failed:
        load_settings()
    lines = str(failed.value).splitlines()
    assert lines[0] == "invalid configuration:"
    assert sorted(line.split(":")[0].strip() for line in lines[1:]) == [
        "ORDER_SERVICE_LOGLEVEL",
        "ORDER_SERVICE_PROCESSING__GUARANTEE",
    ]


def test_an_unknown_name_in_the_dotenv_file_stops_the_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("OTHER_TOOL_SETTING=1\nORDER_SERVICE_DELIVERY__GUARANTE=exactly_once\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigurationError) as failed:
        load_settings()
    assert str(failed.value) == (
        "invalid configuration: ORDER_SERVICE_DELIVERY__GUARANTE (in .env): names no setting; "
        "did you mean ORDER_SERVICE_DELIVERY__GUARANTEE?"
    )


def test_variables_without_the_prefix_are_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("OTHER_TOOL_SETTING=1\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ORDER_SERVICES_LOG_LEVEL", "DEBUG")  # another prefix, however close
    monkeypatch.setenv("KAFKA_PORT", "9999")
    assert load_settings().log_level == "INFO"


def test_a_group_given_as_json_is_read_and_its_unknown_keys_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORDER_SERVICE_DELIVERY", '{"guarantee": "exactly_once"}')
    assert load_settings().delivery.guarantee == "exactly_once"
    monkeypatch.setenv("ORDER_SERVICE_DELIVERY", '{"guarante": "exactly_once"}')
    with pytest.raises(ConfigurationError) as failed:
        load_settings()
    assert "ORDER_SERVICE_DELIVERY__GUARANTE:" in str(failed.value)


def test_the_effective_settings_say_where_each_value_came_from_and_mask_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("ORDER_SERVICE_TOPICS__PARTITIONS=12\nORDER_SERVICE_LOG_LEVEL=ERROR\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ORDER_SERVICE_LOG_LEVEL", "DEBUG")  # the environment wins over .env
    monkeypatch.setenv("ORDER_SERVICE_KAFKA__SASL_PASSWORD", "s3cret")
    monkeypatch.setenv("ORDER_SERVICE_CONSUMER", '{"group_id": "orders-eu"}')
    shown = {s.variable: s for s in effective_settings(load_settings())}
    assert len(shown) == len(variables_of(Settings))
    assert (
        shown["ORDER_SERVICE_TOPICS__PARTITIONS"].value,
        shown["ORDER_SERVICE_TOPICS__PARTITIONS"].source,
    ) == (
        12,
        ".env",
    )
    assert (shown["ORDER_SERVICE_LOG_LEVEL"].value, shown["ORDER_SERVICE_LOG_LEVEL"].source) == (
        "DEBUG",
        "environment",
    )
    assert shown["ORDER_SERVICE_CONSUMER__GROUP_ID"].source == "environment"
    assert shown["ORDER_SERVICE_CONSUMER__SESSION_TIMEOUT_MS"].source == "default"
    password = shown["ORDER_SERVICE_KAFKA__SASL_PASSWORD"]
    assert (password.secret, password.source) == (True, "environment")
    assert "s3cret" not in repr(list(shown.values()))
    assert shown["ORDER_SERVICE_KAFKA__SSL_PASSWORD"].value is None
    assert shown["OTEL_TRACES_EXPORTER"].source == "default"


@pytest.mark.parametrize(
    ("value", "form"),
    [
        ("order_service.domain.rules:process_order", "function"),
        ("tests.support.processors:recorded", "factory"),
        ("order_service.processors.stock:processor", "factory_with_context"),
    ],
)
def test_the_processor_may_be_a_function_or_a_factory(
    monkeypatch: pytest.MonkeyPatch, value: str, form: str
) -> None:
    monkeypatch.setenv("ORDER_SERVICE_PROCESSING__PROCESSOR", value)
    processing = load_settings().processing
    assert processing.form() == form
    assert processing.awaits() == (form != "function"), "a factory's function is only known once entered"


@pytest.mark.parametrize(
    "url",
    [
        "mysql://app:s3cret@db:3306/orders",
        "postgresql://app:s3cret@db:5432",  # no database
        "postgresql://app:s3cret@:5432/orders",  # no host
        "postgresql://app:s3cret@db:port/orders",
        "s3cret",
    ],
)
def test_a_database_url_that_is_not_one_fails_without_echoing_it(
    monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.setenv("ORDER_SERVICE_EFFECTS__DATABASE_URL", url)
    with pytest.raises(ConfigurationError) as failed:
        load_settings()
    assert str(failed.value).startswith("invalid configuration: ORDER_SERVICE_EFFECTS__DATABASE_URL: ")
    assert "s3cret" not in str(failed.value)


def test_effects_are_off_by_default_and_their_url_is_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not load_settings().effects.enabled
    monkeypatch.setenv("ORDER_SERVICE_EFFECTS__DATABASE_URL", "postgresql://app:s3cret@db:5432/orders")
    settings = load_settings()
    assert settings.effects.enabled
    assert "s3cret" not in repr(settings)
    assert "s3cret" in settings.secret_values(), "a driver error quoting the password alone is masked too"
    shown = {s.variable: s for s in effective_settings(settings)}["ORDER_SERVICE_EFFECTS__DATABASE_URL"]
    assert shown.secret
    assert "s3cret" not in str(shown.value)

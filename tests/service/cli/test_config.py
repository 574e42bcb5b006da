"""`order-service config`: every setting, its effective value and its source, secrets masked."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from order_service.cli import app
from order_service.settings import Settings
from order_service.settings.variables import variables_of


def invoke(*args: str, env: dict[str, str]) -> Result:
    return CliRunner().invoke(app, ["config", *args], env=env)


@pytest.fixture(autouse=True)
def _no_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def test_json_shows_every_setting_with_its_source_and_never_the_password() -> None:
    result = invoke(
        "--json",
        env={
            "ORDER_SERVICE_KAFKA__SASL_PASSWORD": "s3cret",
            "ORDER_SERVICE_DELIVERY__GUARANTEE": "exactly_once",
        },
    )
    assert result.exit_code == 0, result.output
    assert "s3cret" not in result.output
    shown = {s["variable"]: s for s in json.loads(result.stdout)["settings"]}
    assert set(shown) == {v.name for v in variables_of(Settings)}
    assert {s["source"] for s in shown.values()} <= {"default", "environment", ".env"}
    assert shown["ORDER_SERVICE_KAFKA__SASL_PASSWORD"] == {
        "variable": "ORDER_SERVICE_KAFKA__SASL_PASSWORD",
        "value": "********",
        "set": True,
        "secret": True,
        "source": "environment",
    }
    assert shown["ORDER_SERVICE_KAFKA__SSL_PASSWORD"]["set"] is False
    assert shown["ORDER_SERVICE_DELIVERY__GUARANTEE"]["value"] == "exactly_once"
    assert shown["ORDER_SERVICE_DELIVERY__GUARANTEE"]["source"] == "environment"
    assert shown["ORDER_SERVICE_KAFKA__BOOTSTRAP_SERVERS"] == {
        "variable": "ORDER_SERVICE_KAFKA__BOOTSTRAP_SERVERS",
        "value": ["localhost:9092"],
        "set": True,
        "secret": False,
        "source": "default",
    }


def test_the_table_has_a_row_per_setting_written_as_the_variable_would_be(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("ORDER_SERVICE_ORDERS__ACCEPTED_CURRENCIES=usd,eur\n")
    result = invoke(env={"ORDER_SERVICE_KAFKA__SSL_PASSWORD": "s3cret"})
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines()[1:]}
    assert len(rows) == len(variables_of(Settings))
    assert rows["ORDER_SERVICE_ORDERS__ACCEPTED_CURRENCIES"] == ["EUR,USD", ".env"]
    assert rows["ORDER_SERVICE_KAFKA__SSL_PASSWORD"] == ["********", "environment"]
    assert rows["ORDER_SERVICE_TOPICS__CREATE"] == ["true", "default"]
    assert "s3cret" not in result.output


def test_settings_that_do_not_load_end_in_one_line() -> None:
    result = invoke("--json", env={"ORDER_SERVICE_DELIVERY__GUARANTE": "exactly_once"})
    assert result.exit_code == 1
    assert result.stderr == (
        "order-service: invalid configuration: ORDER_SERVICE_DELIVERY__GUARANTE: names no setting; "
        "did you mean ORDER_SERVICE_DELIVERY__GUARANTEE?\n"
    )
    assert result.stdout == ""

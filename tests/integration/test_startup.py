"""Start-up either reaches a working state or exits non-zero with one line naming the cause."""

import time
from pathlib import Path

import pytest

from tests.support.service import ServiceProcess, ServiceTopics, free_port, import_seconds


@pytest.fixture(scope="module")
def imports() -> float:
    """The import time of the service, measured once for the module: the slower of two runs, so that
    a fast outlier does not count against a test."""
    return max(import_seconds() for _ in range(2))


def run_to_exit(service: ServiceProcess, timeout: float, imports: float) -> tuple[int, float, str]:
    """Exit code, seconds from start to exit less the time Python takes to import the service, and
    the whole output. The import time is the module's (`imports`) or one measured right before the
    run, the slower: while the other half of the suite starts brokers, it swings from 1 s to 8 s."""
    imports = max(imports, import_seconds())
    started = time.monotonic()
    code = service.start().wait(timeout)
    return code, time.monotonic() - started - imports, service.output()


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if '"level": "ERROR"' in line]


async def test_an_unreachable_bootstrap_list_exits_within_the_connect_timeout(imports: float) -> None:
    bootstrap = f"127.0.0.1:{free_port()},127.0.0.1:{free_port()}"
    connect_timeout = 2  # the wait under test; the slack below is what exiting may take beyond it
    service = ServiceProcess(bootstrap, ServiceTopics(), kafka__connect_timeout_s=str(connect_timeout))
    try:
        code, elapsed, output = run_to_exit(service, timeout=30, imports=imports)
    finally:
        service.stop()
    assert code != 0
    assert elapsed < connect_timeout + 5, f"exited after {elapsed:.1f}s"
    errors = error_lines(output)
    assert len(errors) == 1, output
    assert bootstrap in errors[0]
    assert "ORDER_SERVICE_KAFKA__BOOTSTRAP_SERVERS" in errors[0]
    assert "Traceback" not in output


@pytest.mark.parametrize(
    ("settings", "variable"),
    [
        ({"kafka__bootstrap_servers": "xx"}, "ORDER_SERVICE_KAFKA__BOOTSTRAP_SERVERS"),
        (
            {"kafka__security_protocol": "SSL", "kafka__ssl_cafile": "/nonexistent/ca.pem"},
            "ORDER_SERVICE_KAFKA__SSL_CAFILE",
        ),
        (
            {
                "kafka__security_protocol": "SASL_SSL",
                "kafka__sasl_mechanism": "SCRAM-SHA-512",
                "kafka__sasl_username": "order-service",
                "kafka__sasl_password": "not-a-real-secret-4711",
            },
            "ORDER_SERVICE_KAFKA__SECURITY_PROTOCOL",
        ),
    ],
    ids=["garbage-bootstrap", "missing-cafile", "sasl-ssl-on-plaintext"],
)
async def test_a_configuration_error_names_its_variable_without_a_traceback(
    kafka: str, settings: dict[str, str], variable: str, imports: float
) -> None:
    service = ServiceProcess(kafka, ServiceTopics(), **settings)
    try:
        code, elapsed, output = run_to_exit(service, timeout=30, imports=imports)
    finally:
        service.stop()
    assert code != 0
    assert elapsed < 5, f"exited after {elapsed:.1f}s"
    assert variable in output
    assert "Traceback" not in output
    assert "not-a-real-secret-4711" not in output


@pytest.mark.parametrize(
    ("settings", "environment", "variable"),
    [
        (
            {
                "kafka__security_protocol": "SASL_SSL",
                "kafka__sasl_mechanism": "SCRAM-SHA-512",
                "kafka__sasl_username": "order-service",
            },
            {},
            "ORDER_SERVICE_KAFKA__SASL_PASSWORD",
        ),
        (
            {"kafka__security_protocol": "SSL", "kafka__ssl_cafile": "/nonexistent/ca.pem"},
            {},
            "ORDER_SERVICE_KAFKA__SSL_CAFILE",
        ),
        ({}, {"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER"),
    ],
    ids=["missing-sasl-password", "missing-cafile", "unknown-otel-exporter"],
)
async def test_settings_errors_stop_the_start_before_any_network_io(
    settings: dict[str, str], environment: dict[str, str], variable: str, imports: float
) -> None:
    # Nothing listens there, and the connect timeout is long: reaching the network would not end in 5 s.
    service = ServiceProcess(f"127.0.0.1:{free_port()}", ServiceTopics(), **settings)
    service.env.update(environment)
    try:
        code, elapsed, output = run_to_exit(service, timeout=30, imports=imports)
    finally:
        service.stop()
    assert code != 0
    assert elapsed < 5, f"exited after {elapsed:.1f}s"
    assert variable in output
    assert "Traceback" not in output
    assert "not reachable" not in output, "it tried the network"


# The four mistakes of issue 23, each of which used to start the service on defaults without a word.
MISTAKES = [
    ("ORDER_SERVICE_PROCESSING__GUARANTEE", "exactly_once", "renamed to ORDER_SERVICE_DELIVERY__GUARANTEE"),
    (
        "ORDER_SERVICE_DELIVERY__GUARANTE",
        "exactly_once",
        "names no setting; did you mean ORDER_SERVICE_DELIVERY__GUARANTEE?",
    ),
    (
        "ORDER_SERVICE_KAFKA__BOOTSTRAP_SERVER",
        "127.0.0.1:19999",
        "names no setting; did you mean ORDER_SERVICE_KAFKA__BOOTSTRAP_SERVERS?",
    ),
    ("ORDER_SERVICE_LOGLEVEL", "DEBUG", "names no setting; did you mean ORDER_SERVICE_LOG_LEVEL?"),
]


@pytest.mark.parametrize(("variable", "value", "says"), MISTAKES, ids=[m[0] for m in MISTAKES])
@pytest.mark.parametrize("where", ["environment", ".env"])
async def test_a_variable_that_names_no_setting_stops_the_start_in_one_line(
    variable: str, value: str, says: str, where: str, tmp_path: Path, imports: float
) -> None:
    # Nothing listens there, and the connect timeout is long: reaching the network would not end in 5 s.
    service = ServiceProcess(f"127.0.0.1:{free_port()}", ServiceTopics())
    service.cwd = tmp_path
    if where == "environment":
        service.env[variable] = value
    else:
        (tmp_path / ".env").write_text(f"{variable}={value}\n")
    try:
        code, elapsed, output = run_to_exit(service, timeout=30, imports=imports)
    finally:
        service.stop()
    assert code == 1
    assert elapsed < 5, f"exited after {elapsed:.1f}s"
    named = variable if where == "environment" else f"{variable} (in .env)"
    # One line: no traceback, no value, nothing after it.
    assert output.splitlines() == [f"invalid configuration: {named}: {says}"]

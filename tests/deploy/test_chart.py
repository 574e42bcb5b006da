"""The chart in deploy/helm/order-service, rendered by the pinned helm (scripts/helm) and checked by
deploy/helm/check.py, as `make lint` does: both values files pass, and values that break one of the
service's rules fail the check (or the template itself) with a line that names it."""

import copy
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]  # no stubs installed (types-PyYAML)

from order_service.adapters import supervision

ROOT = Path(__file__).parents[2]
CHART = ROOT / "deploy" / "helm" / "order-service"
PRODUCTION = CHART / "values-production.yaml"
CHECK = ROOT / "deploy" / "helm" / "check.py"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "docs" / "grafana" / "order-service.json"


def _load_check() -> ModuleType:
    spec = importlib.util.spec_from_file_location("chart_check", CHECK)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


check = _load_check()
Objects = list[dict[str, Any]]


def render_file(out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ROOT / "scripts" / "helm"), "render", str(out), *args],
        capture_output=True,
        text=True,
        check=False,
    )


def render(tmp_path: Path, *args: str) -> Objects:
    out = tmp_path / "rendered.yaml"
    done = render_file(out, *args)
    assert done.returncode == 0, done.stderr
    objs: Objects = check.load(out)
    return objs


def problems(objs: Objects) -> list[str]:
    found: list[str] = check.semantic_problems(objs, check.image_uid())
    return found


def of_kind(objs: Objects, kind: str) -> dict[str, Any]:
    (obj,) = [o for o in objs if o["kind"] == kind]
    return obj


def env(objs: Objects) -> dict[str, dict[str, Any]]:
    container = of_kind(objs, "StatefulSet")["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e for e in container["env"]}


@pytest.fixture(scope="module")
def default(tmp_path_factory: pytest.TempPathFactory) -> Objects:
    return render(tmp_path_factory.mktemp("default"))


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory) -> Objects:
    return render(tmp_path_factory.mktemp("production"), "-f", str(PRODUCTION))


def test_both_values_files_pass_the_schemas_and_the_rules(tmp_path: Path) -> None:
    rendered = []
    for name, args in (("default", []), ("production", ["-f", str(PRODUCTION)])):
        rendered.append(tmp_path / f"{name}.yaml")
        assert render_file(rendered[-1], *args).returncode == 0
    assert check.check(rendered, [CHART / "values.yaml", PRODUCTION]) == []


def test_production_renders_every_object_of_the_deployment(production: Objects) -> None:
    kinds = {o["kind"] for o in production}
    assert {
        "StatefulSet",
        "PodDisruptionBudget",
        "ScaledObject",
        "TriggerAuthentication",
        "ServiceMonitor",
    } <= kinds
    assert {"PrometheusRule", "ConfigMap", "Service", "ServiceAccount"} <= kinds
    dashboard = of_kind(production, "ConfigMap")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard["data"]["order-service.json"]) == json.loads(DASHBOARD.read_text())
    variables = env(production)
    assert variables["ORDER_SERVICE_KAFKA__SECURITY_PROTOCOL"]["value"] == "SASL_SSL"
    assert variables["ORDER_SERVICE_TOPICS__REPLICATION_FACTOR"]["value"] == "3"
    for secret in ("ORDER_SERVICE_KAFKA__SASL_PASSWORD", "ORDER_SERVICE_EFFECTS__DATABASE_URL"):
        assert set(variables[secret]) == {"name", "valueFrom"}
        assert "secretKeyRef" in variables[secret]["valueFrom"]


def test_the_prometheus_rule_holds_the_alerts_file(production: Objects) -> None:
    # files/alerts.yml is a link to the rules promtool tests, not a copy that could drift.
    assert (CHART / "files" / "alerts.yml").resolve() == ALERTS.resolve()
    rule = of_kind(production, "PrometheusRule")
    assert rule["spec"]["groups"] == yaml.safe_load(ALERTS.read_text())["groups"]


def test_the_default_values_leave_the_options_off(default: Objects) -> None:
    kinds = {o["kind"] for o in default}
    assert kinds == {"StatefulSet", "Service", "ServiceAccount", "PodDisruptionBudget"}
    assert of_kind(default, "StatefulSet")["spec"]["replicas"] == 2


def test_a_probe_on_another_port_than_the_service_fails_the_check(tmp_path: Path) -> None:
    # The service listens where ORDER_SERVICE_HTTP__PORT says; set twice, the last one wins.
    objs = render(tmp_path, "--set", "extraEnv.ORDER_SERVICE_HTTP__PORT=9090")
    found = problems(objs)
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert any(
            f"{probe} probes port 8080, but the service listens on ORDER_SERVICE_HTTP__PORT=9090" in p
            for p in found
        )
    assert any("ORDER_SERVICE_HTTP__PORT is set twice" in p for p in found)


def test_the_check_fails_make_lint_on_a_broken_manifest(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    assert render_file(broken, "--set", "extraEnv.ORDER_SERVICE_HTTP__PORT=9090").returncode == 0
    done = subprocess.run(
        [sys.executable, str(CHECK), str(broken)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 1
    assert "but the service listens on ORDER_SERVICE_HTTP__PORT=9090" in done.stderr


@pytest.mark.parametrize(
    ("pattern", "broken", "message"),
    [
        (
            r"(readinessProbe:\s+httpGet:\s+path: /health/ready\s+port: )\{\{ \$port \}\}",
            r"\g<1>9090",
            "readinessProbe probes port 9090, but the service listens on ORDER_SERVICE_HTTP__PORT=8080",
        ),
        (
            r"(terminationGracePeriodSeconds: )\{\{ include .* \}\}",
            r"\g<1>20",
            "terminationGracePeriodSeconds 20 is not above ORDER_SERVICE_SHUTDOWN_GRACE_PERIOD_S 20",
        ),
    ],
)
def test_make_lint_fails_on_a_broken_chart(tmp_path: Path, pattern: str, broken: str, message: str) -> None:
    # What `make lint` runs, on a copy of the chart with one line broken (links copied as files).
    chart = tmp_path / "order-service"
    shutil.copytree(CHART, chart, symlinks=False)
    workload = chart / "templates" / "statefulset.yaml"
    text, count = re.subn(pattern, broken, workload.read_text(), count=1)
    assert count == 1
    workload.write_text(text)
    helm = str(ROOT / "scripts" / "helm")
    env = {**os.environ, "TMPDIR": str(tmp_path)}  # where it leaves the renders of a failed check
    done = subprocess.run([helm, "check", str(chart)], capture_output=True, text=True, check=False, env=env)
    assert done.returncode == 1, done.stdout + done.stderr
    assert message in done.stderr
    assert subprocess.run([helm, "check"], capture_output=True, check=False).returncode == 0


def test_a_termination_grace_period_shorter_than_the_shutdown_fails_the_check(tmp_path: Path) -> None:
    objs = render(tmp_path, "--set", "extraEnv.ORDER_SERVICE_SHUTDOWN_GRACE_PERIOD_S=60")
    assert of_kind(objs, "StatefulSet")["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 28
    expected = "terminationGracePeriodSeconds 28 is not above ORDER_SERVICE_SHUTDOWN_GRACE_PERIOD_S 60"
    assert any(f"{expected} + the watchdog's 2.5 s" in p for p in problems(objs))


def test_one_value_drives_the_shutdown_grace_and_the_termination_grace(tmp_path: Path) -> None:
    objs = render(tmp_path, "--set", "shutdown.gracePeriodS=60")
    assert env(objs)["ORDER_SERVICE_SHUTDOWN_GRACE_PERIOD_S"]["value"] == "60"
    # ceil(60 + 2.5) + shutdown.killSlackS (5)
    assert of_kind(objs, "StatefulSet")["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 68
    assert problems(objs) == []


def test_the_charts_watchdog_margin_is_the_services() -> None:
    helpers = (CHART / "templates" / "_helpers.tpl").read_text()
    match = re.search(r'define "order-service.watchdogMarginS" -}}([0-9.]+){{', helpers)
    assert match is not None
    assert float(match.group(1)) == supervision._FORCE_EXIT_SLACK_S


def test_the_startup_probe_outlasts_the_connect_timeouts(tmp_path: Path, production: Objects) -> None:
    objs = render(tmp_path, "--set", "kafka.connectTimeoutS=300")
    probe = of_kind(objs, "StatefulSet")["spec"]["template"]["spec"]["containers"][0]["startupProbe"]
    assert probe["periodSeconds"] * probe["failureThreshold"] > 300
    assert problems(objs) == []
    # With effects on, the database connect counts too: 60 + 10 + 30 s of slack, every 2 s.
    probe = of_kind(production, "StatefulSet")["spec"]["template"]["spec"]["containers"][0]["startupProbe"]
    assert probe["failureThreshold"] == 50
    late = render(tmp_path, "--set", "extraEnv.ORDER_SERVICE_KAFKA__CONNECT_TIMEOUT_S=600")
    assert any(
        "the startupProbe gives up after 90 s, before the connect timeouts (600 s" in p
        for p in problems(late)
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["-f", str(PRODUCTION), "--set", "autoscaling.maxReplicaCount=13"],
            "autoscaling.maxReplicaCount (13) is above topics.partitions (12)",
        ),
        (["--set", "replicaCount=7"], "replicaCount (7) is above topics.partitions (6)"),
        (
            ["--set", "kafka.securityProtocol=SASL_SSL"],
            "kafka.securityProtocol SASL_SSL needs kafka.sasl.mechanism, kafka.sasl.username",
        ),
    ],
)
def test_the_template_refuses_values_that_cannot_work(tmp_path: Path, args: list[str], message: str) -> None:
    done = render_file(tmp_path / "out.yaml", *args)
    assert done.returncode != 0
    assert message in done.stderr


def test_more_replicas_than_partitions_fails_the_check(production: Objects) -> None:
    objs = copy.deepcopy(production)
    of_kind(objs, "ScaledObject")["spec"]["maxReplicaCount"] = 13
    assert any("maxReplicaCount 13 is above ORDER_SERVICE_TOPICS__PARTITIONS=12" in p for p in problems(objs))


def test_a_variable_that_names_no_setting_fails_the_check(tmp_path: Path) -> None:
    objs = render(tmp_path, "--set", "extraEnv.ORDER_SERVICE_DELIVERY__GUARANTE=exactly_once")
    assert any(
        "ORDER_SERVICE_DELIVERY__GUARANTE names no setting" in p and "ORDER_SERVICE_DELIVERY__GUARANTEE?" in p
        for p in problems(objs)
    )


def test_a_secret_by_value_fails_the_check(tmp_path: Path) -> None:
    objs = render(tmp_path, "--set", "extraEnv.ORDER_SERVICE_KAFKA__SASL_PASSWORD=hunter2")
    assert any(
        "ORDER_SERVICE_KAFKA__SASL_PASSWORD is a secret: it must come from a Secret" in p
        for p in problems(objs)
    )


def test_a_secret_in_a_values_file_fails_the_check(tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(
        "kafka:\n  sasl:\n    password: hunter2\n"
        "extraEnv:\n  ORDER_SERVICE_EFFECTS__DATABASE_URL: postgresql://app:hunter2@db:5432/orders\n"
        "tls: |\n  -----BEGIN PRIVATE KEY-----\n"
    )
    found = check.values_problems(values)
    assert any("kafka.sasl.password holds a value" in p for p in found)
    assert any("ORDER_SERVICE_EFFECTS__DATABASE_URL is a secret setting" in p for p in found)
    assert any("a URL with a password" in p for p in found)
    assert any("key or certificate material" in p for p in found)
    assert check.values_problems(CHART / "values.yaml") == []


def test_the_group_instance_id_must_be_the_pod_name(default: Objects) -> None:
    objs = copy.deepcopy(default)
    workload = of_kind(objs, "StatefulSet")
    for entry in workload["spec"]["template"]["spec"]["containers"][0]["env"]:
        if entry["name"] == "ORDER_SERVICE_CONSUMER__GROUP_INSTANCE_ID":
            entry.pop("valueFrom")
            entry["value"] = "order-service"
    workload["kind"] = "Deployment"
    found = problems(objs)
    assert any("must come from the pod's name" in p for p in found)
    assert any("a Deployment has no stable pod names" in p for p in found)


def test_the_security_context_is_checked(default: Objects) -> None:
    objs = copy.deepcopy(default)
    pod = of_kind(objs, "StatefulSet")["spec"]["template"]["spec"]
    pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"] = False
    pod["containers"][0]["securityContext"]["capabilities"]["drop"] = []
    pod["securityContext"]["runAsUser"] = pod["containers"][0]["securityContext"]["runAsUser"] = 0
    found = problems(objs)
    assert any("readOnlyRootFilesystem must be true" in p for p in found)
    assert any("capabilities.drop must hold ALL" in p for p in found)
    assert any("runAsUser must be 10001" in p for p in found)


def test_schemas_catch_a_misspelt_field(production: Objects) -> None:
    workload = copy.deepcopy(of_kind(production, "StatefulSet"))
    workload["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"] = "Always"
    assert any("imagePullPolcy" in p for p in check.schema_problems(workload))
    scaled = copy.deepcopy(of_kind(production, "ScaledObject"))
    scaled["spec"]["maxReplicas"] = 3
    assert any("maxReplicas" in p for p in check.schema_problems(scaled))
    monitor = copy.deepcopy(of_kind(production, "ServiceMonitor"))
    monitor["spec"]["endpoints"][0]["interval"] = 15
    assert any("interval" in p for p in check.schema_problems(monitor))

"""Offline checks of the chart's rendered manifests (`scripts/helm lint`, run by `make lint`).

    uv run python deploy/helm/check.py [--values VALUES.yaml]... RENDERED.yaml...

1. Schemas: every object against the Kubernetes JSON schemas bundled by kubernetes-validate (strict:
   no unknown field), for the oldest Kubernetes the chart supports and the newest bundled; custom
   resources against the CRD schemas vendored in deploy/schemas (KEDA, Prometheus Operator).
2. What no schema can say, from the service's own semantics:
   - every ORDER_SERVICE_* variable the chart sets names a setting (the service refuses to start
     on one that does not), and none is set twice;
   - the group instance id is the pod's name, on a StatefulSet (stable names);
   - the probes hit the port the service listens on (ORDER_SERVICE_HTTP__PORT), on the right paths;
   - the startup probe outlasts the connect timeouts (the HTTP server starts after them);
   - terminationGracePeriodSeconds > ORDER_SERVICE_SHUTDOWN_GRACE_PERIOD_S + the watchdog margin;
   - secrets come from Secrets: secret settings by secretKeyRef, TLS files from a Secret volume;
   - the image's non-root uid, a read-only root, no capability, no privilege escalation, seccomp;
   - replicas and the ScaledObject's maxReplicaCount at most ORDER_SERVICE_TOPICS__PARTITIONS;
   - the ScaledObject, PodDisruptionBudget, Service and ServiceMonitor point at the workload.
3. With --values: no secret value in a values file.

Exit 1 with one line per problem, 0 when all hold.
"""

import argparse
import json
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate  # type: ignore[import-untyped]
import yaml  # type: ignore[import-untyped]  # no stubs installed (types-PyYAML)
from pydantic import BaseModel

from order_service.adapters import supervision
from order_service.settings import Settings
from order_service.settings.variables import Variable, groups_of, suggestion, variables_of

ROOT = Path(__file__).resolve().parents[2]
CRD_SCHEMAS = ROOT / "deploy" / "schemas"
# The chart's kubeVersion floor (Chart.yaml) and the newest that kubernetes-validate bundles.
KUBE_VERSIONS = ("1.31", kubernetes_validate.latest_version())
# _FORCE_EXIT_SLACK_S: past the grace period, the watchdog ends the process at most this much later.
WATCHDOG_MARGIN_S: float = supervision._FORCE_EXIT_SLACK_S
VARIABLES = {v.name: v for v in variables_of(Settings)}
GROUPS = groups_of(Settings)
PREFIX = "ORDER_SERVICE_"
# Settings the checks read; a variable the chart does not set has the service's default.
HTTP_PORT = "ORDER_SERVICE_HTTP__PORT"
GRACE = "ORDER_SERVICE_SHUTDOWN_GRACE_PERIOD_S"
CONNECT = "ORDER_SERVICE_KAFKA__CONNECT_TIMEOUT_S"
DB_URL = "ORDER_SERVICE_EFFECTS__DATABASE_URL"
DB_CONNECT = "ORDER_SERVICE_EFFECTS__CONNECT_TIMEOUT_S"
PARTITIONS = "ORDER_SERVICE_TOPICS__PARTITIONS"
INSTANCE_ID = "ORDER_SERVICE_CONSUMER__GROUP_INSTANCE_ID"
TLS_FILES = (
    "ORDER_SERVICE_KAFKA__SSL_CAFILE",
    "ORDER_SERVICE_KAFKA__SSL_CERTFILE",
    "ORDER_SERVICE_KAFKA__SSL_KEYFILE",
)


def image_uid(dockerfile: Path = ROOT / "Dockerfile") -> int:
    """The uid of the user the image runs as (`useradd ... --uid N`)."""
    match = re.search(r"useradd\b[^\n]*--uid (\d+)", dockerfile.read_text())
    if match is None:
        raise SystemExit(f"{dockerfile}: no `useradd --uid`, the image's user cannot be known")
    return int(match.group(1))


def load(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def name_of(obj: Mapping[str, Any]) -> str:
    return f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"


# 1. Schemas.


@cache
def crd_validator(api_version: str, kind: str) -> Any:
    group, _, version = api_version.rpartition("/")
    path = CRD_SCHEMAS / group / f"{kind.lower()}_{version}.json"
    if not path.is_file():
        return None
    return jsonschema.Draft4Validator(json.loads(path.read_text()))


def schema_problems(obj: Mapping[str, Any]) -> list[str]:
    api_version, kind = obj.get("apiVersion", ""), obj.get("kind", "")
    where = name_of(obj)
    group = api_version.rpartition("/")[0]
    if "." in group and not group.endswith(".k8s.io"):  # a custom resource
        validator = crd_validator(api_version, kind)
        if validator is None:
            return [f"{where}: no vendored schema for {api_version} {kind} in deploy/schemas"]
        return [
            f"{where}: {'.'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
            for e in validator.iter_errors(obj)
        ]
    problems = []
    for version in KUBE_VERSIONS:
        try:
            kubernetes_validate.validate(dict(obj), version, strict=True)
        except kubernetes_validate.ValidationError as e:
            path = ".".join(map(str, e.absolute_path)) or "(top)"
            problems.append(f"{where}: Kubernetes {version}: {path}: {e.message}")
        except kubernetes_validate.SchemaNotFoundError as e:
            problems.append(f"{where}: {e.message}")
    return problems


# 2. The service's own semantics.


def default_of(variable: Variable) -> Any:
    model: type[BaseModel] = Settings
    for part in variable.path[:-1]:
        model = model.model_fields[part].annotation  # type: ignore[assignment]
    return model.model_fields[variable.path[-1]].default


@dataclass
class Container:
    """The service's container of a workload, and what the checks need of it."""

    workload: Mapping[str, Any]
    pod: Mapping[str, Any]
    spec: Mapping[str, Any]

    @property
    def where(self) -> str:
        return f"{name_of(self.workload)} container {self.spec.get('name')}"

    def env_entries(self) -> list[Mapping[str, Any]]:
        return list(self.spec.get("env") or [])

    def env(self) -> dict[str, Mapping[str, Any]]:
        """By name; the last of duplicates wins, as in Kubernetes."""
        return {e["name"]: e for e in self.env_entries()}

    def setting(self, name: str) -> str | None:
        """The value the service sees: the env's literal value, or the setting's default; None for
        one from a reference (a Secret, a field)."""
        entry = self.env().get(name)
        if entry is None:
            default = default_of(VARIABLES[name])
            return None if default is None else str(default)
        return None if "valueFrom" in entry else str(entry.get("value", ""))

    def number(self, name: str, problems: list[str]) -> float | None:
        raw = self.setting(name)
        try:
            return float(raw) if raw is not None else None
        except ValueError:
            problems.append(f"{self.where}: {name}={raw!r} is not a number")
            return None


def containers(objs: list[dict[str, Any]]) -> Iterator[Container]:
    """Every container that carries ORDER_SERVICE_* settings, in any workload kind."""
    for obj in objs:
        pod = obj.get("spec", {}).get("template", {})
        for spec in pod.get("spec", {}).get("containers", []):
            if any(str(e.get("name", "")).startswith(PREFIX) for e in spec.get("env") or []):
                yield Container(obj, pod, spec)


def env_problems(c: Container) -> list[str]:
    problems = []
    seen: set[str] = set()
    for entry in c.env_entries():
        name = entry["name"]
        if name in seen:
            problems.append(f"{c.where}: {name} is set twice (the last one wins)")
        seen.add(name)
        if name.startswith(PREFIX) and name not in VARIABLES and name not in GROUPS:
            hint = suggestion(name, set(VARIABLES))
            problems.append(
                f"{c.where}: {name} names no setting, and the service would refuse to start"
                + (f"; did you mean {hint}?" if hint else "")
            )
        variable = VARIABLES.get(name)
        if variable is not None and variable.secret and "secretKeyRef" not in entry.get("valueFrom", {}):
            problems.append(f"{c.where}: {name} is a secret: it must come from a Secret (secretKeyRef)")
    return problems


def membership_problems(c: Container) -> list[str]:
    problems = []
    if c.workload.get("kind") != "StatefulSet":
        problems.append(f"{c.where}: a {c.workload.get('kind')} has no stable pod names; use a StatefulSet")
    ref = c.env().get(INSTANCE_ID, {}).get("valueFrom", {}).get("fieldRef", {})
    if ref.get("fieldPath") != "metadata.name":
        problems.append(f"{c.where}: {INSTANCE_ID} must come from the pod's name (fieldRef metadata.name)")
    return problems


def probe_port(c: Container, probe: Mapping[str, Any]) -> Any:
    port = probe.get("httpGet", {}).get("port")
    if isinstance(port, str) and not port.isdigit():
        named = {p.get("name"): p.get("containerPort") for p in c.spec.get("ports") or []}
        return named.get(port, port)
    return int(port) if port is not None else None


def probe_problems(c: Container) -> list[str]:
    problems: list[str] = []
    port = c.number(HTTP_PORT, problems)
    if port is None:
        return problems
    if int(port) not in {p.get("containerPort") for p in c.spec.get("ports") or []}:
        problems.append(f"{c.where}: no container port is {HTTP_PORT} ({int(port)})")
    paths = {
        "startupProbe": "/health/live",
        "readinessProbe": "/health/ready",
        "livenessProbe": "/health/live",
    }
    for kind, path in paths.items():
        probe = c.spec.get(kind)
        if probe is None:
            problems.append(f"{c.where}: no {kind}")
            continue
        actual = probe_port(c, probe)
        if actual != int(port):
            problems.append(
                f"{c.where}: {kind} probes port {actual}, but the service listens on {HTTP_PORT}={int(port)}"
            )
        if probe.get("httpGet", {}).get("path") != path:
            problems.append(f"{c.where}: {kind} must GET {path}, not {probe.get('httpGet', {}).get('path')}")
    startup = c.spec.get("startupProbe")
    connect = c.number(CONNECT, problems)
    if startup is not None and connect is not None:
        need = connect
        if c.env().get(DB_URL) is not None:
            need += c.number(DB_CONNECT, problems) or 0
        budget = startup.get("initialDelaySeconds", 0) + startup.get("periodSeconds", 10) * startup.get(
            "failureThreshold", 3
        )
        if budget <= need:
            problems.append(
                f"{c.where}: the startupProbe gives up after {budget} s, before the connect timeouts "
                f"({need:g} s: {CONNECT}" + (f" + {DB_CONNECT}" if need != connect else "") + "); the "
                "HTTP server starts only after them"
            )
    return problems


def grace_problems(c: Container) -> list[str]:
    problems: list[str] = []
    grace = c.number(GRACE, problems)
    termination = c.pod.get("spec", {}).get("terminationGracePeriodSeconds", 30)
    if grace is not None and not termination > grace + WATCHDOG_MARGIN_S:
        problems.append(
            f"{name_of(c.workload)}: terminationGracePeriodSeconds {termination} is not above {GRACE} "
            f"{grace:g} + the watchdog's {WATCHDOG_MARGIN_S:g} s: the kubelet would SIGKILL a shutdown "
            "that is still committing"
        )
    return problems


def security_problems(c: Container, uid: int) -> list[str]:
    pod_ctx = c.pod.get("spec", {}).get("securityContext", {})
    ctx = {**pod_ctx, **c.spec.get("securityContext", {})}
    wanted = {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
    }
    problems = [
        f"{c.where}: securityContext.{key} must be {json.dumps(value)} (is {json.dumps(ctx.get(key))})"
        for key, value in wanted.items()
        if ctx.get(key) != value
    ]
    if "ALL" not in ctx.get("capabilities", {}).get("drop", []):
        problems.append(f"{c.where}: securityContext.capabilities.drop must hold ALL")
    if ctx.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        problems.append(f"{c.where}: securityContext.seccompProfile.type must be RuntimeDefault")
    return problems


def tls_file_problems(c: Container) -> list[str]:
    volumes = {v.get("name"): v for v in c.pod.get("spec", {}).get("volumes") or []}
    secret_dirs = [
        m["mountPath"].rstrip("/") + "/"
        for m in c.spec.get("volumeMounts") or []
        if "secret" in volumes.get(m.get("name"), {})
    ]
    problems = []
    for name in TLS_FILES:
        path = c.setting(name)
        if path and not any(path.startswith(d) for d in secret_dirs):
            problems.append(f"{c.where}: {name}={path} is not in a mounted Secret")
    return problems


def labels_match(selector: Mapping[str, Any], labels: Mapping[str, Any]) -> bool:
    wanted = selector.get("matchLabels", {})
    return bool(wanted) and all(labels.get(k) == v for k, v in wanted.items())


def scaling_problems(objs: list[dict[str, Any]], c: Container) -> list[str]:
    problems: list[str] = []
    partitions = c.number(PARTITIONS, problems)
    replicas = c.workload.get("spec", {}).get("replicas")
    if partitions is not None and replicas is not None and replicas > partitions:
        problems.append(f"{name_of(c.workload)}: {replicas} replicas, above {PARTITIONS}={partitions:g}")
    name = c.workload.get("metadata", {}).get("name")
    for obj in objs:
        spec = obj.get("spec", {})
        if obj.get("kind") != "ScaledObject" or spec.get("scaleTargetRef", {}).get("name") != name:
            continue
        low, high = spec.get("minReplicaCount", 0), spec.get("maxReplicaCount", 100)
        if partitions is not None and high > partitions:
            problems.append(f"{name_of(obj)}: maxReplicaCount {high} is above {PARTITIONS}={partitions:g}")
        if low > high:
            problems.append(f"{name_of(obj)}: minReplicaCount {low} is above maxReplicaCount {high}")
        if spec["scaleTargetRef"].get("kind") != c.workload.get("kind"):
            problems.append(f"{name_of(obj)}: scaleTargetRef.kind is not {c.workload.get('kind')}")
        for trigger in spec.get("triggers", []):
            meta = trigger.get("metadata", {})
            for key, setting in (
                ("topic", "ORDER_SERVICE_TOPICS__INPUT"),
                ("consumerGroup", "ORDER_SERVICE_CONSUMER__GROUP_ID"),
            ):
                if trigger.get("type") == "kafka" and meta.get(key) != c.setting(setting):
                    problems.append(
                        f"{name_of(obj)}: kafka trigger's {key} {meta.get(key)!r} is not {setting}"
                    )
            auth = trigger.get("authenticationRef", {}).get("name")
            if auth and not any(
                o.get("kind") == "TriggerAuthentication" and o["metadata"]["name"] == auth for o in objs
            ):
                problems.append(f"{name_of(obj)}: authenticationRef {auth} is not rendered")
    return problems


def selection_problems(objs: list[dict[str, Any]], c: Container) -> list[str]:
    problems: list[str] = []
    pod_labels = c.pod.get("metadata", {}).get("labels", {})
    services = [o for o in objs if o.get("kind") == "Service" and o.get("spec", {}).get("selector")]
    for obj in objs:
        kind, spec = obj.get("kind"), obj.get("spec", {})
        if kind == "PodDisruptionBudget" and not labels_match(spec.get("selector", {}), pod_labels):
            problems.append(f"{name_of(obj)}: its selector does not select {name_of(c.workload)}'s pods")
        if kind == "Service" and all(pod_labels.get(k) == v for k, v in spec.get("selector", {}).items()):
            for port in spec.get("ports", []):
                target = port.get("targetPort", port.get("port"))
                resolved = probe_port(c, {"httpGet": {"port": target}})
                listening = c.setting(HTTP_PORT)
                if str(resolved) != listening:
                    problems.append(
                        f"{name_of(obj)}: port {port.get('name')} targets {target} ({resolved}), but the "
                        f"service listens on {HTTP_PORT}={listening}"
                    )
        if kind == "ServiceMonitor":
            selected = [
                s for s in services if labels_match(spec.get("selector", {}), s["metadata"].get("labels", {}))
            ]
            if not selected:
                problems.append(f"{name_of(obj)}: selects no rendered Service")
            ports = {p.get("name") for s in selected for p in s["spec"].get("ports", [])}
            problems += [
                f"{name_of(obj)}: endpoint port {e.get('port')} is no port of the Service"
                for e in spec.get("endpoints", [])
                if e.get("port") not in ports
            ]
    return problems


def semantic_problems(objs: list[dict[str, Any]], uid: int) -> list[str]:
    found = list(containers(objs))
    if not found:
        return ["no container sets ORDER_SERVICE_* settings: the service's workload is not rendered"]
    problems = []
    for c in found:
        problems += env_problems(c)
        problems += membership_problems(c)
        problems += probe_problems(c)
        problems += grace_problems(c)
        problems += security_problems(c, uid)
        problems += tls_file_problems(c)
        problems += scaling_problems(objs, c)
        problems += selection_problems(objs, c)
    return problems


# 3. Values files.

SECRET_KEY = re.compile(r"(password|passwd|secretkey|token|apikey|privatekey|databaseurl)$", re.IGNORECASE)
SECRET_VALUE = [
    (re.compile(r"-----BEGIN [A-Z ]*(PRIVATE KEY|CERTIFICATE)-----"), "key or certificate material"),
    (re.compile(r"://[^/\s:@]+:[^/\s@]+@"), "a URL with a password"),
]


def values_problems(path: Path) -> list[str]:
    """Literal secrets: a secret-named key with a value, a secret setting given by value, key
    material or a URL with a password anywhere."""
    problems = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                here = f"{where}.{key}" if where else str(key)
                variable = VARIABLES.get(str(key))
                if value not in (None, "", {}, []) and not isinstance(value, dict | list):
                    if SECRET_KEY.search(str(key)):
                        problems.append(f"{path}: {here} holds a value: secrets come from a Secret reference")
                    elif variable is not None and variable.secret:
                        problems.append(f"{path}: {here} is a secret setting: give it from a Secret")
                walk(value, here)
        elif isinstance(node, list):
            for i, item in enumerate(node):
                walk(item, f"{where}[{i}]")
        elif isinstance(node, str):
            problems.extend(
                f"{path}: {where} holds {what}" for pattern, what in SECRET_VALUE if pattern.search(node)
            )

    walk(yaml.safe_load(path.read_text()) or {}, "")
    return problems


def check(rendered: list[Path], values: list[Path]) -> list[str]:
    uid = image_uid()
    problems = []
    for path in rendered:
        objs = load(path)
        problems += [f"{path}: {p}" for obj in objs for p in schema_problems(obj)]
        problems += [f"{path}: {p}" for p in semantic_problems(objs, uid)]
    for path in values:
        problems += values_problems(path)
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("rendered", nargs="+", type=Path, help="helm template output")
    parser.add_argument("--values", action="append", default=[], type=Path, help="a values file to scan")
    args = parser.parse_args(argv)
    problems = check(args.rendered, args.values)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"chart check: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    objects = sum(len(load(p)) for p in args.rendered)
    print(f"chart check: {objects} objects in {len(args.rendered)} renders valid, the service's rules hold")
    return 0


if __name__ == "__main__":
    sys.exit(main())

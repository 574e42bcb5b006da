"""A real Prometheus for integration tests (Debian's package, which scripts/prometheus installs), and
what a test asks of it: the metrics the alert rules name, the dashboard's queries, the documented
metrics, each read from its file rather than listed here, so that a new alert or panel is checked too."""

import json
import re
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped, unused-ignore]  # no stubs installed (types-PyYAML)
from bench.ports import free_port

ROOT = Path(__file__).parents[2]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "docs" / "grafana" / "order-service.json"
OPERATIONS = ROOT / "docs" / "operations.md"
JOB = "order-service"  # the job name the alert rules expect (`up{job="order-service"}`)
# Where the server listens: outside the ephemeral range 32768-60999 (an outgoing connection may take
# a port there at any time) and away from the ports the project's other tools hold.
PORTS = range(29100, 29200)
# What the dashboard's Grafana interval variables become: a window of many 1-2 s scrapes.
GRAFANA_INTERVALS = {"__rate_interval": "1m", "__interval": "1m", "__range": "5m", "__interval_ms": "60000"}


def prometheus_binary() -> Path:
    """Debian's prometheus, installed when missing (root and apt: the test is never skipped)."""
    done = subprocess.run(
        [str(ROOT / "scripts" / "prometheus"), "path"], capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, f"scripts/prometheus path failed:\n{done.stderr}"
    binary = Path(done.stdout.strip().splitlines()[-1]) / "prometheus"
    assert binary.is_file(), binary
    return binary


class PrometheusServer:
    """One Prometheus scraping `targets` (host:port) as job `order-service` every `interval_s`,
    with `rule_files` loaded, its storage and log in `workdir`."""

    def __init__(
        self, binary: Path, workdir: Path, targets: list[str], *, rule_files: list[Path], interval_s: int = 1
    ) -> None:
        self.binary, self.workdir = binary, workdir
        self.port = free_port(PORTS, "Prometheus")
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / "prometheus.log"
        self.config = workdir / "prometheus.yml"
        interval = f"{interval_s}s"
        self.config.write_text(
            yaml.safe_dump(
                {
                    "global": {
                        "scrape_interval": interval,
                        "scrape_timeout": interval,
                        "evaluation_interval": interval,
                    },
                    "rule_files": [str(path) for path in rule_files],
                    "scrape_configs": [{"job_name": JOB, "static_configs": [{"targets": targets}]}],
                }
            )
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> "PrometheusServer":
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    str(self.binary),
                    f"--config.file={self.config}",
                    f"--storage.tsdb.path={self.workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while not self._ready():
            if self.process.poll() is not None:
                raise AssertionError(f"prometheus exited with {self.process.returncode}:\n{self.output()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"prometheus not ready within {timeout}s:\n{self.output()}")
            time.sleep(0.2)
        return self

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def api(self, path: str, **params: str) -> Any:
        """The `data` of an HTTP API answer; a failed query raises with Prometheus' error."""
        query = urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=10) as response:
                body = json.loads(response.read())
        except urllib.error.HTTPError as refused:
            body = json.loads(refused.read() or b"{}")
        if body.get("status") != "success":
            raise AssertionError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The series of an instant query (a vector; a scalar counts as one)."""
        data = self.api("query", query=expr)
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        result: list[dict[str, Any]] = data["result"]
        return result

    def stop(self) -> None:
        """SIGTERM to our own process (by its pid), SIGKILL after 10 s."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


# --- what is checked ------------------------------------------------------------------------------

_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan", "atan2"}
_PROMQL = re.compile(
    r"""
      (?P<string>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)
    | (?P<clause>\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\))
    | (?P<range>\[[^\]]*\])
    | (?P<number>\b\d[\w.]*)
    | (?P<selector>(?<![\w:.])[A-Za-z_:][\w:]*(?:\s*\{[^}]*\})?)
    """,
    re.VERBOSE,
)

# What follows a function's name, or an aggregation's (`sum by (group) (...)`).
_CALL = re.compile(r"\s*(?:(?:by|without)\s*\([^)]*\)\s*)?\(")


def selectors(expr: str) -> list[str]:
    """The vector selectors of a PromQL expression (`name{matchers}`), without functions, operators,
    aggregations and their label lists, durations, numbers and strings."""
    found = []
    for match in _PROMQL.finditer(expr):
        token = match.group("selector")
        if token is None:
            continue
        name = re.match(r"[\w:]+", token)
        assert name is not None
        if name.group().lower() in _KEYWORDS or _CALL.match(expr, match.end()):
            continue  # an operator, or a function or aggregation called here
        found.append(re.sub(r"\s+", "", token))
    return list(dict.fromkeys(found))


def alert_rules(path: Path = ALERTS) -> list[dict[str, Any]]:
    groups = yaml.safe_load(path.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every panel, also those inside a row (collapsed rows keep theirs in `panels`)."""
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def dashboard_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, expr) of every query of every panel."""
    return [
        (panel.get("title", "?"), target["expr"])
        for panel in _panels(dashboard.get("panels", []))
        for target in panel.get("targets", [])
        if target.get("expr")
    ]


def dashboard_variables(
    dashboard: dict[str, Any], label_values: Callable[[str, str], list[str]]
) -> dict[str, str]:
    """A value for each template variable, as a user would pick one: the first value of a
    `label_values(...)` query (asked of Prometheus through `label_values(selector, label)`), the
    first option of a custom or interval variable, the value of a constant or text box."""
    values = dict(GRAFANA_INTERVALS)
    for variable in dashboard.get("templating", {}).get("list", []):
        kind, name = variable.get("type"), variable["name"]
        query = variable.get("query", "")
        query = query.get("query", "") if isinstance(query, dict) else str(query)
        if kind == "datasource":
            continue
        if kind == "query":
            found = re.fullmatch(r"\s*label_values\(\s*(?:(.+?)\s*,\s*)?([\w]+)\s*\)\s*", query)
            assert found, f"dashboard variable ${name}: cannot evaluate its query {query!r}"
            options = label_values(found.group(1) or "", found.group(2))
            assert options, f"dashboard variable ${name}: {query} has no values"
            values[name] = options[0]
        elif kind in ("custom", "interval"):
            values[name] = query.split(",")[0].strip()
        else:  # constant, textbox
            values[name] = query
    return values


def substitute(expr: str, values: dict[str, str]) -> str:
    """Grafana's `$name`, `${name}`, `${name:format}` and `[[name]]` replaced by `values`."""

    def value(match: re.Match[str]) -> str:
        name = next(g for g in match.groups() if g)
        assert name in values, f"{expr}: unknown dashboard variable ${name}"
        return values[name]

    done = re.sub(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)", value, expr)
    assert "$" not in done, done
    return done


def documented_metrics(path: Path = OPERATIONS) -> list[str]:
    """The metrics of docs/operations.md's metrics table (`| \\`order_service_...\\` | type | ...`)."""
    return re.findall(r"^\| `(order_service_\w+)` \|", path.read_text(), flags=re.MULTILINE)

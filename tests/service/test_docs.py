import json
import re
import subprocess
from pathlib import Path

from order_service.adapters.observability import build_observability
from order_service.settings import Settings
from order_service.settings.variables import RENAMED, variables_of
from tests.support.prometheus import OPERATIONS, alert_rules, documented_metrics, selectors

README = Path(__file__).parents[2] / "README.md"


def readme_table(after: str) -> list[list[str]]:
    """The cells of README's first table after the line `after`, header rows left out."""
    rows = []
    for line in README.read_text().split(f"\n{after}\n", 1)[1].lstrip("\n").splitlines():
        if not line.startswith("|"):
            break
        rows.append([cell.strip().strip("`") for cell in line.strip("|").split("|")])
    return rows[2:]


def test_readme_configuration_table_lists_exactly_the_settings() -> None:
    documented = [row[0] for row in readme_table("The settings:")]
    assert sorted(documented) == sorted(v.name for v in variables_of(Settings))


def test_readme_lists_exactly_the_renamed_variables() -> None:
    renamed = readme_table(
        "Renamed when the settings were split by concern; the old names now fail with `renamed to …`:"
    )
    assert dict((old, new) for old, new in renamed) == RENAMED


def test_committed_asyncapi_document_matches_the_app(tmp_path: Path) -> None:
    generated = tmp_path / "asyncapi.yaml"
    subprocess.run([str(README.parent / "scripts" / "asyncapi"), str(generated)], check=True, timeout=120)
    committed = README.parent / "docs" / "asyncapi.yaml"
    assert generated.read_text() == committed.read_text(), "docs/asyncapi.yaml is stale: run `make docs`"


def test_the_dashboard_uses_only_metrics_the_service_exports() -> None:
    docs = README.parent / "docs"
    dashboard = json.loads((docs / "grafana" / "order-service.json").read_text())
    exprs = " ".join(t["expr"] for panel in dashboard["panels"] for t in panel["targets"])
    used = set(re.findall(r"order_service_[a-z_]+", exprs))
    documented = set(re.findall(r"`(order_service_[a-z_]+)`", (docs / "operations.md").read_text()))
    suffixes = ("_bucket", "_sum", "_count")
    assert {name.removesuffix(s) for name in used for s in suffixes if name.endswith(s)} | {
        name for name in used if not name.endswith(suffixes)
    } <= documented


def test_every_documented_metric_is_registered() -> None:
    observed = build_observability()
    names = set()
    for family in observed.registry.collect():
        names |= {sample.name for sample in family.samples} | {family.name}
    documented = set(
        re.findall(r"`(order_service_[a-z_]+)`", (README.parent / "docs" / "operations.md").read_text())
    )
    # Labelled families without samples yet still expose their family name.
    assert documented <= names | {f"{n}_total" for n in names}


def test_the_architecture_table_names_every_package() -> None:
    source = README.parent / "src"
    packages = {f"{path.parent.relative_to(source)}/" for path in source.rglob("__init__.py")}
    table = (README.parent / "docs" / "architecture.md").read_text().split("## Where is X", 1)[1]
    named = set(re.findall(r"^\| `([\w/]+/)` \|", table, flags=re.MULTILINE))
    assert packages - named == set(), "packages missing from the 'Where is X' table"
    assert named - packages == set(), "the 'Where is X' table names packages that do not exist"


def test_the_alert_rules_use_only_documented_metrics_and_are_all_described() -> None:
    rules = alert_rules()
    named = {re.split(r"[{\[]", s)[0] for r in rules for s in selectors(r["expr"])}
    # `up` is Prometheus' own, one per target.
    assert named - {"up"} <= set(documented_metrics())
    # Every metric the rules mention is found by the parser the Prometheus test uses.
    mentioned = {m for r in rules for m in re.findall(r"order_service_\w+", r["expr"])}
    assert mentioned <= named
    table = OPERATIONS.read_text().split("\n## Alerts\n", 1)[1].split("\n## ", 1)[0]
    described = re.findall(r"^\| `(\w+)` \|", table, flags=re.MULTILINE)
    assert described == [r["alert"] for r in rules], "docs/operations.md's alert table and alerts.yml differ"

import json
import re
import subprocess
from pathlib import Path

from pydantic import BaseModel

from order_service.adapters.observability import build_observability
from order_service.settings import Settings, env_name

README = Path(__file__).parents[2] / "README.md"


def setting_names(model: type[BaseModel], location: tuple[str, ...] = ()) -> list[str]:
    names: list[str] = []
    for name, field in model.model_fields.items():
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            names += setting_names(kind, (*location, name))
        else:
            alias = field.validation_alias
            names.append(alias if isinstance(alias, str) else env_name((*location, name)))
    return names


def test_readme_configuration_table_lists_exactly_the_settings() -> None:
    documented = re.findall(
        r"^\| `((?:ORDER_SERVICE|OTEL)_[A-Z_]+)` \|", README.read_text(), flags=re.MULTILINE
    )
    assert sorted(documented) == sorted(setting_names(Settings))


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


def test_the_architecture_table_names_every_module() -> None:
    source = README.parent / "src" / "order_service"
    modules = {str(path.relative_to(source)) for path in source.rglob("*.py")}
    table = (README.parent / "docs" / "architecture.md").read_text().split("## Where is X", 1)[1]
    named = set(re.findall(r"\| `([\w/]+\.py)` \|", table))
    assert modules - named == set(), "modules missing from the 'Where is X' table"
    assert named - modules == set(), "the table names modules that do not exist"

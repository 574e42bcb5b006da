import re
import subprocess
from pathlib import Path

from pydantic import BaseModel

from order_service.settings import Settings, env_name

README = Path(__file__).parents[2] / "README.md"


def setting_names(model: type[BaseModel], location: tuple[str, ...] = ()) -> list[str]:
    names: list[str] = []
    for name, field in model.model_fields.items():
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            names += setting_names(kind, (*location, name))
        else:
            names.append(env_name((*location, name)))
    return names


def test_readme_configuration_table_lists_exactly_the_settings() -> None:
    documented = re.findall(r"^\| `(ORDER_SERVICE_[A-Z_]+)` \|", README.read_text(), flags=re.MULTILINE)
    assert sorted(documented) == sorted(setting_names(Settings))


def test_committed_asyncapi_document_matches_the_app(tmp_path: Path) -> None:
    generated = tmp_path / "asyncapi.yaml"
    subprocess.run([str(README.parent / "scripts" / "asyncapi"), str(generated)], check=True, timeout=120)
    committed = README.parent / "docs" / "asyncapi.yaml"
    assert generated.read_text() == committed.read_text(), "docs/asyncapi.yaml is stale: run `make docs`"

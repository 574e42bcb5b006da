import re
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

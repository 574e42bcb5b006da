"""`order-service config`: the settings the service would run with here, and where each came from.

Operators run it in a pod (`kubectl exec … order-service config`) to see what the service actually
runs with: the same check and the same values as at the service's start, secrets masked.
"""

import json
from typing import Annotated, Any

import typer

from order_service.cli.common import fail
from order_service.errors import ConfigurationError
from order_service.settings import EffectiveSetting, effective_settings, load_settings

MASK = "********"
HEADER = ("VARIABLE", "VALUE", "SOURCE")


def command(
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object, for machines")] = False,
) -> None:
    """Print every setting (ORDER_SERVICE_*), its effective value and its source: default,
    environment or .env. Secrets are masked. Settings that do not load: one line, exit 1."""
    try:
        settings = effective_settings(load_settings())
    except ConfigurationError as exc:
        fail(str(exc))
    if as_json:
        typer.echo(json.dumps({"settings": [as_object(s) for s in settings]}, indent=2))
        return
    rows = [HEADER, *((s.variable, shown(s), s.source) for s in settings)]
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    for variable, value, source in rows:
        typer.echo(f"{variable.ljust(widths[0])}  {value.ljust(widths[1])}  {source}")


def as_object(setting: EffectiveSetting) -> dict[str, Any]:
    """`set` says whether the setting has a value: for a secret, the only thing said of it."""
    return {
        "variable": setting.variable,
        "value": MASK if setting.secret and setting.value is not None else setting.value,
        "set": setting.value is not None,
        "secret": setting.secret,
        "source": setting.source,
    }


def shown(setting: EffectiveSetting) -> str:
    """The value as the variable would be written: a list comma-separated, booleans in lower case."""
    value = as_object(setting)["value"]
    if value is None:
        return "-"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)

"""The settings as environment variables: the names they answer to, the names they used to answer
to, and where each effective value came from.

pydantic-settings reads the variables it knows and ignores every other one with the prefix, so a
typo (`…DELIVERY__GUARANTE`) or a name from before the settings split (`…PROCESSING__GUARANTEE`)
used to start the service in its default, weaker guarantee without a word. `unknown_names` is the
check that stops that start; it sees names only, never values, which may be secrets.
"""

import difflib
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple, get_args

from dotenv import dotenv_values
from pydantic import BaseModel, SecretStr

from order_service.settings.groups import ENV_PREFIX, NESTED_DELIMITER

DOTENV = ".env"
Source = Literal["default", "environment", ".env"]

# Renamed when ProcessingSettings was split by concern (20b6ff2): the old name, the new one.
RENAMED = {
    f"{ENV_PREFIX}PROCESSING__{old}": f"{ENV_PREFIX}{new}"
    for old, new in {
        "GUARANTEE": "DELIVERY__GUARANTEE",
        "COMMIT_INTERVAL_MS": "DELIVERY__COMMIT_INTERVAL_MS",
        "COMMIT_TIMEOUT_MS": "DELIVERY__COMMIT_TIMEOUT_MS",
        "TRANSACTION_TIMEOUT_MS": "DELIVERY__TRANSACTION_TIMEOUT_MS",
        "RETRY_BACKOFF_MS": "DELIVERY__BACKOFF_MS",
        "MAX_RETRY_BACKOFF_MS": "DELIVERY__MAX_BACKOFF_MS",
        "STALL_AFTER_S": "DELIVERY__STALL_AFTER_S",
        "ACCEPTED_CURRENCIES": "ORDERS__ACCEPTED_CURRENCIES",
        "DEFAULT_CURRENCY": "ORDERS__DEFAULT_CURRENCY",
        "MAX_ERROR_MESSAGE_CHARS": "DEAD_LETTER__MAX_ERROR_MESSAGE_CHARS",
    }.items()
}
# difflib's ratio over the part after the prefix. At 0.8 it finds the typos seen (`…GUARANTE`,
# `…BOOTSTRAP_SERVER`, `…LOGLEVEL`, `…TOPIC__INPUT`) and nothing for `…KAFKA__TIMEOUT` or `…FOO`.
SUGGESTION_CUTOFF = 0.8


@dataclass(frozen=True)
class Variable:
    """One setting as the environment names it; `path` is where it sits in `Settings`."""

    name: str
    path: tuple[str, ...]
    secret: bool

    def value(self, dumped: Mapping[str, Any]) -> Any:
        """This setting's value in `Settings.model_dump(mode="json")` (a secret is already masked)."""
        value: Any = dumped
        for part in self.path:
            value = value[part]
        return value


class Given(NamedTuple):
    """A variable that is set: its name as written, and where."""

    name: str
    source: Source


def prefixed(location: tuple[int | str, ...]) -> str:
    """The variable of a setting at `location` in `Settings`: `ORDER_SERVICE_DELIVERY__GUARANTEE`."""
    return ENV_PREFIX + NESTED_DELIMITER.join(str(part).upper() for part in location)


def variables_of(model: type[BaseModel]) -> list[Variable]:
    """Every leaf setting of `model` (the `Settings` class), in declaration order."""
    return list(_walk(model, ()))


def _walk(model: type[BaseModel], path: tuple[str, ...]) -> Iterator[Variable]:
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from _walk(annotation, (*path, name))
            continue
        alias = field.validation_alias if isinstance(field.validation_alias, str) else None
        env = alias or prefixed((*path, name))
        secret = annotation is SecretStr or SecretStr in get_args(annotation)
        yield Variable(env, (*path, name), secret)


def groups_of(model: type[BaseModel]) -> set[str]:
    """Group names, which pydantic-settings also reads as one JSON object (`ORDER_SERVICE_KAFKA`)."""
    return {
        ENV_PREFIX + name.upper()
        for name, field in model.model_fields.items()
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)
    }


def unknown_names(present: Mapping[str, Given], known: list[Variable], groups: set[str]) -> list[str]:
    """One line per prefixed variable that names no setting: its name, and what to do instead."""
    leaves = {v.name for v in known}
    lines = []
    for upper, given in present.items():
        if not upper.startswith(ENV_PREFIX) or upper in leaves or upper in groups:
            continue
        label = given.name if given.source == "environment" else f"{given.name} (in {given.source})"
        if upper in RENAMED:
            lines.append(f"{label}: renamed to {RENAMED[upper]}")
            continue
        hint = suggestion(upper, leaves)
        lines.append(f"{label}: names no setting" + (f"; did you mean {hint}?" if hint else ""))
    return lines


def suggestion(name: str, leaves: set[str]) -> str | None:
    """The known name closest to `name`, if one is close enough to be what was meant; else the one
    known name with the same last part (`ORDER_SERVICE_GUARANTEE`: `…DELIVERY__GUARANTEE`)."""
    tails = {leaf.removeprefix(ENV_PREFIX): leaf for leaf in leaves if leaf.startswith(ENV_PREFIX)}
    tail = name.removeprefix(ENV_PREFIX)
    close = difflib.get_close_matches(tail, tails, n=1, cutoff=SUGGESTION_CUTOFF)
    if close:
        return tails[close[0]]
    last = tail.rsplit(NESTED_DELIMITER, 1)[-1]
    same = [leaf for t, leaf in tails.items() if t.rsplit(NESTED_DELIMITER, 1)[-1] == last]
    return same[0] if len(same) == 1 else None


def present_names(dotenv: Path = Path(DOTENV)) -> dict[str, Given]:
    """Every variable set in the environment or in `dotenv`, by its name in upper case (as
    pydantic-settings matches them). The environment wins, as it does there. No value is kept."""
    found: dict[str, Given] = {}
    if dotenv.is_file():
        found.update({name.upper(): Given(name, ".env") for name in dotenv_values(dotenv)})
    found.update({name.upper(): Given(name, "environment") for name in os.environ})
    return found


def source_of(variable: Variable, present: Mapping[str, Given], dotenv: Path = Path(DOTENV)) -> Source:
    """Where `variable`'s value came from: its own name, its group's JSON object, or the default."""
    if variable.name in present:
        return present[variable.name].source
    group = present.get(ENV_PREFIX + variable.path[0].upper())
    if len(variable.path) == 1 or group is None:
        return "default"
    raw = os.environ[group.name] if group.source == "environment" else dotenv_values(dotenv)[group.name]
    try:
        given = json.loads(raw or "{}")
    except ValueError:  # not JSON: the settings themselves have already rejected it
        return "default"
    return group.source if isinstance(given, dict) and variable.path[1] in given else "default"

"""`order-service`'s help, version and usage errors, without Kafka."""

import json
import re
from importlib.metadata import version

import pytest
from typer.core import TyperGroup
from typer.main import get_command
from typer.testing import CliRunner, Result

from order_service.cli import app

WIDE = {"COLUMNS": "200"}  # rich wraps the help at the terminal's width; the assertions need no wrapping


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), env=WIDE)


def flat(text: str) -> str:
    """The help as words: without rich's box drawing, with every run of whitespace one space."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


def command_paths() -> list[tuple[str, ...]]:
    """Every command and group, as the arguments that name it: (), ("produce",), ("dlq", "replay"), ..."""
    paths: list[tuple[str, ...]] = []

    def walk(command: object, path: tuple[str, ...]) -> None:
        paths.append(path)
        if isinstance(command, TyperGroup):
            for name, sub in command.commands.items():
                walk(sub, (*path, name))

    walk(get_command(app), ())
    return paths


def test_the_app_lists_its_commands() -> None:
    result = invoke("--help")

    assert result.exit_code == 0, result.output
    assert {"produce", "tail", "provision", "dlq"} <= set(get_command(app).commands)  # type: ignore[attr-defined]
    for name in ("produce", "tail", "provision", "dlq", "--version", "--help"):
        assert name in result.stdout, result.stdout


OPTIONS = {
    "": {"--version", "--help"},
    "produce": {"--count", "--invalid-every", "--topic", "--seed", "--timeout", "--help"},
    "tail": {"TOPIC", "--from-beginning", "--limit", "--timeout", "--help"},
    "provision": {"--timeout", "--help"},
    "config": {"--json", "--help"},
    "verify": {
        *("--from-offset", "--to-offset", "--since", "--until", "--json", "--allow-duplicates"),
        *("--list", "--timeout", "--effects", "--help"),
    },
    "dlq": {"--help"},
    "dlq list": {"--timeout", "--help"},
    "dlq show": {"--partition", "--offset", "--timeout", "--help"},
    "dlq replay": {
        *("--category", "--error-type", "--since", "--until", "--from-offset", "--to-offset"),
        *("--dry-run", "--rate", "--force", "--timeout", "--help"),
    },
}


def test_the_commands_and_their_options() -> None:
    def options(path: tuple[str, ...]) -> set[str]:
        command = get_command(app)
        for name in path:
            command = command.commands[name]  # type: ignore[attr-defined]
        ctx = command.make_context("order-service", ["--help"], resilient_parsing=True)
        return {
            option if option.startswith("-") else option.upper()
            for param in command.get_params(ctx)
            for option in param.opts
        }

    assert {" ".join(path): options(path) for path in command_paths()} == OPTIONS


@pytest.mark.parametrize("path", command_paths(), ids=lambda path: " ".join(path) or "order-service")
def test_help_lists_every_option_with_its_help_text(path: tuple[str, ...]) -> None:
    command = get_command(app)
    for name in path:
        command = command.commands[name]  # type: ignore[attr-defined]

    result = invoke(*path, "--help")

    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    shown = flat(result.stdout)
    assert command.help, f"{path}: no help text"
    assert flat(command.help.split("\n\n")[0]) in shown
    for param in command.params:
        helped = getattr(param, "help", None)
        assert helped, f"{path}: {param.name} has no help text"
        for option in getattr(param, "opts", []):
            if option.startswith("-"):
                assert option in shown, f"{option} missing from: {shown}"
        assert flat(helped) in shown, f"the help of {param.name} missing from: {shown}"
    if isinstance(command, TyperGroup):
        for name, sub in command.commands.items():
            assert name in shown
            assert sub.help
            assert flat(sub.help.split("\n\n")[0]) in shown


def test_timeouts_say_what_they_bound_and_their_default() -> None:
    for path in (
        ("produce",),
        ("tail",),
        ("provision",),
        ("dlq", "list"),
        ("dlq", "show"),
        ("dlq", "replay"),
    ):
        shown = flat(invoke(*path, "--help").stdout)
        assert "--timeout SECONDS" in shown, shown
        assert "when Kafka does not answer in time, exit 1 [default: 30.0]" in shown, shown


def test_version() -> None:
    result = invoke("--version")

    assert result.exit_code == 0, result.output
    assert result.stdout == f"order-service {version('order-service')}\n"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("produce", "--bogus"), "order-service produce: error: No such option: --bogus"),
        (("produce", "--timeout", "0"), "must be a positive number of seconds: '0'"),
        (("produce", "--timeout", "soon"), "not a number of seconds: 'soon'"),
        (("produce", "--count", "-1"), "'--count'"),
        (("dlq", "replay", "--since", "yesterday"), "not an ISO-8601 date or time: 'yesterday'"),
        (("dlq", "replay", "--rate", "0"), "must be a positive number of records per second"),
        (("dlq", "show", "--offset", "x"), "'--offset'"),
        (("dlq", "nope"), "order-service dlq: error: No such command 'nope'."),
        (("tail",), "order-service tail: error: Missing argument 'TOPIC'."),
        (("bogus",), "order-service: error: No such command 'bogus'."),
        (("verify", "--bogus"), "order-service verify: error: No such option: --bogus"),
        (("verify", "--since", "yesterday"), "not an ISO-8601 date or time: 'yesterday'"),
        (("verify", "--timeout", "0"), "must be a positive number of seconds: '0'"),
        (("verify", "--from-offset", "-1"), "'--from-offset'"),
    ],
    ids=" ".join,
)
def test_a_bad_option_exits_2_in_one_line(args: tuple[str, ...], says: str) -> None:
    result = invoke(*args)

    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("order-service"), lines
    assert says in lines[0], lines
    assert re.search(r"\(see order-service( [a-z]+)* --help\)$", lines[0]), lines
    assert "Traceback" not in result.output


def test_no_command_shows_the_help() -> None:
    result = invoke()

    assert result.exit_code == 2
    assert "Commands" in result.stdout


def test_verify_says_its_exit_status_and_that_its_timeout_exits_2() -> None:
    shown = flat(invoke("verify", "--help").stdout)

    assert "Exit status: 0 clean, 1 violations found, 2 could not check." in shown, shown
    assert "then exit 2 [default: 30.0]" in shown, shown


def test_verify_fails_in_one_line_when_its_options_contradict_each_other() -> None:
    result = invoke("verify", "--json", "--from-offset", "5", "--to-offset", "2")

    assert result.exit_code == 2, result.output
    assert json.loads(result.stdout) == {
        "result": "error",
        "exit_code": 2,
        "error": "--from-offset is after --to-offset",
    }
    assert result.stderr == "order-service verify: cannot check: --from-offset is after --to-offset\n"

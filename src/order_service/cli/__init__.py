"""`order-service`: produce sample orders, tail a topic, provision topics, inspect dead letters.

The app is typer's; each command, or group of commands, is a module of this package:

    produce     produce.py     send sample orders, with a progress bar
    tail        tail.py        print a topic's records
    provision   provision.py   create the service's topics
    config      config.py      the effective settings and where each came from, secrets masked
    dlq         dlq.py         list | show | replay dead letters (its Kafka work: dlq_kafka.py)
    verify      verify/        every input has exactly one outcome (what it prints: verify/output.py)

Shared: `common` (--timeout, dates, running a command, one-line failures), `reads` (reading a topic
to its end offsets), `progress` (the rich bar), `samples`. Bounded Kafka calls and reading topics
are the library's toolkit (kafka_delivery.tools).
"""

from collections.abc import Sequence
from importlib.metadata import version
from typing import Annotated

import typer

from order_service.cli import config, dlq, produce, provision, tail, verify
from order_service.cli.common import PROG, OneLineErrors

app = typer.Typer(
    name=PROG,
    cls=OneLineErrors,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,  # expected failures are one line; the others a plain traceback
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"{PROG} {version('order-service')}")
        raise typer.Exit()


@app.callback()
def _root(
    _version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="print the version and exit"),
    ] = False,
) -> None:
    """Produce sample orders, tail a topic, provision topics, inspect and re-drive dead letters.

    Commands that talk to Kafka take --timeout SECONDS, and settings from ORDER_SERVICE_* variables.
    """


app.command("produce")(produce.command)
app.command("tail")(tail.command)
app.command("provision")(provision.command)
app.command("config")(config.command)
app.add_typer(dlq.app)


app.command("verify", epilog=verify.EPILOG)(verify.command)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the `order-service` command; exits with the command's status."""
    app(args=argv, prog_name=PROG)

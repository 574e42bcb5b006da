"""What every command shares: `--timeout`, running a command's Kafka work, and failing in one line.

Expected failures (bad options, settings that do not load, Kafka away, a missing topic) print one
line on stderr, `order-service: ...`, and exit non-zero: 2 for usage errors, 1 for the others.
Anything else is a bug and keeps its traceback.
"""

import asyncio
import logging
import math
import sys
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime
from typing import Any, NoReturn

import typer
from aiokafka.errors import KafkaError

# Typer vendors click (since 0.26) and exports only some of its exceptions.
from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError
from typer.core import TyperGroup

from kafka_delivery.errors import KafkaDeliveryError, KafkaUnreachable, MissingTopicsError
from kafka_delivery.logs import tame_aiokafka
from order_service.adapters.connection import client_kwargs
from order_service.errors import ConfigurationError
from order_service.settings import Settings, load_settings

PROG = "order-service"


class CommandFailed(Exception):
    """An expected failure, such as no record at the offset asked for; the message is the line to print."""


class BadValue(typer.BadParameter):
    """A value an option does not take: a usage error, exit 2."""


def positive(text: str | float, unit: str) -> float:
    """A positive, finite number of `unit`s, or `BadValue`."""
    try:
        value = float(text)
    except ValueError:
        raise BadValue(f"not a number of {unit}: {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise BadValue(f"must be a positive number of {unit}: {text!r}")
    return value


def seconds(text: str | float) -> float:
    """`--timeout`'s type: a positive, finite number of seconds."""
    return positive(text, "seconds")


def utc_datetime(text: str | datetime) -> datetime:
    """`--since`/`--until`'s type: an ISO-8601 date or date and time; without a timezone, UTC."""
    try:
        value = text if isinstance(text, datetime) else datetime.fromisoformat(text)
    except ValueError:
        raise BadValue(f"not an ISO-8601 date or time: {text!r}") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def timeout_option(bounds: str) -> Any:
    """`--timeout SECONDS`; `bounds` says what it bounds, for the help text."""
    return typer.Option(
        "--timeout",
        parser=seconds,
        metavar="SECONDS",
        help=f"{bounds}; when Kafka does not answer in time, exit 1",
    )


def fail(message: str) -> NoReturn:
    """End the command with `message` as its one line on stderr, and exit 1."""
    typer.echo(f"{PROG}: {' '.join(message.split())}", err=True)
    raise typer.Exit(1)


def configure_logging(settings: Settings) -> None:
    """aiokafka's logs on the terminal only at DEBUG (`tame_aiokafka`): a command fails in one line,
    which still names the cause aiokafka logged."""
    if settings.log_level == "DEBUG":
        logging.basicConfig(level=logging.DEBUG, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        tame_aiokafka(shown_on=logging.getLogger().handlers[0])
    else:
        tame_aiokafka()


def run(work: Callable[[Settings], Coroutine[Any, Any, None]], *, timeout: float) -> None:
    """Load the settings and run `work(settings)`; expected failures end in one line, exit 1.

    `timeout` is the command's `--timeout`, named in the line when Kafka did not answer in time.
    Ctrl-C ends the command quietly (it is how `tail` is stopped).
    """
    try:
        settings = load_settings()
        configure_logging(settings)
        servers = client_kwargs(settings.kafka)["bootstrap_servers"]  # TLS files that do not load fail here
    except ConfigurationError as exc:
        fail(str(exc))
    bootstrap = servers if isinstance(servers, str) else ",".join(servers)
    try:
        asyncio.run(work(settings))
    except KeyboardInterrupt:
        pass
    except KafkaUnreachable as exc:
        fail(f"cannot reach Kafka at {bootstrap} within {timeout:g}s: {exc}")
    except (CommandFailed, MissingTopicsError) as exc:
        fail(f"{exc} (Kafka at {bootstrap})")
    except (
        ConfigurationError,
        KafkaDeliveryError,
    ) as exc:  # missing topics that may not be created, and such
        fail(str(exc))
    except KafkaError as exc:
        fail(f"Kafka at {bootstrap}: {exc}")


def usage_line(error: ClickException) -> str:
    """`order-service dlq replay: error: ... (see order-service dlq replay --help)`."""
    message = " ".join(error.format_message().split())
    ctx = error.ctx if isinstance(error, UsageError) else None
    if ctx is None:
        return f"{PROG}: error: {message}"
    return f"{ctx.command_path}: error: {message} (see {ctx.command_path} --help)"


class OneLineErrors(TyperGroup):
    """The app's command group: usage errors in one line (`usage_line`), not a rich panel; exit 2."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        except NoArgsIsHelpError as exc:  # the help is shown already, or is the message
            if exc.format_message().strip():
                typer.echo(exc.format_message(), err=True)
            sys.exit(exc.exit_code)
        except ClickException as exc:
            typer.echo(usage_line(exc), err=True)
            sys.exit(exc.exit_code)
        except typer.Abort:
            typer.echo(f"{PROG}: aborted", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)

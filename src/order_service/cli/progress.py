"""A progress bar for long commands (produce, dlq replay): rich, on stderr, with rate and ETA.

On a terminal the bar is redrawn in place; when stderr is not a terminal (a pipe, a file, CI logs)
rich prints it once, as it stands at the end.
"""

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
)
from rich.table import Column
from rich.text import Text


class RateColumn(ProgressColumn):
    """Records per second, over rich's recent samples."""

    def __init__(self, unit: str) -> None:
        super().__init__(table_column=Column(no_wrap=True))
        self.unit = unit

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        text = "?" if speed is None else f"{speed:,.0f}"
        return Text(f"{text} {self.unit}/s", style="progress.data.speed")


class EtaColumn(ProgressColumn):
    """`ETA 0:01:05` while running, `took 0:02:10` once finished."""

    def __init__(self) -> None:
        super().__init__(table_column=Column(no_wrap=True))

    def render(self, task: Task) -> Text:
        if task.finished:
            return Text(f"took {_clock(task.finished_time)}", style="progress.elapsed")
        return Text(f"ETA {_clock(task.time_remaining)}", style="progress.remaining")


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "-:--:--"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}"


def _nothing(steps: int = 1) -> None:
    pass


@contextmanager
def progress_bar(total: int, label: str, *, unit: str = "records") -> Iterator[Callable[[int], None]]:
    """A bar for `total` steps; yields `advance(steps)`. The bar ends, on its own line, with the block.

    Nothing to do, no bar.
    """
    if total <= 0:
        yield _nothing
        return
    console = Console(stderr=True)
    columns = (
        # No wrapping: a narrow terminal cuts the label short rather than drawing the bar on two lines.
        TextColumn(
            "{task.description}",
            style="progress.description",
            markup=False,
            table_column=Column(no_wrap=True, overflow="ellipsis"),
        ),
        BarColumn(bar_width=20),
        MofNCompleteColumn(table_column=Column(no_wrap=True)),
        TaskProgressColumn(),
        RateColumn(unit),
        EtaColumn(),
    )
    # Lines printed on stdout meanwhile go above the bar, unless stdout is not the terminal.
    with Progress(*columns, console=console, redirect_stdout=sys.stdout.isatty()) as progress:
        task = progress.add_task(label, total=total)

        def advance(steps: int = 1) -> None:
            progress.advance(task, steps)

        yield advance

"""A one-line progress bar for the command line."""

import sys


class Progress:
    """A one-line progress bar on stderr."""

    def __init__(self, total: int, label: str) -> None:
        self.total, self.label, self.done = total, label, 0
        self._open = False  # a bar is drawn and its line not ended yet

    def advance(self, step: int = 1) -> None:
        self.done += step
        if self.done == self.total or self.done % max(1, self.total // 100) == 0:
            filled = 30 * self.done // max(1, self.total)
            sys.stderr.write(f"\r{self.label} [{'#' * filled}{'.' * (30 - filled)}] {self.done}/{self.total}")
            self._open = self.done < self.total
            if not self._open:
                sys.stderr.write("\n")
            sys.stderr.flush()

    def close(self) -> None:
        """End the bar's line if it stopped short, so that what follows (an error) gets a line of its own."""
        if self._open:
            sys.stderr.write("\n")
            sys.stderr.flush()
            self._open = False

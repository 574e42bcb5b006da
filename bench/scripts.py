"""One bounded run of a project script (`scripts/kafka`, `scripts/postgres`) from Python.

The bench's cluster and database controllers (bench/kafka/cluster.py, bench/postgres.py) and the
tests' PostgreSQL (tests/support/postgres.py) drive their scripts through this one function, so a
hung script is handled the same everywhere: killed with everything it started, and reported with
its own messages.
"""

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping
from pathlib import Path


def run_script(
    script: Path,
    *args: str,
    env: Mapping[str, str],
    timeout: float,
    error: type[Exception],
    ok: tuple[int, ...] = (0,),
) -> subprocess.CompletedProcess[str]:
    """`script ARGS` with `env` added to this process's environment; its output once it exits with
    a status in `ok`. Raises `error` (with the script's stderr, or stdout when that is empty) on any
    other status, or when it has not finished within `timeout` seconds."""
    command = f"scripts/{script.name} {' '.join(args)}"
    # Own session: on timeout the script's whole process group goes (a hung tool JVM with it);
    # the servers it starts run in sessions of their own and stay.
    process = subprocess.Popen(
        [str(script), *args],
        env={**os.environ, **env},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        try:
            _, err = process.communicate(timeout=10)
        except subprocess.TimeoutExpired:  # something it started holds its output open
            err = "(no output)"
        raise error(f"{command} did not finish within {timeout:.0f}s:\n{err.strip()}") from None
    if process.returncode not in ok:
        said = err.strip() or out.strip()
        raise error(f"{command} failed (exit {process.returncode}):\n{said}")
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)

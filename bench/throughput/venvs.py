"""Bench-only venvs under .cache/bench-venvs: contenders whose packages stay out of uv.lock."""

import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).parents[2]
VENVS = ROOT / ".cache" / "bench-venvs"


class Unavailable(Exception):
    """The contender cannot run here; the message says why."""


def ensure(name: str, requirements: Sequence[str], *, base: Path) -> Path:
    """The python of venv `name` on interpreter `base` with `requirements`; created once, then reused."""
    venv = VENVS / name
    python, marker, wanted = venv / "bin" / "python", venv / "installed.txt", "\n".join(requirements)
    if python.exists() and marker.exists() and marker.read_text() == wanted:
        return python
    uv = shutil.which("uv")
    if uv is None:
        raise Unavailable("uv, which creates the bench venvs, is not on PATH")
    print(f"creating {venv} with {base} and {', '.join(requirements)}", flush=True)
    started = time.monotonic()
    steps = {
        f"uv venv --python {base}": [uv, "venv", "--quiet", "--clear", "--python", str(base), str(venv)],
        f"uv pip install {' '.join(requirements)}": [
            *(uv, "pip", "install", "--quiet", "--python", str(python)),
            *requirements,
        ],
    }
    for step, command in steps.items():
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise Unavailable(f"{step} failed: {last}")
    marker.write_text(wanted)
    print(f"created {venv} in {time.monotonic() - started:.1f} s", flush=True)
    return python

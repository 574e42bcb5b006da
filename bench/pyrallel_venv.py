"""The pyrallel-consumer contender's own venv: it needs Python >= 3.12, and stays out of uv.lock."""

import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).parents[1]
VENV = ROOT / ".cache" / "bench-venvs" / "pyrallel"
REQUIREMENT = "pyrallel-consumer==1.0.0"


class Unavailable(Exception):
    """The contender cannot run here; the message says why."""


def interpreter() -> Path:
    """The newest pyenv 3.12.x."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    found = [p for p in pyenv.glob("versions/3.12.*/bin/python3") if re.fullmatch(r"3\.12\.\d+", p.parts[-3])]
    if not found:
        raise Unavailable(f"no Python 3.12 interpreter in {pyenv}/versions")
    return max(found, key=lambda p: int(p.parts[-3].rsplit(".", 1)[1]))


def ensure() -> Path:
    """The venv's python, with the requirement installed; created once, then reused."""
    python, marker = VENV / "bin" / "python", VENV / "installed.txt"
    if python.exists() and marker.exists() and marker.read_text() == REQUIREMENT:
        return python
    base = interpreter()
    print(f"creating {VENV} with {base} and {REQUIREMENT}", flush=True)
    steps = {
        f"{base} -m venv": [str(base), "-m", "venv", "--clear", str(VENV)],
        f"pip install {REQUIREMENT}": [str(python), "-m", "pip", "install", "--quiet", REQUIREMENT],
    }
    for step, command in steps.items():
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise Unavailable(f"{step} failed: {last}")
    marker.write_text(REQUIREMENT)
    return python

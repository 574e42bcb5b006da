"""The pyrallel-consumer contender's own venv: it needs Python >= 3.12, and stays out of uv.lock."""

import os
import re
from pathlib import Path

from bench.throughput import venvs

REQUIREMENT = "pyrallel-consumer==1.0.0"


def interpreter() -> Path:
    """The newest pyenv 3.12.x."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    found = [p for p in pyenv.glob("versions/3.12.*/bin/python3") if re.fullmatch(r"3\.12\.\d+", p.parts[-3])]
    if not found:
        raise venvs.Unavailable(f"no Python 3.12 interpreter in {pyenv}/versions")
    return max(found, key=lambda p: int(p.parts[-3].rsplit(".", 1)[1]))


def ensure() -> Path:
    """The venv's python, with the requirement installed; created once, then reused."""
    return venvs.ensure("pyrallel", [REQUIREMENT], base=interpreter())

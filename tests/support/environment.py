"""What every unit test starts from: none of the developer's settings."""

import os
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Unit tests see neither the developer's ORDER_SERVICE_* variables nor a .env file."""
    for name in os.environ:
        if name.startswith("ORDER_SERVICE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)

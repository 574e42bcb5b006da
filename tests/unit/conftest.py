import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.engine import Engines


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Unit tests see neither the developer's ORDER_SERVICE_* variables nor a .env file."""
    for name in os.environ:
        if name.startswith("ORDER_SERVICE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(params=["workers", "eager"])
async def engines(request: pytest.FixtureRequest) -> AsyncIterator[Engines]:
    """Delivery engines over in-memory fakes (tests/support/engine.py), closed after the test; every
    test runs with both ways of running records: in worker tasks, and eagerly inside `process`."""
    built = Engines(eager=request.param == "eager")
    yield built
    await built.close()


@pytest.fixture
async def eager_engines() -> AsyncIterator[Engines]:
    """Eager engines only, for what is particular to running records inside `process`."""
    built = Engines(eager=True)
    yield built
    await built.close()

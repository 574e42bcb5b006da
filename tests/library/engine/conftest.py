from collections.abc import AsyncIterator

import pytest

from tests.support.engine import Engines


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

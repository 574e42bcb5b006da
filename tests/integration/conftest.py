from collections.abc import Callable, Iterator

import pytest

from tests.support.kafka import create_topics
from tests.support.service import ServiceProcess, ServiceTopics

PARTITIONS = 6


@pytest.fixture
async def topics(kafka: str) -> ServiceTopics:
    """Fresh topic names and group; the input topic exists, the service provisions the rest."""
    names = ServiceTopics()
    await create_topics(kafka, [names.input], partitions=PARTITIONS)
    return names


@pytest.fixture
def service(kafka: str, topics: ServiceTopics) -> Iterator[Callable[..., ServiceProcess]]:
    """Factory for service instances on this test's topics; all are stopped at the end."""
    started: list[ServiceProcess] = []

    def make(**settings: str) -> ServiceProcess:
        instance = ServiceProcess(kafka, topics, **settings)
        started.append(instance)
        return instance

    yield make
    for instance in started:
        instance.stop()
        print(f"--- service log {instance.log} ---\n{instance.output()[-4000:]}")

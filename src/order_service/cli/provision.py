"""`order-service provision`: create the service's topics if they are missing."""

from typing import Annotated

from kafka_delivery.tools import DEFAULT_TIMEOUT, bounded, deadline
from order_service.adapters.provisioning import provision_topics
from order_service.cli.common import run, timeout_option
from order_service.settings import Settings


async def provision(settings: Settings, *, timeout: float = DEFAULT_TIMEOUT) -> list[str]:
    """The topics created; `MissingTopicsError` naming those missing when creating them is disabled."""
    async with bounded("provisioning topics", deadline(timeout)):
        return await provision_topics(settings)


def command(
    timeout: Annotated[
        float,
        timeout_option("seconds for everything: connect, list the topics and create the missing ones"),
    ] = DEFAULT_TIMEOUT,
) -> None:
    """Create the service's topics if they are missing (ORDER_SERVICE_TOPICS__*)."""

    async def work(settings: Settings) -> None:
        created = await provision(settings, timeout=timeout)
        print(f"created topics: {', '.join(created)}" if created else "all topics exist")

    run(work, timeout=timeout)

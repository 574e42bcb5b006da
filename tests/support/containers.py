"""testcontainers helpers."""

from testcontainers.core.container import DockerContainer


def publish_on_loopback(container: DockerContainer, container_port: int, host_port: int) -> DockerContainer:
    """Publish on 127.0.0.1 only; with_bind_ports() of testcontainers 4 cannot name an address."""
    # testcontainers types the value as a port number; docker-py also takes an (address, port) pair.
    container.ports[f"{container_port}/tcp"] = ("127.0.0.1", host_port)  # type: ignore[assignment]
    return container

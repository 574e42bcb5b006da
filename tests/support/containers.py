"""testcontainers helpers."""

from testcontainers.core.container import DockerContainer


def publish_on_loopback(container: DockerContainer, container_port: int, host_port: int) -> DockerContainer:
    """Publish on 127.0.0.1 only; with_bind_ports() of testcontainers 4 cannot name an address."""
    container.ports[f"{container_port}/tcp"] = ("127.0.0.1", host_port)
    return container

"""The service's unit tests: settings, the use case, adapters and the CLI, without a broker."""

from tests.support.environment import clean_environment

__all__ = ["clean_environment"]

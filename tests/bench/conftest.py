"""Unit tests of the benchmark's and chaos run's own logic, without a broker."""

from tests.support.environment import clean_environment

__all__ = ["clean_environment"]

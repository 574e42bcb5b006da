"""The library's unit tests: in-memory fakes of aiokafka (tests/support/fakes.py), no broker."""

from tests.support.environment import clean_environment

__all__ = ["clean_environment"]

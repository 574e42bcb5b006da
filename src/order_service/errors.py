"""The service's own errors."""


class ConfigurationError(Exception):
    """The service cannot reach a working state: the message is the one line an operator reads,
    naming the setting (an ORDER_SERVICE_... variable) at fault where one is."""

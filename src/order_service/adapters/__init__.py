"""Adapters: the Kafka connection and its security, topic provisioning, observability, logs,
HTTP, and the process lifecycle."""

"""Order processing service on FastStream and Kafka."""

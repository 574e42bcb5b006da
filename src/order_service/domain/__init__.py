"""Order domain: events and rules, with no knowledge of Kafka."""

"""The chaos harness's Kafka clients, each call bounded (clients.py): the input topic and the
cluster metadata a scenario aims by (metadata.py), the group's progress that the monitor samples
(progress.py), and the fallback check by order id (reconcile.py).

The shared helpers of both bench programs are bench/kafka/; these serve only the chaos run."""

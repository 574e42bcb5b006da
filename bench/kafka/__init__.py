"""Kafka helpers that both bench programs use, and the tests with them: a local multi-node cluster
(`scripts/kafka` from Python) and the committed and end offsets of a topic."""

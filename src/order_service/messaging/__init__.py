"""Reusable Kafka delivery machinery: batches, commits, dead letters, topics.

Nothing here knows about orders; another service can lift this package as it is.
"""

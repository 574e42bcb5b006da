"""The FastStream glue: fetched batches reach the engine as raw aiokafka records."""

from kafka_delivery.faststream.batch import decode_raw_batch, parse_raw_batch

__all__ = ["decode_raw_batch", "parse_raw_batch"]

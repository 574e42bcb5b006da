"""Order records for tests, and views of what came out."""

import json
import random
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from order_service.cli.samples import encode, sample_order

Record = tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]


def valid_orders(count: int, *, prefix: str, seed: int = 7) -> list[Record]:
    rng = random.Random(seed)
    records: list[Record] = []
    for i in range(count):
        order = sample_order(i, rng, prefix=prefix)
        records.append((str(order["order_id"]).encode(), encode(order), []))
    return records


def keys(records: Iterable[Record]) -> list[str]:
    """The records' keys as text; every record given here has one."""
    texts = []
    for key, _, _ in records:
        assert key is not None
        texts.append(key.decode())
    return texts


def order_ids(records: Iterable[Any]) -> list[str]:
    return [json.loads(r.value)["order_id"] for r in records]


def ids_by_partition(records: Iterable[Any]) -> dict[int, list[str]]:
    by_partition: dict[int, list[str]] = defaultdict(list)
    for record in records:
        by_partition[record.partition].append(json.loads(record.value)["order_id"])
    return dict(by_partition)

"""order-service's work for the peer frameworks: validate the order, apply the rules, encode the outcome.

Imports only the domain (pydantic), so a peer's own venv runs it with PYTHONPATH=src.
"""

from pydantic import ValidationError

from order_service.domain.decoding import decode_order
from order_service.domain.rules import OrderPolicy, process_order

POLICY = OrderPolicy()


def outcome(value: bytes | None) -> tuple[bytes, bytes] | None:
    """The order id and the JSON OrderProcessed of one record; None when the record is malformed."""
    try:
        order = decode_order(value or b"")
    except ValidationError:
        return None
    processed = process_order(order, POLICY)
    return processed.order_id.encode(), processed.model_dump_json().encode()

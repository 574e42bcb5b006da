"""The header names are a wire contract: each documented table lists exactly the constants of its group.

Code and tests use the constants, so a changed value would pass everywhere else; the documents are
what readers outside this repository rely on.
"""

import re
from pathlib import Path

from kafka_delivery import headers

DOCS = Path(__file__).parents[2] / "docs"


def documented(document: str, prefix: str) -> set[str]:
    """The header names in the first column of a document's tables that start with `prefix`."""
    text = (DOCS / document).read_text()
    return {
        name for name in re.findall(r"^\| `([\w.]+)` \|", text, flags=re.MULTILINE) if name.startswith(prefix)
    }


def constants(prefix: str) -> set[str]:
    values = {getattr(headers, name) for name in dir(headers) if name.isupper()}
    return {value for value in values if value.startswith(prefix) and value != prefix}


def test_the_envelope_document_lists_exactly_the_envelope_headers() -> None:
    assert documented("dead-letter-envelope.md", "dlq.") == constants("dlq.") - {headers.DLQ_REPLAYED_FROM}


def test_the_provenance_table_lists_exactly_the_input_headers() -> None:
    assert documented("delivery-guarantees.md", "input.") == constants("input.")


def test_the_retry_topic_headers_keep_their_names() -> None:
    assert constants(headers.RETRY_PREFIX) == {
        "retry.attempts",
        "retry.due.at",
        "retry.original.topic",
        "retry.original.partition",
        "retry.original.offset",
        "retry.original.timestamp",
    }


def test_re_drive_marks_a_record_with_a_name_under_the_envelope_prefix() -> None:
    assert (headers.DLQ_PREFIX, headers.DLQ_REPLAYED_FROM) == ("dlq.", "dlq.replayed.from")

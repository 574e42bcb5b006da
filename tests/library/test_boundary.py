"""kafka_delivery is a library: it knows nothing of orders, of the service or of its settings.

import-linter (`make lint`) checks the imports; this checks what no import shows, the text.
"""

import re
from pathlib import Path

import kafka_delivery

LIBRARY = Path(kafka_delivery.__file__).parent
# The service's names, its variables, its events, and orders as the things processed.
SERVICE_WORDS = re.compile(
    r"order[_-]service|ORDER_SERVICE_|OrderCreated|OrderProcessed|\borders\b|\ban order\b"
)


def test_no_module_of_the_library_names_orders_the_service_or_its_settings() -> None:
    found = [
        f"{path.relative_to(LIBRARY)}:{number}: {line.strip()}"
        for path in sorted(LIBRARY.rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if SERVICE_WORDS.search(line)
    ]
    assert found == []


def test_the_pattern_finds_what_it_is_for() -> None:
    for line in (
        "from order_service.settings import Settings",
        "ORDER_SERVICE_DELIVERY__GUARANTEE",
        "an order's",
    ):
        assert SERVICE_WORDS.search(line)
    for line in ("records in offset order", "key order per partition", "OutOfOrder"):
        assert not SERVICE_WORDS.search(line)

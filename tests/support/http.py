"""The service's HTTP endpoints as a test reads them: metrics and health."""

import json
import urllib.error
import urllib.request
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

Metrics = dict[str, list[tuple[str, dict[str, str], float]]]


def scrape(port: int) -> Metrics:
    """Metric families by name; empty while the server is not up yet."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return {}
    return {
        family.name: [(s.name, s.labels, s.value) for s in family.samples]
        for family in text_string_to_metric_families(text)
    }


def total(metrics: Metrics, family: str, sample: str, **labels: str) -> float:
    return sum(
        value
        for name, sample_labels, value in metrics.get(family, [])
        if name == sample and all(sample_labels.get(k) == v for k, v in labels.items())
    )


def health(port: int, path: str = "/health/ready") -> tuple[int, dict[str, Any]]:
    """Status and JSON body; (0, {}) while nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return int(response.status), json.loads(response.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read() or b"{}")
    except OSError:
        return 0, {}

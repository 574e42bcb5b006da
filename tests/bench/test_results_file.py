"""The results file and the docs made from it: a re-render from the file gives the same docs."""

import json
from pathlib import Path

from bench.throughput.measure import Results, Run
from bench.throughput.report.results import END, PAGE, START, read_results, render_docs, write_results

# Figures as a run measures them, with more decimals than the file keeps (one): the service's
# framework overhead is 21.24 - 8.66 = 12.58 µs measured, 21.2 - 8.7 = 12.5 as stored.
MEASURED = [
    Run("order-service-alo", 200_000, 45_096.4, 4_517.0, 5_340.0, 119.3, [45_788.2, 44_043.9], 21.24),
    Run("order-service-eos", 200_000, 36_596.52, 5_270.0, 6_353.0, 133.1, [37_216.0, 36_596.52], 24.46),
    Run("confluent-loop-alo", 200_000, 77_882.3, 3_450.0, 3_967.0, 113.0, [77_882.3, 73_828.1], 12.04),
    Run("domain-work", 200_000, 115_559.9, None, None, None, [121_091.0, 115_559.9], 8.66),
    Run("order-service-alo-half-load", 200_000, 22_571.46, 4.0, 26.5, 74.84, None, 32.66),
]


def test_the_docs_written_with_the_results_are_those_rendered_again_from_the_file(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / PAGE).write_text(f"# Benchmarks\n\n{START}\n{END}\n\nNarrative.\n")

    results = Results(runs=list(MEASURED))
    write_results(results, 200_000, out_dir=tmp_path / "results", docs=True, docs_dir=docs)
    written = {path.name: path.read_bytes() for path in docs.iterdir()}
    stored = json.loads((tmp_path / "results" / "latest.json").read_text())
    render_docs(read_results(stored), stored["machine"], docs)
    again = {path.name: path.read_bytes() for path in docs.iterdir()}

    assert sorted(written) == [PAGE, "benchmarks.png"]
    page = written[PAGE].decode()
    assert "| order-service-alo | 200,000 | 45,096 | 4,517 | 5,340 | 119 | 21.2 | 12.5 |" in page, page
    assert "Narrative." in page
    assert again == written

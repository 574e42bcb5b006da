"""`python -m bench.throughput.report`: docs/benchmarks.md rendered again from bench/results/latest.json."""

import json

from bench.throughput.report.results import ROOT, read_results, render_docs


def main() -> None:
    latest = json.loads((ROOT / "bench" / "results" / "latest.json").read_text())
    render_docs(read_results(latest), latest["machine"])


if __name__ == "__main__":
    main()

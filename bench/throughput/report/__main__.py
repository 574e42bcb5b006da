"""`python -m bench.throughput.report`: docs/benchmarks.md rendered again from bench/results/latest.json."""

import json

from bench.throughput.measure import Results, Run
from bench.throughput.report.results import ROOT, render_docs


def main() -> None:
    latest = json.loads((ROOT / "bench" / "results" / "latest.json").read_text())
    render_docs(
        Results(
            runs=[Run(**r) for r in latest["runs"]],
            io=latest.get("io"),
            peers=latest.get("peers"),
            scale=latest.get("scale_out"),
            effects=latest.get("effects"),
        ),
        latest["machine"],
    )


if __name__ == "__main__":
    main()

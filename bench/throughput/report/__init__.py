"""The benchmark's report: bench/results/*.json, and the tables and charts of docs/benchmarks.md.

`python -m bench.throughput.report` renders docs/benchmarks.md again from bench/results/latest.json.
The CPU-bound table is cpu.py, the I/O-bound one io_bound.py, the effects table effects.py, the
scale-out curve scale.py; results.py writes the JSON and the docs from them.
"""

from bench.throughput.report.results import render_docs, write_results

__all__ = ["render_docs", "write_results"]

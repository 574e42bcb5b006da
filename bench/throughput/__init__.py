"""The throughput benchmark (`make bench`, `python -m bench.throughput`): order-service and its
contenders, each on its own copy of the input, written to bench/results and docs/benchmarks.md.

Nothing is imported here: the contenders under contenders/ run as `bench.throughput.contenders.*`,
the peers and pyrallel in venvs of their own that hold only their framework (bench/throughput/venvs.py)."""

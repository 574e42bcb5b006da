"""The CPU-bound table: the contenders and rounds (runs.py), the peer frameworks in venvs of their
own (peers.py), and Kafka's own Java tools on the same jars (java_runs.py).

Nothing is imported here, as in bench/throughput/__init__.py: each caller imports the module it needs.
"""

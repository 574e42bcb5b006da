"""Chaos (`make chaos`, `python -m bench.chaos`): broker and service faults on a local 3-node cluster
while two service instances work, checked by the verify command; writes docs/reliability.md.

Nothing is imported here: the paced producer runs as `python -m bench.chaos.producer`, a process
of its own, and should not load the harness."""

"""The paced producer of a chaos run: the orders and the producer that sends them at an even pace
(paced.py), the process that runs it (`python -m bench.chaos.producer`, __main__.py), and the
harness's handle on that process (process.py).

Only the producer's own modules are imported here: the process must not load the harness."""

from bench.chaos.producer.paced import Production
from bench.chaos.producer.process import ProducerProcess

__all__ = ["ProducerProcess", "Production"]

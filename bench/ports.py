"""A free TCP port for a server of the bench or the tests, picked from a range of its own.

Never port 0: the kernel would hand out one of the ephemeral ports (32768-60999 here), which any
outgoing connection on the machine may take meanwhile, and the project keeps its servers out of
that range. Each user passes its own range (bench/chaos/service.py, tests/support/service.py,
tests/support/prometheus.py) so that two of them running at once pick from disjoint sets.
"""

import random
import socket


def free_port(ports: range, what: str) -> int:
    """A port of `ports` that nothing on 127.0.0.1 listens on now, picked at random; RuntimeError
    naming `what` when every one is taken. (Free when picked: a server started later may still lose
    it to another process, which the random pick makes unlikely.)"""
    for port in random.sample(ports, len(ports)):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {ports.start}-{ports.stop - 1} for {what}")

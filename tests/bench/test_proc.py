"""CPU from /proc: a contender's own and its children's, whether they still run or have exited."""

import subprocess
import sys

from bench.throughput.harness import reap, start
from bench.throughput.proc import cpu_seconds, tree_cpu_seconds

# Burns about 0.4 CPU seconds in a child it waits for, then starts a second child that burns as
# much and stays alive; says so and waits for its standard input to close.
PARENT = """
import subprocess, sys, time
BURN = "import time\\nend = time.process_time() + 0.4\\nwhile time.process_time() < end: pass"
subprocess.run([sys.executable, "-c", BURN], check=True)
WAIT = "\\nimport sys\\nsys.stdin.read()"
alive = subprocess.Popen([sys.executable, "-c", BURN + WAIT], stdin=subprocess.PIPE)
while True:
    ticks = open(f"/proc/{alive.pid}/stat").read().rsplit(")", 1)[1].split()
    if int(ticks[11]) + int(ticks[12]) >= 35:
        break
    time.sleep(0.05)
print("burnt", flush=True)
sys.stdin.read()
alive.stdin.close()
alive.wait()
"""


def test_a_process_tree_counts_its_exited_and_its_live_children() -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None
        assert parent.stdout.readline() == "burnt\n"

        own, tree = cpu_seconds(parent.pid), tree_cpu_seconds(parent.pid)

        # Both children's 0.4 s (the live one's at least 0.35 s), beyond the parent's own time.
        assert tree - own >= 0.7
    finally:
        parent.communicate("")


def test_the_sampler_records_cpu_that_grows_with_the_time_of_each_sample() -> None:
    burn = "import time\nend = time.process_time() + 0.5\nwhile time.process_time() < end: pass"
    process, sampler = start([sys.executable, "-c", burn])

    peak_mb = reap(process, sampler)

    times, cpu = [t for t, _ in sampler.cpu], [c for _, c in sampler.cpu]
    assert len(sampler.cpu) >= 3
    assert times == sorted(times)
    assert cpu == sorted(cpu)
    assert cpu[-1] - cpu[0] >= 0.3
    assert peak_mb > 0

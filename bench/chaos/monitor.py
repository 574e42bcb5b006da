"""The monitor of a chaos run and what is measured from its samples: the longest stall and the time
to recovery.

It samples the group's committed and the input's end offsets every 0.5 s and each live
instance's readiness every second, in the harness's event loop beside the scenario; the paced
producer runs in a process of its own so that neither starves the other."""

import asyncio
import time
from typing import Final

from bench.chaos.result import Result, Sample
from bench.chaos.run_state import Run

SAMPLE_EVERY_S: Final = 0.5
CAUGHT_UP_S: Final = 5.0  # recovered: nothing older than this uncommitted, every instance ready


async def watch(run: Run) -> None:
    """Offsets every 0.5 s, readiness of the live instances every second, exits nobody asked for."""
    tick = 0
    reported: set[tuple[str, int]] = set()
    while True:
        began = time.monotonic()
        try:
            run.sample(await run.progress.sample())
            if tick % 2 == 0:
                live = [i for i in run.instances if i.alive]
                statuses = await asyncio.gather(*(i.ready() for i in live))
                run.readiness.append((run.now(), {i.name: s for i, s in zip(live, statuses, strict=True)}))
        except Exception as exc:  # a sample lost, not the monitor
            run.event(f"monitor: sample failed: {type(exc).__name__}: {exc}")
        for instance in run.instances:
            if instance.exited_on_its_own and (instance.name, instance.starts) not in reported:
                reported.add((instance.name, instance.starts))
                text = f"instance {instance.name} exited on its own with code {instance.exit_code}"
                run.unexpected_exits.append(f"{text} at +{run.now():.1f}s")
                run.event(text)
        tick += 1
        await asyncio.sleep(max(0.0, SAMPLE_EVERY_S - (time.monotonic() - began)))


async def drain(run: Run, *, timeout: float) -> bool:
    """Until the group's committed offsets equal the input's end offsets, in a sample of the monitor
    taken after this call began."""
    deadline = time.monotonic() + timeout
    seen = len(run.samples)
    while time.monotonic() < deadline:
        fresh = [s.offsets for s in run.samples[seen:] if s.offsets is not None]
        if fresh and fresh[-1].drained:
            run.event(f"drained: {fresh[-1].committed_total} of {fresh[-1].end_total} committed")
            return True
        await asyncio.sleep(0.25)
    latest = run.latest()
    run.event(
        f"NOT drained after {timeout:.0f}s: committed {latest.committed if latest else '?'}, "
        f"end {latest.end if latest else '?'}"
    )
    return False


def measure(run: Run, result: Result) -> None:
    result.longest_stall_s = longest_stall(run.samples)
    result.recovery_s = recovery_time(run)
    if result.recovery_s is not None and run.fault_at is not None and run.last_fault_at != run.fault_at:
        last = (run.last_fault_at or run.fault_at) - run.fault_at
        result.recovery_after_last_s = round(max(0.0, result.recovery_s - last), 1)


def longest_stall(samples: list[Sample]) -> float:
    """The longest stretch in which some partition's committed offset did not move while it had
    input pending (its end offset beyond the committed one); samples that could not be taken
    count as no progress."""
    longest = 0.0
    since: dict[int, float] = {}  # partition -> when its current plateau began, while pending
    last: dict[int, int] = {}
    for sample in samples:
        if sample.offsets is None:
            continue
        for partition, end in sample.offsets.end.items():
            committed = sample.offsets.committed.get(partition, 0)
            began = since.pop(partition, None)
            if partition in last and committed > last[partition]:
                if began is not None:
                    longest = max(longest, sample.at - began)
                if end > committed:
                    since[partition] = sample.at
            elif end > committed:
                since[partition] = sample.at if began is None else began
                longest = max(longest, sample.at - since[partition])
            last[partition] = committed
    return round(longest, 1)


def recovery_time(run: Run) -> float | None:
    """From the first fault action to the moment from which on, to the end of the run, the service
    was caught up (every input older than CAUGHT_UP_S committed, per partition) and every live
    instance answered ready; None when that moment never came."""
    if run.fault_at is None:
        return None
    good = [s for s in run.samples if s.offsets is not None]
    history: list[tuple[float, dict[int, int]]] = [(s.at, s.offsets.end) for s in good if s.offsets]

    def caught_up(sample: Sample) -> bool:
        assert sample.offsets is not None
        earlier = [end for at, end in history if at <= sample.at - CAUGHT_UP_S]
        return not earlier or sample.offsets.reached(earlier[-1])

    last_bad = run.fault_at
    for sample in good:
        if sample.at >= run.fault_at and not caught_up(sample):
            last_bad = max(last_bad, sample.at)
    for at, statuses in run.readiness:
        if at >= run.fault_at and any(code != 200 for code in statuses.values()):
            last_bad = max(last_bad, at)
    after = [s.at for s in good if s.at > last_bad]
    if last_bad == run.fault_at:
        return 0.0
    if not after:
        return None
    return round(after[0] - run.fault_at, 1)

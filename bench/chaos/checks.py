"""The checks at the end of a chaos run: every instance alive and ready (or a manual restart,
counted as a failure), then the verify command with the service's own settings, and our own
reconciliation by order id only when verify cannot check."""

import asyncio
import contextlib
import importlib.util
import json
import subprocess
import sys
from typing import Any, Final

from bench.chaos.kafka.reconcile import reconcile_by_key
from bench.chaos.result import Result
from bench.chaos.run_state import Run
from bench.chaos.service import Instance

READY_TIMEOUT_S: Final = 120.0
FINAL_READY_TIMEOUT_S: Final = 45.0
VERIFY_TIMEOUT_S: Final = 600.0
VERIFY_MODULES: Final = ("order_service.cli.verify", "order_service.verify")


async def check_instances(run: Run, result: Result) -> None:
    """Every instance must run and be ready at the end; what is not gets a manual restart."""
    for instance in run.instances:
        if not instance.alive:
            await manual_restart(run, result, instance, f"{instance.name} exited (code {instance.exit_code})")
        elif not await instance.wait_ready(FINAL_READY_TIMEOUT_S):
            status = await instance.ready()
            await manual_restart(
                run,
                result,
                instance,
                f"{instance.name} not ready {FINAL_READY_TIMEOUT_S:.0f}s (status {status})",
            )
        else:
            run.event(f"instance {instance.name}: alive and ready")
    live = [i for i in run.instances if i.alive]
    statuses = await asyncio.gather(*(i.ready() for i in live))
    run.readiness.append((run.now(), {i.name: s for i, s in zip(live, statuses, strict=True)}))


async def manual_restart(run: Run, result: Result, instance: Instance, reason: str) -> None:
    result.restarts_needed += 1
    result.restart_reasons.append(reason)
    run.event(f"MANUAL RESTART of instance {instance.name}: {reason}")
    instance.note(f"manual restart: {reason}")
    if instance.alive:
        await run.kill_instance(instance)
    await run.restart_instance(instance)
    await instance.wait_ready(READY_TIMEOUT_S)


async def verify(run: Run, result: Result) -> None:
    report: dict[str, Any] | None = None
    for attempt in (1, 2):
        report, note = await asyncio.to_thread(_run_verify, run.env)
        (run.evidence / f"verify-{attempt}.json").write_text(json.dumps(report or {"note": note}, indent=1))
        if report is not None and report.get("result") in ("clean", "violations"):
            break
        run.event(f"verify could not check (attempt {attempt}): {note}")
        report = None
        await asyncio.sleep(5)
    if report is None:
        result.checked_by = "fallback: own reconciliation by order id (the verify command could not check)"
        run.event("checking with our own reconciliation by order id instead")
        report = (
            await reconcile_by_key(run.cluster.bootstrap, run.input, run.output, run.dead_letter)
        ).as_dict()
        (run.evidence / "fallback-check.json").write_text(json.dumps(report, indent=1))
    else:
        result.checked_by = f"`python -m {verify_module()} --json`"
    counts = report["counts"]
    read = report.get("records_read", {})
    result.verify_result = str(report.get("result"))
    result.inputs = int(counts["inputs"])
    result.processed = int(counts["processed"])
    result.dead_lettered = int(counts["dead_lettered"])
    result.outcome_records = int(read.get("output", 0)) + int(read.get("dead_letter", 0))
    result.lost = int(counts["missing"])
    result.duplicates = int(counts["duplicates"])
    result.order_violations = int(counts["order_violations"])
    result.unmatched = int(counts.get("unmatched", 0))


def verify_module() -> str:
    """Where the verify command lives: it moved from `order_service.verify` to `order_service.cli.verify`."""
    for name in VERIFY_MODULES:
        with contextlib.suppress(ImportError):
            if importlib.util.find_spec(name) is not None:
                return name
    return VERIFY_MODULES[0]


def _run_verify(env: dict[str, str]) -> tuple[dict[str, Any] | None, str]:
    command = [sys.executable, "-m", verify_module(), "--json", "--timeout", "60", "--list", "20"]
    try:
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=VERIFY_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        return None, f"no answer within {VERIFY_TIMEOUT_S:.0f}s"
    try:
        report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        return None, f"exit {done.returncode}, no JSON: {(done.stderr or done.stdout).strip()[-500:]}"
    return report, f"exit {done.returncode}: {report.get('error', report.get('result'))}"

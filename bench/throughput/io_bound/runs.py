"""The I/O-bound table: each order awaits a simulated call of 0, 1, 10 or 100 ms; 1,000 keys, 6 partitions."""

from bench.throughput import kafka_io, venvs
from bench.throughput.harness import BIN, SERVICE, SERVICE_ENV, Contender
from bench.throughput.io_bound import pyrallel_venv
from bench.throughput.measure import IoInfo, Run
from bench.throughput.rounds import ROUNDS, Planned, in_rounds

LATENCIES_MS = (0, 1, 10, 100)
KEYS = 1_000
# The cap of order-service `key` at 100 ms, which issue 12 lets that run raise: 5,000 records/s
# for 100 ms each is 500 calls in flight at least. The cap also sets the instance's buffer
# (4 x the cap). One-off runs, 50,000 orders, after the engine's batches (2026-12-06):
# 1,000 (the default) -> 6,208/s, 2,000 -> 5,824/s, 4,000 -> 6,947/s.
KEY_MAX_IN_FLIGHT_100MS = 4_000
# Each run gets about SECONDS of work at the rate expected of it on the 2-core bench machine, in
# records/s at 0, 1, 10 and 100 ms. The full size is for make bench's default record count;
# fewer requested records scale every run down, to at least MIN_RECORDS.
SECONDS = 10
FULL_AT_RECORDS = 200_000
MIN_RECORDS = 100
EXPECTED_RPS = {
    "key": (14_000, 13_000, 13_000, 7_000),
    "partition": (11_000, 3_800, 530, 52),
    "faststream-max-workers": (900, 1_200, 400, 50),
    "pyrallel-key": (1_000, 1_000, 1_000, 1_000),
    "seed-naive": (700, 400, 80, 9),
}
CONTENDERS = tuple(EXPECTED_RPS)
# A smaller request than this is the CI smoke run (make bench-smoke): the 10 ms row only.
SMOKE_BELOW = 10_000
SMOKE_LATENCIES_MS = (10,)
# The runs that set or miss issue 12's targets (bench/throughput/report/io_bound.py) run in ROUNDS rounds;
# the others once.
TARGET_CELLS = {
    ("key", 10),
    ("partition", 10),
    ("pyrallel-key", 10),
    ("key", 100),
    ("key", 0),
    ("partition", 0),
}


def records_for(name: str, ms: int, requested: int) -> int:
    full = EXPECTED_RPS[name][LATENCIES_MS.index(ms)] * SECONDS
    return max(MIN_RECORDS, min(full, full * requested // FULL_AT_RECORDS))


def io_contender(name: str, ms: int, pyrallel_python: str) -> Contender:
    """Contender `name` with `ms` per order, as run io-<ms>ms-<name>."""
    env = {"BENCH_IO_MS": str(ms)}
    service = {
        **SERVICE_ENV,
        **env,
        "ORDER_SERVICE_PROCESSING__PROCESSOR": "bench.throughput.io_bound.processor:process",
    }
    in_flight = {"ORDER_SERVICE_PROCESSING__MAX_IN_FLIGHT": str(KEY_MAX_IN_FLIGHT_100MS)} if ms == 100 else {}
    command, extra = {
        "key": (SERVICE, {**service, "ORDER_SERVICE_PROCESSING__ORDERING": "key", **in_flight}),
        "partition": (SERVICE, {**service, "ORDER_SERVICE_PROCESSING__ORDERING": "partition"}),
        "faststream-max-workers": (
            [str(BIN / "faststream"), "run", "bench.throughput.contenders.faststream_max_workers:app"],
            env,
        ),
        "pyrallel-key": ([pyrallel_python, "-m", "bench.throughput.contenders.pyrallel_key"], env),
        "seed-naive": ([str(BIN / "python"), "-m", "bench.throughput.contenders.seed_naive"], env),
    }[name]
    return Contender(f"io-{ms}ms-{name}", command, extra)


async def benchmark_io(requested: int, names: tuple[str, ...] = CONTENDERS) -> tuple[list[Run], IoInfo]:
    """Each of `names` at each latency; a contender that cannot run here is listed with the reason."""
    not_run: dict[str, str] = {}
    pyrallel_python = ""
    if "pyrallel-key" in names:
        try:
            pyrallel_python = str(pyrallel_venv.ensure())
        except venvs.Unavailable as unavailable:
            not_run["pyrallel-key"] = str(unavailable)
            print(f"pyrallel-key not run: {unavailable}", flush=True)
    smoke = requested < SMOKE_BELOW
    latencies = SMOKE_LATENCIES_MS if smoke else LATENCIES_MS
    planned = [
        Planned(
            io_contender(name, ms, pyrallel_python),
            records_for(name, ms, requested),
            ROUNDS if (name, ms) in TARGET_CELLS and not smoke else 1,
            keys=KEYS,
        )
        for ms in latencies
        for name in names
        if name not in not_run
    ]
    runs = await in_rounds(planned, not_run)
    info = IoInfo(
        latencies_ms=list(latencies),
        keys=KEYS,
        partitions=kafka_io.PARTITIONS,
        key_max_in_flight_100ms=KEY_MAX_IN_FLIGHT_100MS,
        contenders=list(names),
        not_run=not_run,
    )
    return runs, info

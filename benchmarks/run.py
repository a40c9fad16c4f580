"""bulkrunner's benchmark suite: one command, a table of figures, every server on 127.0.0.1.

    python -m benchmarks.run            # the full suite (a few minutes), medians of --repeat runs
    python -m benchmarks.run --smoke    # tiny sizes, one run each: checks the suite still works

Figures are taken from the simulator's own record of arrivals (as the server counts them) and
are ratios within one run where possible, so they say little about the machine and much about
the tool. Nothing here is asserted; CI runs only the smoke mode.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import math
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from io import StringIO
from pathlib import Path

import aiohttp

from benchmarks import budget
from bulkrunner.cli.app import main as cli_main
from bulkrunner.limits.rates import DEFAULT_RATES, ideal_seconds, max_in_window
from bulkrunner.model import Rate
from bulkrunner.simulator import SimulatorConfig, SimulatorState, SimulatorThread

KEY = "benchmark-key"


@dataclass(frozen=True)
class Sizes:
    ceiling_rows: int
    ceiling_rate: Rate
    adaptive_rows: int
    adaptive_server: Rate
    adaptive_client: Rate
    overhead_requests: int
    baseline_rows: int
    baseline_rate: Rate
    large_rows: tuple[int, ...]
    huge_rows: int
    jitter: tuple[JitterCase, ...] = ()
    start_ups: int = 5  # processes started per start-up figure (its median)
    flat_rows: tuple[int, ...] = ()  # the streamed runs scenario's sizes
    accounts: int = 5  # the accounts scenario: accounts, rows each, and each one's limit
    account_rows: int = 100
    account_rate: Rate = Rate(10, 1)  # noqa: RUF009 (a frozen value)
    # the shared budgets' scenarios (``benchmarks.budget``): rows of back to back, of each of
    # the two jobs, of each ledger-cost run; the Retry-After of the server's 429s
    back_rows: int = 20
    job_rows: int = 40
    ledger_rows: int = 10_000
    retry_after: float = 30.0
    lead_rows: int = 100_000  # the leads scenarios (benchmarks/leads.py)
    lead_rate: Rate = Rate(10, 2)  # noqa: RUF009 (a frozen value)
    lead_dry_rows: int = 1_000_000


@dataclass(frozen=True)
class JitterCase:
    """Server and --rate ``rate``, inbound jitter uniform(0, ``spread``) s, and the rate limit's
    429s saying Retry-After ``retry_after`` s."""

    rows: int
    rate: Rate
    spread: float
    retry_after: float
    concurrency: int = 4


FULL = Sizes(
    1000,
    Rate(50, 1),
    150,
    Rate(10, 1),
    Rate(40, 1),
    3000,
    60,
    Rate(10, 2),
    (100_000,),
    1_000_000,
    (JitterCase(120, Rate(10, 2), 0.100, 30), JitterCase(1000, Rate(50, 1), 0.050, 30, 8)),
    flat_rows=(100_000, 1_000_000),
)
SMOKE = Sizes(
    120,
    Rate(100, 1),
    30,
    Rate(20, 1),
    Rate(80, 1),
    150,
    24,
    Rate(20, 1),
    (2_000,),
    0,
    (JitterCase(30, Rate(10, 1), 0.020, 1),),
    start_ups=1,
    flat_rows=(1_000, 3_000),
    accounts=2,
    account_rows=10,
    account_rate=Rate(20, 1),
    back_rows=8,
    job_rows=5,
    ledger_rows=1_500,
    retry_after=1.0,
    lead_rows=8_000,
    lead_rate=Rate(100, 1),
    lead_dry_rows=20_000,
)


def write_plan(path: Path, rows: int, first_id: int = 3_000_000) -> Path:
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["campaign_id", "sending_limit", "stop_lead_settings", "track_settings"])
        for n in range(rows):
            out.writerow([first_id + n, 10 + n % 300, "REPLY_TO_AN_EMAIL", "DONT_EMAIL_OPEN"])
    return path


def run_cli(*argv: str) -> int:
    """The real command line, in-process, its output swallowed."""
    os.environ["SMARTLEAD_API_KEY"] = KEY
    with redirect_stdout(StringIO()), redirect_stderr(StringIO()):
        return cli_main(list(argv))


def arrivals(state: SimulatorState) -> list[float]:
    return sorted(r.arrival for r in state.requests)


def long_run_ratio(times: Sequence[float], rate: Rate) -> float:
    """Arrivals per second after the first window's burst, as a share of the ceiling."""
    whole = (len(times) - 1) // rate.limit * rate.limit
    return whole / (times[whole] - times[0]) / rate.per_second


def alone(rate: Rate) -> list[Rate]:
    """``rate`` and, loose enough never to bind, SmartLead's published windows of the other
    lengths, which a ``--rate`` leaves in force: the limits of a scenario measuring ``rate``
    alone."""
    return [
        rate,
        *(
            Rate(math.ceil(rate.per_second * each.seconds * 10), each.seconds)
            for each in DEFAULT_RATES
            if each.seconds != rate.seconds
        ),
    ]


def rate_flags(rate: Rate) -> list[str]:
    """The ``--rate`` flags of ``alone(rate)``."""
    return [word for each in alone(rate) for word in ("--rate", str(each))]


# --- scenarios ---------------------------------------------------------------------------------


def ceiling(sizes: Sizes, work: Path) -> dict[str, float]:
    rate = sizes.ceiling_rate
    plan = write_plan(work / "ceiling.csv", sizes.ceiling_rows)
    config = SimulatorConfig(api_key=KEY, rates=[rate], latency=0.05)
    with SimulatorThread(config) as sim:
        # The command in a process of its own, as a user runs it: in this process it would share
        # the interpreter lock with the simulator's thread, whose stalls widen the round trips
        # the limiter learns its guard from (0.988 of the ceiling either way at the default
        # 10 ms guard; the learned guard, not the floor, held it there in-process).
        done = subprocess.run(
            [
                *(sys.executable, "-m", "bulkrunner", "run", "--input", str(plan)),
                *("--report", str(work / "ceiling-report.csv"), "--base-url", sim.base_url),
                *(*rate_flags(rate), "--concurrency", "8", "-q"),
            ],
            env={**os.environ, "SMARTLEAD_API_KEY": KEY},
            capture_output=True,
            check=False,
        )
        code = done.returncode
        state = sim.state
    times = arrivals(state)
    return {
        "exit": code,
        "429s": sum(1 for r in state.requests if r.status == 429),
        "max in window": max_in_window(times, rate.seconds),
        "ceiling ratio": long_run_ratio(times, rate),
    }


def jitter(sizes: Sizes, work: Path) -> dict[str, float]:
    """At the server's own limit, with requests reaching its counter after random delays."""
    figures: dict[str, float] = {}
    for case in sizes.jitter:
        rate = case.rate
        name = f"{rate} 0-{case.spread * 1000:g}ms"
        plan = write_plan(work / "jitter.csv", case.rows)
        config = SimulatorConfig(
            api_key=KEY,
            rates=[rate],
            jitter=case.spread,
            jitter_seed=None,
            limit_retry_after=case.retry_after,
        )
        with SimulatorThread(config) as sim:
            code = run_cli(
                "run",
                "--input",
                str(plan),
                "--report",
                str(work / "jitter-report.csv"),
                "--base-url",
                sim.base_url,
                *rate_flags(rate),
                "--concurrency",
                str(case.concurrency),
            )
            state = sim.state
        times = arrivals(state)
        figures[f"{name} exit"] = code
        figures[f"{name} 429s"] = sum(1 for r in state.requests if r.status == 429)
        figures[f"{name} max in window"] = max_in_window(times, rate.seconds)
        figures[f"{name} time / ideal"] = (times[-1] - times[0]) / ideal_seconds(len(times), [rate])
        figures[f"{name} ceiling ratio"] = long_run_ratio(times, rate)
    return figures


def adaptive(sizes: Sizes, work: Path) -> dict[str, float]:
    server, told = sizes.adaptive_server, sizes.adaptive_client
    plan = write_plan(work / "adaptive.csv", sizes.adaptive_rows)
    with SimulatorThread(SimulatorConfig(api_key=KEY, rates=[server])) as sim:
        code = run_cli(
            "run",
            "--input",
            str(plan),
            "--report",
            str(work / "adaptive-report.csv"),
            "--base-url",
            sim.base_url,
            *rate_flags(told),
        )
        state = sim.state
    times = arrivals(state)
    throttled = sum(1 for r in state.requests if r.status == 429)
    applied = len(state.applied)
    return {
        "exit": code,
        "applied share": applied / sizes.adaptive_rows,
        "429 share": throttled / len(times),
        "time / ideal": (times[-1] - times[0]) / ideal_seconds(len(times), [server]),
    }


async def raw_loop(base_url: str, requests: int, concurrency: int) -> None:
    """The least a client can do: N workers posting as fast as answers come back."""
    counter = iter(range(requests))
    url = f"{base_url}/campaigns/{{}}/settings"
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

        async def worker() -> None:
            for n in counter:
                async with session.post(
                    url.format(4_000_000 + n), params={"api_key": KEY}, json={"sending_limit": 10}
                ) as response:
                    await response.read()

        await asyncio.gather(*(worker() for _ in range(concurrency)))


def sending_rate(state: SimulatorState, since: int) -> float:
    times = sorted(r.arrival for r in state.requests[since:])
    return (len(times) - 1) / (times[-1] - times[0])


def overhead(sizes: Sizes, work: Path) -> dict[str, float]:
    count = sizes.overhead_requests
    plan = write_plan(work / "overhead.csv", count)
    with SimulatorThread(SimulatorConfig(api_key=KEY)) as sim:
        start = len(sim.state.requests)
        asyncio.run(raw_loop(sim.base_url, count, 4))
        raw = sending_rate(sim.state, start)
        start = len(sim.state.requests)
        run_cli(
            "run",
            "--input",
            str(plan),
            "--report",
            str(work / "overhead-report.csv"),
            "--base-url",
            sim.base_url,
            *rate_flags(Rate(1_000_000, 1)),
            "--concurrency",
            "4",
        )
        ours = sending_rate(sim.state, start)
    return {"raw req/s": raw, "bulkrunner req/s": ours, "overhead ratio": ours / raw}


def one_at_a_time(sizes: Sizes, work: Path) -> dict[str, float]:
    """For context: a script that sends one request at a time, pacing itself at S/N seconds."""
    rate = sizes.baseline_rate
    plan = write_plan(work / "baseline.csv", sizes.baseline_rows)
    with SimulatorThread(SimulatorConfig(api_key=KEY, rates=[rate])) as sim:
        started = time.monotonic()
        asyncio.run(paced_loop(sim.base_url, sizes.baseline_rows, rate.seconds / rate.limit))
        sequential = time.monotonic() - started
    with SimulatorThread(SimulatorConfig(api_key=KEY, rates=[rate])) as sim:
        started = time.monotonic()
        run_cli(
            "run",
            "--input",
            str(plan),
            "--report",
            str(work / "baseline-report.csv"),
            "--base-url",
            sim.base_url,
            *rate_flags(rate),
        )
        ours = time.monotonic() - started
    return {"one-at-a-time s": sequential, "bulkrunner s": ours, "speed-up": sequential / ours}


async def paced_loop(base_url: str, rows: int, pause: float) -> None:
    async with aiohttp.ClientSession() as session:
        for n in range(rows):
            async with session.post(
                f"{base_url}/campaigns/{5_000_000 + n}/settings",
                params={"api_key": KEY},
                json={"sending_limit": 10},
            ) as answer:
                await answer.read()
            await asyncio.sleep(pause)


def naive_limiter(sizes: Sizes, work: Path) -> dict[str, float]:
    """For context: aiohttp behind aiolimiter.AsyncLimiter(N, S), no retries."""
    from aiolimiter import AsyncLimiter

    rate = sizes.baseline_rate

    async def send(base_url: str) -> None:
        limiter = AsyncLimiter(rate.limit, rate.seconds)
        async with aiohttp.ClientSession() as session:

            async def one(n: int) -> None:
                async with (
                    limiter,
                    session.post(
                        f"{base_url}/campaigns/{6_000_000 + n}/settings",
                        params={"api_key": KEY},
                        json={"sending_limit": 10},
                    ) as answer,
                ):
                    await answer.read()

            await asyncio.gather(*(one(n) for n in range(sizes.baseline_rows)))

    with SimulatorThread(SimulatorConfig(api_key=KEY, rates=[rate])) as sim:
        asyncio.run(send(sim.base_url))
        state = sim.state
    return {
        "max in window": max_in_window(arrivals(state), rate.seconds),
        "429s": sum(1 for r in state.requests if r.status == 429),
        "unapplied": sizes.baseline_rows - len(state.applied),
    }


def large_inputs(sizes: Sizes, work: Path) -> dict[str, float]:
    import numpy as np
    import pandas as pd

    figures: dict[str, float] = {}
    rng = np.random.default_rng(1)

    def frame(n: int) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "campaign_id": np.arange(1_000_000, 1_000_000 + n, dtype="int64"),
                "track_settings": rng.choice(
                    ["", "DONT_EMAIL_OPEN", "DONT_EMAIL_OPEN;DONT_LINK_CLICK", "[]"], n
                ),
                "stop_lead_settings": rng.choice(["REPLY_TO_AN_EMAIL", "OPENED_EMAIL", ""], n),
                "sending_limit": rng.integers(10, 500, n).astype(str),
                "send_as_plain_text": rng.choice(["true", "false", ""], n),
                "follow_up_percentage": rng.integers(0, 101, n).astype(str),
                "unsubscribe_text": rng.choice(["", "Reply STOP to opt out"], n),
            }
        )

    for n in sizes.large_rows:
        data = frame(n)
        for suffix in ("csv", "parquet"):
            path = work / f"large-{n}.{suffix}"
            if suffix == "csv":
                data.to_csv(path, index=False)
            else:
                data.to_parquet(path, index=False)
            label = f"{n // 1000}k {suffix}"
            figures[f"{label} load+validate s"] = measure_child(_LOAD_VALIDATE, path)["seconds"]
            figures[f"{label} dry-run peak MB"] = dry_run_peak(path, work)
    if sizes.huge_rows:  # the smoke mode skips it: the same dry run as above, only bigger
        huge = work / f"huge-{sizes.huge_rows}.parquet"
        frame(sizes.huge_rows).to_parquet(huge, index=False)
        figures[f"{sizes.huge_rows // 1000}k parquet dry-run peak MB"] = dry_run_peak(huge, work)
    return figures


_LOAD_VALIDATE = """
import json, resource, sys, time
from pathlib import Path
from bulkrunner.operations.fields import Vocabulary
from bulkrunner.input.loading import load_input
from bulkrunner.input.validation import validate
started = time.perf_counter()
result = validate(load_input(Path(sys.argv[1])), Vocabulary.DOCUMENTED)
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "rows": result.total}))
"""

_PEAK_OF_CHILD = """
import resource, subprocess, sys
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def measure_child(script: str, path: Path) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", script, str(path)], capture_output=True, text=True, check=True
    )
    result: dict[str, float] = json.loads(done.stdout)
    return result


def dry_run_peak(path: Path, work: Path) -> float:
    """Peak RSS (MB) of a whole `bulkrunner run --dry-run` process."""
    command = [
        sys.executable,
        "-m",
        "bulkrunner",
        "run",
        "--dry-run",
        "--input",
        str(path),
        "--report",
        str(work / f"{path.stem}-dry.csv"),
    ]
    done = subprocess.run(
        [sys.executable, "-c", _PEAK_OF_CHILD, *command],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode not in (0, 1):
        raise RuntimeError(f"dry run of {path} failed: {done.stderr.strip()}")
    return int(done.stdout.strip()) / 1024


def start_up(sizes: Sizes, work: Path) -> dict[str, float]:
    """Wall time of whole `bulkrunner` processes (the median of ``sizes.start_ups``), as a user
    starts them."""
    plan = write_plan(work / "ten.csv", 10)
    commands = {
        "--help s": ["--help"],
        "simulate --help s": ["simulate", "--help"],
        "validate 10 rows s": ["validate", str(plan)],
    }
    # The installed command, run outside the source tree (whose modules, without compiled
    # copies beside them, would be compiled at every start): what a user's shell runs.
    script = Path(sys.executable).parent / "bulkrunner"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "bulkrunner"]
    figures: dict[str, float] = {}
    for label, words in commands.items():
        seconds = []
        for _ in range(sizes.start_ups):
            started = time.perf_counter()
            subprocess.run(
                [*command, *words],
                check=True,
                cwd=work,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            seconds.append(time.perf_counter() - started)
        figures[label] = statistics.median(seconds)
    return figures


def large_runs(sizes: Sizes, work: Path) -> dict[str, float]:
    """Peak RSS of real (not dry) runs against the simulator with no limit in the way, and the
    time of a dry run of a million native-typed Parquet rows (numbers and booleans as such)."""
    import numpy as np
    import pandas as pd

    figures: dict[str, float] = {}
    for n in sizes.large_rows:
        seconds, peak, applied = real_run(work, f"real-{n}", n)
        figures[f"{n // 1000}k csv real-run s"] = seconds
        figures[f"{n // 1000}k csv real-run peak MB"] = peak
        figures[f"{n // 1000}k csv real-run applied"] = applied
    n = sizes.huge_rows
    if not n:  # the smoke mode skips it: the dry run of the large inputs, only bigger
        return figures
    rng = np.random.default_rng(2)
    native = pd.DataFrame(
        {
            "campaign_id": np.arange(1_000_000, 1_000_000 + n, dtype="int64"),
            "track_settings": rng.choice(["", "DONT_EMAIL_OPEN", "DONT_LINK_CLICK"], n),
            "stop_lead_settings": rng.choice(["REPLY_TO_AN_EMAIL", "OPENED_EMAIL"], n),
            "sending_limit": rng.integers(10, 500, n),
            "send_as_plain_text": rng.choice([True, False], n),
            "follow_up_percentage": rng.integers(0, 101, n),
            "min_time_btwn_emails": rng.integers(5, 60, n),
        }
    )
    path = work / f"native-{n}.parquet"
    native.to_parquet(path, index=False)
    del native
    started = time.perf_counter()
    peak = dry_run_peak(path, work)
    figures[f"{n // 1000}k native parquet dry-run s"] = time.perf_counter() - started
    figures[f"{n // 1000}k native parquet dry-run peak MB"] = peak
    return figures


def streamed_runs(sizes: Sizes, work: Path) -> dict[str, float]:
    """Peak RSS of real runs of growing files against the simulator with no limit in the way:
    a run is streamed a batch at a time, so its peak should not grow with the file. (Not run
    by default: the million-row run sends two million requests, half an hour here.)"""
    figures: dict[str, float] = {}
    peaks = []
    for n in sizes.flat_rows:
        seconds, peak, applied = real_run(work, f"flat-{n}", n)
        figures[f"{n:,} rows real-run s"] = seconds
        figures[f"{n:,} rows real-run peak MB"] = peak
        figures[f"{n:,} rows applied"] = applied
        peaks.append(peak)
        for stale in work.glob(f"flat-{n}*"):
            stale.unlink()
    figures["largest / smallest peak"] = peaks[-1] / peaks[0]
    return figures


def real_run(work: Path, name: str, rows: int) -> tuple[float, float, int]:
    """A real run of ``rows`` rows (file ``name``.csv) against the simulator at 1,000,000/1 in
    its own process: its seconds, its peak RSS (MB), and the campaigns the server applied."""
    plan = write_plan(work / f"{name}.csv", rows)
    with SimulatorThread(SimulatorConfig(api_key=KEY)) as sim:
        command = [
            *("run", "--input", str(plan), "--report", str(work / f"{name}-report.csv")),
            *("--base-url", sim.base_url, *rate_flags(Rate(1_000_000, 1)), "--concurrency", "16"),
        ]
        started = time.perf_counter()
        peak = child_peak([sys.executable, "-m", "bulkrunner", *command], KEY)
        return time.perf_counter() - started, peak, len(sim.state.applied)


def child_peak(command: Sequence[str], key: str) -> float:
    """Peak RSS (MB) of the process ``command``, given the API key; it must exit 0."""
    done = subprocess.run(
        [sys.executable, "-c", _PEAK_OF_CHILD, *command],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "SMARTLEAD_API_KEY": key},
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[2:4])} failed: {done.stderr.strip()[-500:]}")
    return int(done.stdout.strip()) / 1024


_SERVERS = """
import asyncio, json, signal, sys
from bulkrunner.model import Rate
from bulkrunner.simulator import Simulator, SimulatorConfig

async def main() -> None:
    rate, keys = Rate.parse(sys.argv[1]), sys.argv[2:]
    sims = [Simulator(SimulatorConfig(api_key=key, rates=[rate])) for key in keys]
    for sim in sims:
        await sim.__aenter__()
    print(json.dumps([sim.base_url for sim in sims]), flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGINT, stop.set)
    await stop.wait()
    print(json.dumps([
        sum(1 for r in sim.state.requests if r.status == 429 and r.fault is None) for sim in sims
    ]), flush=True)
    for sim in sims:
        await sim.__aexit__(None, None, None)

asyncio.run(main())
"""


class ServerProcess:
    """Simulators, one per key, all in one process of their own: the client and the servers
    get a core each (as with one account), and the arrivals the servers record do not wait on
    the client's share of the CPU."""

    def __init__(self, keys: Sequence[str], rate: Rate) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", _SERVERS, str(rate), *keys],
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,  # a Ctrl-C meant for the suite reaches it only by stop()
        )
        assert self.process.stdout is not None
        self.base_urls: list[str] = json.loads(self.process.stdout.readline())

    def stop(self) -> int:
        """Stop them; the 429s their rate limits answered, together."""
        self.process.send_signal(signal.SIGINT)
        out, _ = self.process.communicate(timeout=30)
        return sum(json.loads(out.splitlines()[-1]))


def accounts(sizes: Sizes, work: Path) -> dict[str, float]:
    """N accounts, each on its own server with its own limit, in one run; vs one of them."""
    rate, rows = sizes.account_rate, sizes.account_rows
    limits = json.dumps([str(each) for each in alone(rate)])

    def run(names: list[str], label: str) -> tuple[float, int, int]:
        process = ServerProcess([f"key-{name}" for name in names], rate)
        servers = dict(zip(names, process.base_urls, strict=True))
        table = "".join(
            f'[accounts.{name}]\nkey_env = "BENCH_KEY_{name.upper()}"\nrate = {limits}\n'
            f'base_url = "{base_url}"\n'
            for name, base_url in servers.items()
        )
        (work / f"{label}.toml").write_text(table)
        with (work / f"{label}.csv").open("w", newline="") as handle:
            out = csv.writer(handle)
            out.writerow(["campaign_id", "account", "sending_limit"])
            for number, name in enumerate(names):
                for n in range(rows):
                    out.writerow([7_000_000 + 10_000 * number + n, name, 10 + n % 300])
        env = {**os.environ, **{f"BENCH_KEY_{name.upper()}": f"key-{name}" for name in names}}
        started = time.monotonic()
        done = subprocess.run(
            [
                *(sys.executable, "-m", "bulkrunner", "run", str(work / f"{label}.csv")),
                *("--accounts", str(work / f"{label}.toml")),
                *("--report", str(work / f"{label}.r.csv"), "--quiet"),
            ],
            env=env,
            capture_output=True,
            check=False,
        )
        seconds = time.monotonic() - started
        throttled = process.stop()
        return seconds, throttled, done.returncode

    one, one_429, one_code = run(["solo"], "one-account")
    many, many_429, many_code = run([f"a{n}" for n in range(sizes.accounts)], "accounts")
    return {
        "exit": max(one_code, many_code),
        "1 account s": one,
        f"{sizes.accounts} accounts s": many,
        "time ratio": many / one,
        "429s (1 account)": one_429,
        f"429s ({sizes.accounts} accounts)": many_429,
    }


def back_to_back(sizes: Sizes, work: Path) -> dict[str, float]:
    return budget.back_to_back(sizes.back_rows, sizes.retry_after, work)


def two_jobs(sizes: Sizes, work: Path) -> dict[str, float]:
    return budget.two_jobs(sizes.job_rows, sizes.retry_after, work)


def ledger_cost(sizes: Sizes, work: Path) -> dict[str, float]:
    rate = Rate(1000, 1)
    figures: dict[str, float] = {}
    for mode, (code, times) in budget.ledger_cost(
        sizes.ledger_rows, rate_flags(rate), work
    ).items():
        figures[f"{mode}: exit"] = code
        figures[f"{mode}: ceiling ratio"] = long_run_ratio(times, rate)
    figures["store / no-state"] = (
        figures["store: ceiling ratio"] / figures["no-state: ceiling ratio"]
    )
    return figures


def leads(sizes: Sizes, work: Path) -> dict[str, float]:
    from benchmarks.leads import leads as scenario  # (it imports this module)

    return scenario(sizes, work)


def leads_dry_run(sizes: Sizes, work: Path) -> dict[str, float]:
    from benchmarks.leads import leads_dry_run as scenario

    return scenario(sizes, work)


SCENARIOS: dict[str, Callable[[Sizes, Path], dict[str, float]]] = {
    "ceiling": ceiling,
    "jitter": jitter,
    "back to back": back_to_back,
    "two jobs": two_jobs,
    "ledger cost": ledger_cost,
    "adaptive": adaptive,
    "overhead": overhead,
    "large inputs": large_inputs,
    "large runs": large_runs,
    "streamed runs": streamed_runs,
    "start-up": start_up,
    "accounts": accounts,
    "leads": leads,
    "leads dry run": leads_dry_run,
    "one at a time (context)": one_at_a_time,
    "AsyncLimiter(N, S) (context)": naive_limiter,
}


# long: run only when named with --only (or --smoke); leads: 200 s of 10/2 windows a run
_ASKED_FOR = {"streamed runs", "leads"}


def describe(sizes: Sizes) -> dict[str, str]:
    return {
        "ceiling": f"{sizes.ceiling_rows} rows, server and --rate {sizes.ceiling_rate}, "
        "50 ms latency, concurrency 8",
        "jitter": "; ".join(
            f"{case.rows} rows, server and --rate {case.rate}, each request counted "
            f"0-{case.spread * 1000:g} ms after it reaches the server (uniform), 429s say "
            f"Retry-After {case.retry_after:g}, concurrency {case.concurrency}"
            for case in sizes.jitter
        ),
        "adaptive": f"{sizes.adaptive_rows} rows, server {sizes.adaptive_server}, "
        f"--rate {sizes.adaptive_client}",
        "overhead": f"{sizes.overhead_requests} requests, limits off, zero latency, "
        "concurrency 4, vs a raw aiohttp loop on the same server",
        "back to back": f"export, plan and run --verify of {sizes.back_rows} rows, one process "
        "after another, server 10/2 and 60/60 whose 429s say Retry-After "
        f"{sizes.retry_after:g}, default limits; with the state store, and with --no-state",
        "two jobs": f"two runs of {sizes.job_rows} rows each on one key, started together, "
        f"server 10/2 and 60/60 (Retry-After {sizes.retry_after:g}), default limits",
        "ledger cost": f"{sizes.ledger_rows} rows at --rate 1000/1 on loopback, "
        "concurrency 16, with the state store, then with --no-state",
        "accounts": f"{sizes.accounts} accounts of {sizes.account_rows} rows, each on its own "
        f"server limited to {sizes.account_rate} (the servers in one process of their own), in "
        "one run; vs 1 such account",
        "large inputs": f"{', '.join(f'{n:,}' for n in sizes.large_rows)} rows (CSV, Parquet), "
        + (f"{sizes.huge_rows:,} rows (Parquet); " if sizes.huge_rows else "")
        + "dry runs",
        "large runs": f"{', '.join(f'{n:,}' for n in sizes.large_rows)} rows (CSV), real runs "
        "against the simulator at --rate 1000000/1, concurrency 16"
        + (f"; {sizes.huge_rows:,} native-typed Parquet rows, dry run" if sizes.huge_rows else ""),
        "streamed runs": f"{', '.join(f'{n:,}' for n in sizes.flat_rows)} rows (CSV), real runs "
        "against the simulator at --rate 1000000/1, concurrency 16: peak RSS (only with --only)",
        "start-up": "whole processes, median of 5: --help, simulate --help, validate (10 rows)",
        "leads": f"{sizes.lead_rows:,} leads into 20 campaigns (rows interleaved), the server "
        f"at {sizes.lead_rate} in a process of its own, --rate {sizes.lead_rate}, 100 then 400 "
        "a request (only with --only)",
        "leads dry run": f"{sizes.lead_dry_rows:,} leads from Parquet, --operation leads --dry-run",
        "one at a time (context)": f"{sizes.baseline_rows} rows, server {sizes.baseline_rate}: "
        "sequential requests paced at S/N vs bulkrunner",
        "AsyncLimiter(N, S) (context)": f"{sizes.baseline_rows} rows, server "
        f"{sizes.baseline_rate}, AsyncLimiter({sizes.baseline_rate.limit}, "
        f"{sizes.baseline_rate.seconds:g}), no retries",
    }


def machine() -> str:
    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one run each")
    parser.add_argument("--repeat", type=int, default=3, help="runs per scenario (median)")
    parser.add_argument(
        "--only",
        action="append",
        choices=list(SCENARIOS),
        help="run only this scenario (repeatable)",
    )
    args = parser.parse_args(argv)
    sizes = SMOKE if args.smoke else FULL
    repeat = 1 if args.smoke else args.repeat
    chosen = args.only or [name for name in SCENARIOS if args.smoke or name not in _ASKED_FOR]
    what = describe(sizes)
    print(
        f"bulkrunner benchmarks ({'smoke' if args.smoke else f'median of {repeat}'}) "
        f"on {machine()}\n"
    )
    for name in chosen:
        print(f"- {name}: {what[name]}")
    print("\n| scenario | figure | median | runs |")
    print("| --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory(prefix="bulkrunner-bench-") as tmp:
        for name in chosen:
            runs = [SCENARIOS[name](sizes, Path(tmp)) for _ in range(repeat)]
            for key in runs[0]:
                values = [run[key] for run in runs]
                shown = ", ".join(_fmt(v) for v in values)
                print(
                    f"| {name} | {key} | {_fmt(statistics.median(values))} | {shown} |", flush=True
                )
    return 0


def _fmt(value: float) -> str:
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"


if __name__ == "__main__":
    sys.exit(main())

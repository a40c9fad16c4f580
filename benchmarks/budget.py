"""The scenarios of rate budgets shared through the state store, run by ``benchmarks.run``:

- **back to back**: ``export``, ``plan`` and ``run --verify`` one after another, each a process
  of its own as a user types them, against a server holding SmartLead's 10/2 and 60/60 whose
  429s say Retry-After 30; beside the same three with ``--no-state`` (each starting with an
  empty limiter, as every command did before the store);
- **two jobs**: two runs of different inputs on one key, started together, against the same
  server: both finish, how long their requests took together over the least the limits allow
  for as many;
- **ledger cost**: a run at 1,000 requests/s on loopback (``--rate 1000/1``, the published
  windows named loose), with the state store and with ``--no-state``, one after the other: the
  long-run rate of each as the server saw it (``run.long_run_ratio``), and their ratio.

Each scenario's commands use a state folder of their own (``--state-dir``), made afresh.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bulkrunner.limits.rates import ideal_seconds, max_in_window
from bulkrunner.model import Rate
from bulkrunner.simulator import SimulatorConfig, SimulatorState, SimulatorThread

KEY = "benchmark-key"
SMARTLEAD = (Rate(10, 2), Rate(60, 60))  # the account: 10/2, 60/60, Retry-After 30


def write_rows(path: Path, ids: Sequence[int]) -> Path:
    with path.open("w") as handle:
        handle.write("campaign_id,sending_limit\n")
        handle.writelines(f"{cid},{cid % 300 + 7}\n" for cid in ids)
    return path


def command(*argv: object) -> list[str]:
    return [sys.executable, "-m", "bulkrunner", *map(str, argv)]


def run(argv: list[str]) -> int:
    done = subprocess.run(
        argv,
        env={**os.environ, "SMARTLEAD_API_KEY": KEY},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    return done.returncode


def throttled(state: SimulatorState) -> int:
    return sum(1 for record in state.requests if record.status == 429 and record.fault is None)


def smartlead(campaigns: Sequence[int], retry_after: float) -> SimulatorThread:
    config = SimulatorConfig(
        api_key=KEY, rates=list(SMARTLEAD), limit_retry_after=retry_after, campaigns=set(campaigns)
    )
    return SimulatorThread(config)


def back_to_back(rows: int, retry_after: float, work: Path) -> dict[str, float]:
    ids = list(range(8_100_000, 8_100_000 + rows))
    edited = write_rows(work / "edited.csv", ids)
    figures: dict[str, float] = {}
    for mode, extra in (("store", []), ("no-state", ["--no-state"])):
        state_dir = work / f"back-to-back-{mode}-{time.monotonic_ns()}"
        shared = ["--state-dir", str(state_dir), "-q", *extra]
        with smartlead(ids, retry_after) as sim:
            url = ["--base-url", sim.base_url]
            started = time.monotonic()
            codes = [
                run(
                    command("export", *url, "--output", work / f"e-{mode}.csv", "--force", *shared)
                ),
                run(command("plan", edited, *url, "--report", work / f"p-{mode}.csv", *shared)),
                run(
                    command(
                        "run", edited, *url, "--verify", "--report", work / f"r-{mode}.csv", *shared
                    )
                ),
            ]
            seconds = time.monotonic() - started
            state = sim.state
        arrivals = sorted(record.arrival for record in state.requests)
        figures[f"{mode}: exit"] = max(codes)
        figures[f"{mode}: requests"] = len(arrivals)
        figures[f"{mode}: 429s"] = throttled(state)
        figures[f"{mode}: seconds"] = seconds
        if mode == "store":
            figures["ideal seconds"] = ideal_seconds(len(arrivals), SMARTLEAD)
    return figures


def two_jobs(rows: int, retry_after: float, work: Path) -> dict[str, float]:
    ids = [list(range(8_200_000 + 1000 * n, 8_200_000 + 1000 * n + rows)) for n in range(2)]
    state_dir = work / f"two-jobs-{time.monotonic_ns()}"
    with smartlead([*ids[0], *ids[1]], retry_after) as sim:
        jobs = [
            subprocess.Popen(
                command(
                    *("run", write_rows(work / f"job{n}.csv", ids[n]), "--base-url", sim.base_url),
                    *("--report", work / f"job{n}.r.csv", "--state-dir", state_dir, "-q"),
                ),
                env={**os.environ, "SMARTLEAD_API_KEY": KEY},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for n in range(2)
        ]
        codes = [job.wait() for job in jobs]
        state = sim.state
    arrivals = sorted(record.arrival for record in state.requests)
    return {
        "exit": max(codes),
        "requests": len(arrivals),
        "429s": throttled(state),
        "most in a 2 s window": max_in_window(arrivals, 2.0),
        "time / ideal": (arrivals[-1] - arrivals[0]) / ideal_seconds(len(arrivals), SMARTLEAD),
    }


def ledger_cost(rows: int, rate_flags: list[str], work: Path) -> dict[str, tuple[int, list[float]]]:
    """A run at ``rate_flags`` (1,000/s) with the store, then one without: for each, its exit
    code and the server's arrivals, in order."""
    source = write_rows(work / "ledger-cost.csv", range(8_300_000, 8_300_000 + rows))
    runs: dict[str, tuple[int, list[float]]] = {}
    for mode, extra in (("store", []), ("no-state", ["--no-state"])):
        state_dir = work / f"ledger-cost-{mode}-{time.monotonic_ns()}"
        with SimulatorThread(SimulatorConfig(api_key=KEY)) as sim:
            code = run(
                command(
                    *("run", source, "--base-url", sim.base_url, *rate_flags),
                    *("--concurrency", "16", "--no-skip-unchanged", "--no-backup", "-q"),
                    *("--report", work / f"ledger-cost-{mode}.r.csv", "--state-dir", state_dir),
                    *extra,
                )
            )
            runs[mode] = code, sorted(record.arrival for record in sim.state.requests)
    return runs

"""What the state store costs a run: the shared request ledger, per request, and the change
history of a long run.

    python -m benchmarks.ledger            # the figures (a few minutes)
    python -m benchmarks.ledger --smoke    # tiny sizes: checks it still works

A client process posts to the simulator (in a process of its own, on 127.0.0.1, no limits) as
a run does, over aiohttp, and asks the ledger before each request in one of three ways: not at
all; ``Ledger.claim`` for each request (a transaction each); ``Ledger.reserve`` for the requests
of the next 8 ms (a transaction for each few; at 1,000 requests/s, 8). Figures:

- the time spent in the ledger's calls per request (and per transaction), and the client's CPU
  time per request without the ledger;
- flat out (8 at a time, as fast as answers come): the throughput left to a process whose CPU
  is what limits it, its CPU per request without the ledger over that plus the ledger's time
  (the requests per second measured beside it move with the machine's other load);
- paced at 1,000 requests/s in one process, or 500/s in each of two processes on one account:
  the ledger's time as a share of the time between two requests, and of the client's CPU.

The machine's other load moves the absolute figures; the ratios, taken between modes run one
after another in the same conditions, move less.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.run import KEY, ServerProcess
from bulkrunner.config.folders import account_id
from bulkrunner.model import Rate
from bulkrunner.records.budget import Ledger
from bulkrunner.records.history import ChangeRecord, History
from bulkrunner.records.store import StateStore

ACCOUNT = account_id("http://localhost:8080", KEY)
# Three windows, as a limiter holds SmartLead's, none of them full at the rates measured.
RATES = (Rate(100_000, 1), Rate(1_000_000, 60), Rate(10_000_000, 3600))
LEASE = 0.008  # seconds of requests a reservation asks for
MODES = ("no ledger", "a claim each", "reserving 8 ms ahead")


async def client(job: dict[str, Any]) -> dict[str, float]:
    """Post ``requests`` requests, ``concurrency`` at a time, paced at ``rate``/s (0: flat out),
    asking the ledger as ``mode`` says; the seconds and the CPU seconds it took."""
    requests, rate, mode = job["requests"], job["rate"], job["mode"]
    url = f"{job['base_url']}/campaigns/{{}}/settings"
    most = max(1, math.floor((rate or 1000) * LEASE))
    with StateStore.open(Path(job["folder"])) as store:
        ledger = Ledger(store)
        held, until = 0, -math.inf
        asked = [0.0, 0]  # seconds in the ledger's calls, and calls
        counter = iter(range(requests))
        connector = aiohttp.TCPConnector(limit=job["concurrency"])
        async with aiohttp.ClientSession(connector=connector) as session:
            loop = asyncio.get_running_loop()
            start = loop.time() + 0.05

            async def worker() -> None:
                nonlocal held, until
                for n in counter:
                    if rate:
                        await asyncio.sleep(max(0.0, start + n / rate - loop.time()))
                    now = time.time()
                    before = time.perf_counter()
                    if mode == MODES[1]:
                        assert ledger.claim(ACCOUNT, RATES, now) == 0.0
                        asked[1] += 1
                    elif mode == MODES[2] and (held == 0 or now > until):
                        got = ledger.reserve(ACCOUNT, RATES, now, most=most, until=now + LEASE)
                        held, until = got.granted, got.until
                        asked[1] += 1
                    asked[0] += time.perf_counter() - before
                    held -= 1
                    async with session.post(
                        url.format(5_000_000 + n),
                        params={"api_key": KEY},
                        json={"sending_limit": 7},
                    ) as response:
                        await response.read()

            cpu, began = time.process_time(), time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(job["concurrency"])))
            return {
                "s": time.perf_counter() - began,
                "cpu": time.process_time() - cpu,
                "ledger": asked[0],
                "calls": asked[1],
            }


def clients(job: dict[str, Any], processes: int) -> list[dict[str, float]]:
    """``processes`` clients at once, each doing ``job``."""
    started = [
        subprocess.Popen(
            [sys.executable, "-m", "benchmarks.ledger", "--client", json.dumps(job)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    return [json.loads(process.communicate()[0]) for process in started]


def sending(base_url: str, folder: Path, requests: int, repeat: int) -> list[tuple[str, str, str]]:
    """Each mode flat out and paced, ``repeat`` times, the modes taking turns; medians."""
    cases = {  # label: (processes, requests/s each, concurrency)
        "flat out, 1 process": (1, 0.0, 8),
        "1,000/s, 1 process": (1, 1000.0, 4),
        "500/s each, 2 processes": (2, 500.0, 4),
    }
    found: dict[tuple[str, str], list[dict[str, float]]] = {}
    for _, (label, (processes, rate, concurrency)), mode in itertools.product(
        range(repeat), cases.items(), MODES
    ):
        job: dict[str, Any] = {"base_url": base_url, "folder": str(folder), "mode": mode}
        job |= {"requests": requests, "rate": rate, "concurrency": concurrency}
        found.setdefault((label, mode), []).extend(clients(job, processes))
    rows = []
    for label, (_, rate, _) in cases.items():
        runs = {mode: found[label, mode] for mode in MODES}
        cpu = statistics.median(run["cpu"] / requests * 1e6 for run in runs[MODES[0]])
        rows.append((label, f"{MODES[0]}: client CPU µs per request", f"{cpu:.0f}"))
        for mode in MODES[1:]:
            asking = statistics.median(run["ledger"] / requests * 1e6 for run in runs[mode])
            calls = statistics.median(run["calls"] for run in runs[mode])
            shown = f"{asking:.1f} µs ({asking * requests / calls:.0f} µs a transaction)"
            rows.append((label, f"{mode}: in the ledger, per request", shown))
            if rate:
                shown = f"{asking * rate / 1e6:.1%} of the time; {asking / cpu:.1%} of the CPU"
                rows.append((label, f"{mode}: share", shown))
            else:
                speed = statistics.median(requests / run["s"] for run in runs[mode])
                plain = statistics.median(requests / run["s"] for run in runs[MODES[0]])
                shown = f"{cpu / (cpu + asking):.3f} by CPU ({speed:.0f} vs {plain:.0f}/s measured)"
                rows.append((label, f"{mode}: throughput left", shown))
    return rows


def back_to_back(folder: Path, requests: int) -> list[tuple[str, str, str]]:
    """The floor: claims (and reservations of 8) one straight after another, nothing between."""
    rows = []
    with StateStore.open(folder) as store:
        ledger = Ledger(store)
        for most in (1, 8):
            now = time.time()
            before = time.perf_counter()
            for _ in range(requests // most):
                now += 0.001
                assert ledger.reserve(ACCOUNT, RATES, now, most=most, until=now).granted == most
            spent = (time.perf_counter() - before) / (requests // most * most) * 1e6
            what = "a claim each" if most == 1 else "reserving 8 at once"
            rows.append(("back to back, no requests", f"{what}: µs per request", f"{spent:.1f}"))
    return rows


def history(folder: Path, rows: int) -> list[tuple[str, str, str]]:
    """A run of ``rows`` rows recording its changes in batches of 5,000, then a campaign's."""
    with StateStore.open(folder) as store:
        runs = History(store)
        run = runs.start_run("run", time.time())
        before = time.perf_counter()
        for first in range(0, rows, 5_000):
            runs.record_changes(
                ChangeRecord(run, time.time(), ACCOUNT, 1_000_000 + n, "sending_limit", n, n + 1)
                for n in range(first, min(rows, first + 5_000))
            )
        recorded = time.perf_counter() - before
        before = time.perf_counter()
        for n in range(100):
            runs.changes(1_000_000 + n * (rows // 100))
        asked = (time.perf_counter() - before) / 100
    label = f"history, {rows:,} changes"
    return [
        (label, "recording them, s (µs a change)", f"{recorded:.2f} ({recorded / rows * 1e6:.1f})"),
        (label, "one campaign's changes, ms", f"{asked * 1e3:.3f}"),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ledger", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, once")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each case (median)")
    parser.add_argument("--client", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.client:
        print(json.dumps(asyncio.run(client(json.loads(args.client)))))
        return 0
    requests, repeat, rows = (200, 1, 2_000) if args.smoke else (3_000, args.repeat, 100_000)
    print("| scenario | figure | value |")
    print("| --- | --- | --- |")
    server = ServerProcess([KEY], Rate(1_000_000, 1))
    try:
        with tempfile.TemporaryDirectory(prefix="bulkrunner-ledger-") as tmp:
            found = back_to_back(Path(tmp) / "floor", 10 * requests)
            found += sending(server.base_urls[0], Path(tmp) / "state", requests, repeat)
            found += history(Path(tmp) / "history", rows)
            for row in found:
                print(f"| {' | '.join(row)} |", flush=True)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

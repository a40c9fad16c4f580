"""The leads operation's benchmarks (issue 22 §5), scenarios of ``benchmarks.run``:

- **leads**: 100,000 leads into 20 campaigns (their rows interleaved, as a spreadsheet may have
  them) through the simulator at 10/2 in a process of its own, 100 a request, then 400 a
  request: the share of the ceiling the arrivals reach, the 429s, the run's peak memory, and
  the requests of the second run over the first's.
- **leads dry run**: a dry run of 1,000,000 leads from Parquet: its time and peak memory.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.run import _PEAK_OF_CHILD, KEY, Sizes, long_run_ratio, rate_flags
from bulkrunner.model import Rate

LEAD_CAMPAIGNS = 20
FIRST_CAMPAIGN = 8_000_001

_SERVER = """
import asyncio, json, signal, sys
from bulkrunner.model import Rate
from bulkrunner.simulator import Simulator, SimulatorConfig

async def main() -> None:
    sim = Simulator(SimulatorConfig(api_key=sys.argv[2], rates=[Rate.parse(sys.argv[1])]))
    await sim.__aenter__()
    print(json.dumps(sim.base_url), flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGINT, stop.set)
    await stop.wait()
    requests = sim.state.requests
    uploads = sim.state.writes("leads")
    print(json.dumps({
        "arrivals": sorted(r.arrival for r in requests),
        "429s": sum(1 for r in requests if r.status == 429),
        "writes": len(uploads),
        "added": sum(r.added for r in uploads),
    }), flush=True)
    await sim.__aexit__(None, None, None)

asyncio.run(main())
"""


def write_leads(path: Path, rows: int, campaigns: int = LEAD_CAMPAIGNS) -> Path:
    """``rows`` leads over ``campaigns`` campaigns, their rows interleaved."""
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["campaign_id", "email", "first_name", "company_name", "Industry"])
        for n in range(rows):
            campaign = FIRST_CAMPAIGN + n % campaigns
            out.writerow([campaign, f"lead{n}@company{n % 997}.com", f"Lead{n}", "Acme", "SaaS"])
    return path


def upload(work: Path, source: Path, rate: Rate, per_request: int) -> dict[str, float]:
    """A real leads run of ``source`` in its own process against a simulator in another, at
    ``rate``: what the server counted, and the run's peak RSS."""
    server = subprocess.Popen(
        [sys.executable, "-c", _SERVER, str(rate), KEY],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert server.stdout is not None
    base_url = json.loads(server.stdout.readline())
    command = [
        *(sys.executable, "-m", "bulkrunner", "run", "--input", str(source), "-q"),
        *("--operation", "leads", "--leads-per-request", str(per_request)),
        *("--report", str(work / f"leads-{per_request}.csv"), "--base-url", base_url),
        *rate_flags(rate),  # (and the published windows of other lengths, loose)
    ]
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", _PEAK_OF_CHILD, *command],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "SMARTLEAD_API_KEY": KEY},
    )
    seconds = time.monotonic() - started
    server.send_signal(signal.SIGINT)
    out, _ = server.communicate(timeout=60)
    counted = json.loads(out.splitlines()[-1])
    times = counted["arrivals"]
    return {
        "exit": done.returncode,
        "s": seconds,
        "requests": len(times),
        "writes": counted["writes"],
        "leads added": counted["added"],
        "429s": counted["429s"],
        "ceiling ratio": long_run_ratio(times, rate) if len(times) > rate.limit else 0.0,
        "peak MB": int(done.stdout.strip() or 0) / 1024,
    }


def leads(sizes: Sizes, work: Path) -> dict[str, float]:
    source = write_leads(work / "leads.csv", sizes.lead_rows)
    hundred = upload(work, source, sizes.lead_rate, 100)
    four = upload(work, source, sizes.lead_rate, 400)
    figures = {f"100 a request: {name}": value for name, value in hundred.items()}
    figures.update({f"400 a request: {name}": value for name, value in four.items()})
    figures["requests at 400 / at 100"] = four["requests"] / hundred["requests"]
    figures["writes at 400 / at 100"] = four["writes"] / hundred["writes"]
    return figures


def leads_dry_run(sizes: Sizes, work: Path) -> dict[str, float]:
    """A dry run of ``sizes.lead_dry_rows`` leads from Parquet, in a process of its own."""
    import pandas as pd

    n = sizes.lead_dry_rows
    frame = pd.DataFrame(
        {
            "campaign_id": [FIRST_CAMPAIGN + i % LEAD_CAMPAIGNS for i in range(n)],
            "email": [f"lead{i}@company{i % 997}.com" for i in range(n)],
            "first_name": [f"Lead{i}" for i in range(n)],
            "Industry": ["SaaS", "Retail", "Fintech", "Health"] * (n // 4) + ["SaaS"] * (n % 4),
        }
    )
    path = work / f"leads-{n}.parquet"
    frame.to_parquet(path, index=False)
    del frame
    command = [
        *(sys.executable, "-m", "bulkrunner", "run", "--dry-run", "--input", str(path)),
        *("--operation", "leads", "--report", str(work / "leads-dry.csv")),
    ]
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _PEAK_OF_CHILD, *command], capture_output=True, text=True
    )
    seconds = time.perf_counter() - started
    return {"exit": done.returncode, "s": seconds, "peak MB": int(done.stdout.strip()) / 1024}

"""What the run history costs a run (``commands.recording``).

    python -m benchmarks.history            # the figures (about a minute)
    python -m benchmarks.history --smoke    # tiny sizes: checks it still works

- **the hook**: a run of 100,000 rows, each changing three fields, as its pipeline ends each
  row (``ChangeLog.row``, the history's part of the journal's hook: its changes batched, a
  transaction every ``BATCH`` changes or ``EVERY`` seconds), into a store on this disk: the
  seconds (and CPU seconds) it adds in all, per row, and as a share of the time the rows take
  at 1,000 rows a second (loopback, no limits) and at SmartLead's 10 requests in 2 seconds;
- **a whole run**, in this process, against the simulator (in a thread, no limits), with the
  store and with ``--no-state``: the seconds of each (medians), which the machine's other load
  moves more than the history does;
- **resuming** a run killed before it recorded any of its 100,000 journaled rows' changes:
  the seconds the resumed run takes to record them (``Recording.backfill``);
- **reading**: ``runs`` (the latest 20) and one campaign's changes, in milliseconds.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.run import alone
from bulkrunner.commands.recording import Recording
from bulkrunner.commands.run import run_job
from bulkrunner.config.accounts import Account
from bulkrunner.config.job_file import build_config
from bulkrunner.model import REAL_CLOCK, Change, Changes, Outcome, Rate, Row, Status
from bulkrunner.records.history import History
from bulkrunner.records.journal import Journal
from bulkrunner.records.store import StateStore
from bulkrunner.simulator import SimulatorConfig, SimulatorThread

KEY = "benchmark-history-key"
FIELDS = ("sending_limit", "min_time_btwn_emails", "follow_up_percentage")


def rows(count: int) -> Iterator[tuple[Row, Outcome, Changes]]:
    """``count`` succeeded rows, each with the changes of three fields."""
    now = datetime.now(UTC)
    for n in range(1, count + 1):
        changes = Changes({name: Change(n, n + 1) for name in FIELDS})
        row = Row(n, 1_000_000 + n, {name: n + 1 for name in FIELDS}, None)
        yield row, Outcome(Status.SUCCEEDED, 200, 1, finished_at=now), changes


@contextlib.contextmanager
def recording(folder: Path) -> Iterator[Recording]:
    config = build_config({}, {"input": "plan.csv", "state_dir": str(folder)})
    with Recording.of(config, "run", REAL_CLOCK) as recorded:
        yield recorded


def hook(folder: Path, count: int) -> list[tuple[str, str, str]]:
    """The history's part of the journal's hook, for ``count`` rows."""
    account = {"": Account("", "SMARTLEAD_API_KEY", (), "https://server.smartlead.ai/api/v1")}
    made = list(rows(count))  # (made before: the run has them)
    with recording(folder) as recorded:
        changes = recorded.change_log(account)
        assert changes is not None
        before, cpu = time.perf_counter(), time.process_time()
        for row, outcome, changed in made:
            changes.row(row, outcome, changed)
        changes.flush()
        spent, cpu = time.perf_counter() - before, time.process_time() - cpu
        recorded.finish(0)
    label = f"the hook, {count:,} rows of 3 fields"
    return [
        (label, "seconds in all (µs a row)", f"{spent:.2f} ({spent / count * 1e6:.1f})"),
        (label, "CPU seconds in all (µs a row)", f"{cpu:.2f} ({cpu / count * 1e6:.1f})"),
        (label, "share of a run at 1,000 rows/s", f"{spent / (count / 1000):.2%}"),
        (label, "share of a run at 10 requests/2 s", f"{spent / (count / 5):.4%}"),
    ]


def whole(folder: Path, count: int, repeat: int) -> list[tuple[str, str, str]]:
    """A whole run of ``count`` rows on the simulator, with the store and without."""
    source = folder / "plan.csv"
    source.write_text(
        "campaign_id,sending_limit\n" + "".join(f"{n},{n % 500 + 1}\n" for n in range(1, count + 1))
    )
    seconds: dict[str, list[float]] = {"with the history": [], "--no-state": []}
    config = SimulatorConfig(api_key=KEY, campaigns=set(range(1, count + 1)))
    with SimulatorThread(config) as sim:
        for attempt in range(repeat):
            for mode in seconds:
                flags = {
                    "input": str(source),
                    "base_url": sim.base_url,
                    "rate": [str(each) for each in alone(Rate(100_000, 1))],
                    "concurrency": 16,
                    "no_backup": True,  # (the backup's cost is another figure's)
                    "skip_unchanged": False,
                    "report": str(folder / f"{attempt}-{mode}.csv"),
                    "state_dir": str(folder / "state"),
                    "no_state": mode == "--no-state",
                }
                environ = {"SMARTLEAD_API_KEY": KEY}
                before = time.perf_counter()
                with contextlib.redirect_stderr(io.StringIO()):
                    assert run_job(build_config({}, flags), io.StringIO(), environ) == 0
                seconds[mode].append(time.perf_counter() - before)
    label = f"a whole run, {count:,} rows, loopback"
    return [(label, f"{mode}, s", f"{statistics.median(s):.2f}") for mode, s in seconds.items()]


def resuming(folder: Path, count: int) -> list[tuple[str, str, str]]:
    """A resumed run recording the changes its killed process journaled, not recorded."""
    journal_file = folder / "report.csv.journal"
    with recording(folder) as killed:
        assert killed.history is not None
        account = Account("", "SMARTLEAD_API_KEY", (), "https://server.smartlead.ai/api/v1")
        killed.begin(folder / "report.csv")
        killed.sending({"": account}, folder / "report.csv")
        with Journal.open(
            journal_file, input_path=folder / "plan.csv", started=datetime.now(UTC)
        ) as journal:
            for row, outcome, changed in rows(count):
                journal.record("k", row.number, row.campaign_id, outcome, changed)
    with recording(folder) as resumed:
        before = time.perf_counter()
        assert resumed.backfill(journal_file, folder / "report.csv") is not None
        spent = time.perf_counter() - before
        resumed.finish(0)
    return [(f"resuming, {count:,} journaled rows", "recording what was not, s", f"{spent:.2f}")]


def reading(folder: Path) -> list[tuple[str, str, str]]:
    with StateStore.open(folder) as store:
        history = History(store)
        before = time.perf_counter()
        history.runs(20)
        listed = time.perf_counter() - before
        before = time.perf_counter()
        history.changes(1_000_001)
        asked = time.perf_counter() - before
    return [
        ("reading", "runs (the latest 20), ms", f"{listed * 1e3:.2f}"),
        ("reading", "one campaign's changes, ms", f"{asked * 1e3:.2f}"),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.history", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, once")
    parser.add_argument("--repeat", type=int, default=3, help="whole runs of each mode (median)")
    args = parser.parse_args(argv)
    count, whole_rows, repeat = (2_000, 100, 1) if args.smoke else (100_000, 3_000, args.repeat)
    print("| scenario | figure | value |")
    print("| --- | --- | --- |")
    with tempfile.TemporaryDirectory(prefix="bulkrunner-history-") as tmp:
        here = os.getcwd()
        os.chdir(tmp)  # (a run's locks and reports: in the temporary folder)
        try:
            found = hook(Path(tmp) / "hook", count)
            found += whole(Path(tmp), whole_rows, repeat)
            found += resuming(Path(tmp) / "resume", count)
            found += reading(Path(tmp) / "hook")
        finally:
            os.chdir(here)
        for row in found:
            print(f"| {' | '.join(row)} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

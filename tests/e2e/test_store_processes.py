"""Several processes on one state store (each a ``tests.store_worker``): claims racing over one
timeline never let more than N requests into any window of S seconds, and a process killed
(SIGKILL) in the middle of its writes loses none it had committed and leaves the store sound.

Each process is given its times (the clock is a parameter), so what is checked holds however
the processes happen to be scheduled: only which of them gets a slot depends on it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import pytest

from bulkrunner.config.folders import account_id
from bulkrunner.limits.rates import max_in_window
from bulkrunner.model import Rate
from bulkrunner.records.budget import Ledger
from bulkrunner.records.history import History
from bulkrunner.records.store import StateStore
from tests import ROOT

ACME = account_id("https://server.smartlead.ai/api/v1", "sk-acme-key-000111")
T0 = 1_800_000_000.0


@contextmanager
def workers(jobs: Sequence[dict[str, Any]]) -> Iterator[list[subprocess.Popen[str]]]:
    """A process for each of ``jobs``, each with the store open and waiting; all let go at once
    when the block is entered."""
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.store_worker", json.dumps(job)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for job in jobs
    ]
    try:
        for process in processes:
            assert _out(process).readline() == "ready\n"
        for process in processes:
            _in(process).write("go\n")
            _in(process).flush()
        yield processes
    finally:
        for process in processes:
            process.kill()
            process.wait()
            for stream in (process.stdin, process.stdout):
                if stream is not None:
                    stream.close()


def _in(process: subprocess.Popen[str]) -> IO[str]:
    assert process.stdin is not None
    return process.stdin


def _out(process: subprocess.Popen[str]) -> IO[str]:
    assert process.stdout is not None
    return process.stdout


@pytest.mark.parametrize(
    ("rates", "most", "lease"),
    [(["5/1", "12/4"], 1, 0.0), (["10/2", "15/10"], 4, 0.03)],
    ids=["claims", "reservations"],
)
def test_processes_claiming_at_once_never_overfill_a_window(
    tmp_path: Path, rates: list[str], most: int, lease: float
) -> None:
    """Four processes claim at each of the same 300 moments; the requests granted, sent all
    at the moment they were asked for or all at the last moment their reservation allows, never
    overfill a window."""
    times = [T0 + n * 0.02 for n in range(300)]
    job: dict[str, Any] = {"kind": "claim", "folder": str(tmp_path / "state"), "account": ACME}
    job |= {"rates": rates, "guard": 0.0, "most": most, "lease": lease, "times": times}
    with workers([job] * 4) as processes:
        outputs = [_out(process).read() for process in processes]
        assert [process.wait() for process in processes] == [0] * 4
    grants = [line.split() for output in outputs for line in output.splitlines()]
    # each granted request sent as early as it may be, or as late
    first = sorted(float(now) for _, now, _, count in grants for _ in range(int(count)))
    last = sorted(float(until) for _, _, until, count in grants for _ in range(int(count)))
    for rate in map(Rate.parse, rates):
        assert max_in_window(first, rate.seconds) <= rate.limit
        assert max_in_window(last, rate.seconds) <= rate.limit
    with StateStore.open(tmp_path / "state") as store:
        assert len(Ledger(store).recent(ACME, 0.0)) == len(first)
    # and the windows were filled (as one process alone would fill them)
    ceiling = min(rate.per_second for rate in map(Rate.parse, rates))
    assert len(first) >= 0.8 * (times[-1] - times[0]) * ceiling


def test_processes_opening_a_new_store_at_once_make_one(tmp_path: Path) -> None:
    job: dict[str, Any] = {"kind": "claim", "folder": str(tmp_path / "state"), "account": ACME}
    job |= {"rates": ["1000/1"], "guard": 0.0, "times": [T0]}
    with workers([job] * 4) as processes:
        assert [process.wait() for process in processes] == [0] * 4
    with StateStore.open(tmp_path / "state") as store:
        with store.read() as db:
            assert db.execute("SELECT max(version) FROM schema_version").fetchone() == (1,)
        assert Ledger(store).recent(ACME, 0.0) == [T0] * 4


KILLS = (30, 170, 5, 420, 90)  # lines of committed writes read before each kill


def test_a_process_killed_while_writing_loses_nothing_it_committed(tmp_path: Path) -> None:
    folder = tmp_path / "state"
    reported: dict[str, list[str]] = defaultdict(list)
    start = T0
    for kill_after in KILLS:
        job = {"kind": "write", "folder": str(folder), "account": ACME, "start": start}
        with workers([job]) as (process,):
            lines = [_out(process).readline() for _ in range(kill_after)]
            process.send_signal(signal.SIGKILL)
            lines += _out(process).readlines()  # printed after their commits, before the kill
            assert process.wait() == -signal.SIGKILL
        for line in lines:
            kind, *rest = line.split()
            reported[kind].append(" ".join(rest))
        start += 10.0  # (all within the hour the ledger keeps)

        with StateStore.open(folder) as store:
            with store.read() as db:
                assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            history, ledger = History(store), Ledger(store)
            for run in map(int, reported["run"]):
                assert history.run(run) is not None
            for run in map(int, reported["finish"]):
                found = history.run(run)
                assert found is not None
                assert found.finished
                assert found.counts == {"succeeded": 200}
            batches: dict[int, int] = defaultdict(int)
            for batch in reported["changes"]:
                run, count = map(int, batch.split())
                batches[run] += count
            with store.read() as db:
                recorded = dict(db.execute("SELECT run, count(*) FROM changes GROUP BY run"))
            for run, count in batches.items():
                assert count <= recorded[run] <= count + 200  # a batch may commit, unsaid
            assert {float(at) for at in reported["claim"]} <= set(ledger.recent(ACME, 0.0))
    assert len(reported["finish"]) >= 3
    with StateStore.open(folder) as store:  # and it goes on
        assert Ledger(store).claim(ACME, [Rate(10, 1)], start + 10_000) == 0.0
        assert History(store).start_run("run", start + 10_000) > max(map(int, reported["run"]))

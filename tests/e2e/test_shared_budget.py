"""Real processes sharing an account's budget through the state store: two jobs on one key at
once, and a run killed (SIGKILL) in the middle of its requests, whose next command still counts
them. The same on a fake clock: ``tests/unit/commands/test_shared_budget.py``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bulkrunner.cli.app import main
from bulkrunner.config.folders import account_id
from bulkrunner.errors import ExitCode
from bulkrunner.limits.rates import max_in_window
from bulkrunner.model import Rate
from bulkrunner.records.budget import Ledger
from bulkrunner.records.store import DATABASE, StateStore
from bulkrunner.simulator import SimulatorConfig, SimulatorThread
from tests import ROOT
from tests.forked import Forked
from tests.unit.commands.test_shared_budget import KEY, throttled, write_input

# --- real processes -----------------------------------------------------------------------------


def bulkrunner(*argv: str) -> list[str]:
    return [sys.executable, "-m", "bulkrunner", *argv]


def test_two_jobs_on_one_key_at_once_both_finish_within_its_budget(tmp_path: Path) -> None:
    """Two cron entries at the same hour, two inputs, one key: both run (the store counts each
    one's requests in the other's windows), and the server saw no window overfilled."""
    rows = 4
    env = {**os.environ, "SMARTLEAD_API_KEY": KEY}
    ids = [[7000 + 100 * n + k for k in range(rows)] for n in range(2)]
    simulated = SimulatorConfig(api_key=KEY, rates=[Rate(5, 1)], campaigns={*ids[0], *ids[1]})
    with SimulatorThread(simulated) as sim:
        account = account_id(sim.base_url, KEY)
        jobs = []
        for n in range(2):
            source = write_input(tmp_path / f"job{n}.csv", ids[n])
            jobs.append(
                Forked(
                    bulkrunner(
                        "run",
                        str(source),
                        "--base-url",
                        sim.base_url,
                        "--rate",
                        "5/1",
                        "-q",
                        "--report",
                        str(tmp_path / f"job{n}.r.csv"),
                    ),
                    cwd=ROOT,
                    env=env,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        ends = [job.communicate(timeout=120) for job in jobs]
        state = sim.state
    for job, (_, err) in zip(jobs, ends, strict=True):
        assert job.returncode == 0, err
    arrivals = sorted(record.arrival for record in state.requests)
    assert len(arrivals) == 2 * (rows + 1)
    assert throttled(state) == 0
    assert max_in_window(arrivals, 1.0) <= 5
    with StateStore.open(Path(os.environ["BULKRUNNER_STATE_DIR"])) as store:
        assert len(Ledger(store).recent(account, 0.0)) == len(arrivals)  # each one recorded


@pytest.mark.parametrize("state", ["store", "no-state"])
def test_the_command_after_a_run_killed_mid_send_counts_its_requests(
    tmp_path: Path, state: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run killed (SIGKILL) while its first window's burst is in flight: the next command on
    the account, another input, waits for those requests to leave the window (each was in the
    store before it was sent). Without the store it cannot know of them: the server answers
    429."""
    monkeypatch.setenv("SMARTLEAD_API_KEY", KEY)
    env = {**os.environ}
    no_state = ["--no-state"] if state == "no-state" else []
    ids = [*range(8000, 8030), *range(9000, 9006)]
    simulated = SimulatorConfig(api_key=KEY, rates=[Rate(8, 1.5)], latency=0.3, campaigns=ids)
    with SimulatorThread(simulated) as sim:
        account = account_id(sim.base_url, KEY)
        first = write_input(tmp_path / "first.csv", list(range(8000, 8030)))
        killed = Forked(
            bulkrunner(
                "run",
                str(first),
                "--base-url",
                sim.base_url,
                "--rate",
                "8/1.5",
                "-q",
                "--report",
                str(tmp_path / "first.r.csv"),
                "--concurrency",
                "8",
                *no_state,
            ),
            cwd=ROOT,
            env=env,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 60
            while len(sim.state.requests) < 6:  # the list read and the first writes arrived
                assert killed.poll() is None
                assert time.monotonic() < deadline
                time.sleep(0.01)
        finally:
            killed.send_signal(signal.SIGKILL)
            killed.wait()
        sent_before = len(sim.state.requests)
        # its list read and six writes: one window of 8, once the killed run's requests have left it
        second = write_input(tmp_path / "second.csv", list(range(9000, 9006)))
        code = main(
            [
                *("run", str(second), "--base-url", sim.base_url, "--rate", "8/1.5"),
                *("--report", str(tmp_path / "second.r.csv"), "-q", *no_state),
            ]
        )
        state_after = sim.state
    if state == "no-state":
        assert throttled(state_after) >= 1
        return
    assert code == ExitCode.OK
    assert throttled(state_after) == 0
    arrivals = sorted(record.arrival for record in state_after.requests)
    assert max_in_window(arrivals, 1.5) <= 8
    with StateStore.open(Path(os.environ["BULKRUNNER_STATE_DIR"])) as store:
        with store.read() as db:
            assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        recorded = Ledger(store).recent(account, 0.0)
    assert len(recorded) >= len(arrivals) >= sent_before  # nothing the killed run sent is lost
    assert (Path(os.environ["BULKRUNNER_STATE_DIR"]) / DATABASE).exists()

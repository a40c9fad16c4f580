"""The run history of real ``bulkrunner`` processes sharing one state store: two runs recorded
at once, each whole; a run killed (SIGKILL) while it records is listed unfinished, the store
stays sound and usable, and the run that resumes it records what the killed process had not.

Each process runs the command line against a simulator of this test's, on 127.0.0.1, slowed by
its limits so that it is still running when the test acts; what is checked does not depend on
how the processes happen to be scheduled."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from bulkrunner.cli.app import main
from bulkrunner.config.paths import journal_path
from bulkrunner.model import Rate
from bulkrunner.records.history import History
from bulkrunner.records.journal import applied
from bulkrunner.records.store import StateStore
from bulkrunner.simulator import SimulatorConfig, SimulatorThread
from tests.fakes import rate_alone
from tests.forked import Forked
from tests.realtime import wait_until

KEY = "sk-history-processes-SENTINEL-e9e9"
ROWS = 12
CAMPAIGNS = range(1, ROWS + 1)


@pytest.fixture
def state(own_state_folder: Path) -> Path:
    return own_state_folder


@pytest.fixture
def sims() -> Iterator[tuple[SimulatorThread, SimulatorThread]]:
    """Two servers: two accounts, so that two runs may go at once (one account is one run's)."""
    config = SimulatorConfig(api_key=KEY, campaigns=set(CAMPAIGNS), rates=[Rate(6, 1)])
    with SimulatorThread(config) as first, SimulatorThread(config) as second:
        yield first, second


def plan_file(path: Path, limit: int) -> Path:
    path.write_text("campaign_id,sending_limit\n" + "".join(f"{n},{limit}\n" for n in CAMPAIGNS))
    return path


def bulkrunner(folder: Path, *argv: str) -> subprocess.Popen[bytes]:
    """``bulkrunner ARGV`` in a process of its own, in ``folder``, at 5 requests a second; what
    it prints goes to ``folder/<pid>.log``."""
    environ = {**os.environ, "SMARTLEAD_API_KEY": KEY}
    with (folder / f"{len(list(folder.glob('*.log')))}.log").open("wb") as log:
        return Forked(
            [sys.executable, "-m", "bulkrunner", *argv, "--rate", "5/1", "--concurrency", "1"],
            cwd=folder,
            env=environ,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def said(folder: Path) -> str:
    """What the processes printed."""
    return "\n".join(path.read_text() for path in sorted(folder.glob("*.log")))


def recorded(state: Path) -> list[tuple[int, bool, int]]:
    """Each run the store holds: id, finished, changes recorded."""
    if not (state / "state.sqlite3").exists():
        return []
    with StateStore.open(state) as store:
        history = History(store)
        return [(r.id, r.finished, history.change_count(r.id)) for r in history.runs()]


@pytest.mark.slow
def test_two_runs_at_once_are_both_recorded_whole(
    tmp_path: Path, state: Path, sims: tuple[SimulatorThread, SimulatorThread]
) -> None:
    source_a, source_b = plan_file(tmp_path / "a.csv", 777), plan_file(tmp_path / "b.csv", 888)
    a = bulkrunner(tmp_path, "run", str(source_a), "--base-url", sims[0].base_url)
    try:
        wait_until(lambda: any(changes for _, _, changes in recorded(state)), timeout=60)
        b = bulkrunner(tmp_path, "run", str(source_b), "--base-url", sims[1].base_url)
        assert b.wait(timeout=120) == 0, said(tmp_path)
    finally:
        assert a.wait(timeout=120) == 0, said(tmp_path)
    with StateStore.open(state) as store:
        history = History(store)
        later, earlier = history.runs()
        assert earlier.finished_at is not None
        assert earlier.started_at < later.started_at < earlier.finished_at  # at once
        for run, sim, limit in ((earlier, sims[0], 777), (later, sims[1], 888)):
            assert (run.finished, run.exit_code, dict(run.counts)) == (
                True,
                0,
                {"succeeded": ROWS},
            )
            assert history.change_count(run.id) == ROWS
            assert [sim.state.settings[n]["sending_limit"] for n in CAMPAIGNS] == [limit] * ROWS
        for campaign in CAMPAIGNS:
            assert [(c.run, c.after) for c in history.changes(campaign)] == [
                (earlier.id, 777),
                (later.id, 888),
            ]


@pytest.mark.slow
def test_a_run_killed_while_it_records_is_listed_unfinished_and_resumed_whole(
    tmp_path: Path,
    state: Path,
    sims: tuple[SimulatorThread, SimulatorThread],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sim = sims[0]
    source = plan_file(tmp_path / "plan.csv", 777)
    process = bulkrunner(tmp_path, "run", str(source), "--base-url", sim.base_url)
    try:
        wait_until(lambda: any(changes >= 5 for _, _, changes in recorded(state)), timeout=60)
    finally:
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=30) == -signal.SIGKILL
    (report,) = tmp_path.glob("reports/plan-*/report.csv.journal")
    report = report.with_name("report.csv")
    journaled = {entry.campaign_id for entry in applied(journal_path(report))}
    assert len(journaled) < ROWS  # killed mid-way
    with StateStore.open(state) as store, store.read() as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    monkeypatch.chdir(tmp_path)
    assert main(["runs", "--json"]) == 0
    (killed,) = json.loads(capsys.readouterr().out)
    assert (killed["finished"], killed["finished_at"], killed["exit_code"]) == (False, None, None)
    assert killed["report"] == str(report.resolve())
    assert main(["runs"]) == 0
    assert "unfinished" in capsys.readouterr().out

    # the store goes on: the run is resumed, and recorded, whole
    monkeypatch.setenv("SMARTLEAD_API_KEY", KEY)
    resume = ["run", str(source), "--resume", "--base-url", sim.base_url, *rate_alone("100/1")]
    assert main(resume) == 0
    with StateStore.open(state) as store:
        history = History(store)
        resumed = history.runs()[0]
        assert (resumed.of_run, resumed.counts) == (killed["id"], {"succeeded": ROWS})
        by = {n: [(c.run, c.after) for c in history.changes(n)] for n in CAMPAIGNS}
    assert all(len(each) == 1 for each in by.values()), by  # each change once
    runs = Counter(each[0][0] for each in by.values())
    assert runs[killed["id"]] >= len(journaled)  # the killed run's, as it applied them
    assert runs[killed["id"]] + runs[resumed.id] == ROWS
    assert {each[0][1] for each in by.values()} == {777}
    assert dict(sim.state.applied) == dict.fromkeys(CAMPAIGNS, 1)  # none sent twice

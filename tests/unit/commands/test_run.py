"""Whole runs in this process on a fake clock: the command (``run_job``, ``retry_job``,
``rollback_job``) takes the clock and passes it down to the limiter, the engine, the reads, the
journal's timestamps and the embedded simulator's rate limit, so a run held to two requests
every ten seconds takes the fake clock's minutes and a few real milliseconds.

The simulator counts its windows on the same clock: it answered no 429, and no window of its
own held more than the limit allows.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from bulkrunner.commands.retry import retry_job
from bulkrunner.commands.rollback import rollback_job
from bulkrunner.commands.run import run_job
from bulkrunner.config.job_file import build_config
from bulkrunner.config.paths import journal_path
from bulkrunner.errors import ExitCode
from bulkrunner.model import Rate
from bulkrunner.simulator import FaultPlan, SimulatorConfig, SimulatorThread, default_settings
from tests.fakes import FakeClock

KEY = "sk-fakeclock-SENTINEL-90"
ENVIRON = {"SMARTLEAD_API_KEY": KEY}
RATE = Rate(2, 10)  # two requests in any ten seconds
IDS = list(range(201, 209))
START = 1000.0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=START)


def simulator(clock: FakeClock, faults: FaultPlan | None = None) -> SimulatorThread:
    config = SimulatorConfig(
        api_key=KEY, campaigns=set(IDS), rates=[RATE], faults=faults or FaultPlan()
    )
    return SimulatorThread(config, clock=clock)


@pytest.fixture
def plan(tmp_path: Path) -> Path:
    path = tmp_path / "plan.csv"
    lines = ["campaign_id,sending_limit", *(f"{cid},{cid - 100}" for cid in IDS)]
    path.write_text("\n".join(lines) + "\n")
    return path


def flags(source: Path, report: Path, base_url: str, **more: Any) -> dict[str, Any]:
    return {
        "input": str(source),
        "report": str(report),
        "base_url": base_url,
        "rate": [str(RATE)],
        "concurrency": 1,
        **more,
    }


def statuses(report: Path) -> list[str]:
    return pd.read_csv(report, dtype=str, keep_default_na=False)["status"].tolist()


def held_to_the_limit(sim: SimulatorThread) -> bool:
    """Whether the server, counting its windows on the same clock, refused no request for its
    rate limit (a 429 it answered was one of the faults it was told to inject)."""
    return all(record.status != 429 or record.fault for record in sim.state.requests)


def test_a_run_at_its_rate_limit_completes_on_the_fake_clock(
    tmp_path: Path, plan: Path, clock: FakeClock
) -> None:
    report = tmp_path / "r.csv"
    with simulator(clock) as sim:
        config = build_config({}, flags(plan, report, sim.base_url))
        assert run_job(config, io.StringIO(), ENVIRON, clock.clock) == ExitCode.OK
        assert dict(sim.state.applied) == dict.fromkeys(IDS, 1)
        assert held_to_the_limit(sim)
    assert statuses(report) == ["succeeded"] * len(IDS)
    # the list and eight writes, two every ten seconds (and the guard): minutes of the run's
    # time, not of the test's
    assert clock.now - START >= 40
    finished = pd.read_csv(report)["finished_at"].tolist()
    assert finished[0].startswith("2026-11-26T09:3")  # the report's times are the run's clock's


def test_an_interrupted_run_resumes_on_the_fake_clock(
    tmp_path: Path, plan: Path, clock: FakeClock
) -> None:
    """The fourth write answered 429, Retry-After 900, past --max-wait 60: the run stops; the
    resumed run waits out the interrupted run's window (on the fake clock) and sends the rest."""
    report = tmp_path / "r.csv"
    faults = FaultPlan(scripted={IDS[3]: ["429"]}, retry_after=900)
    with simulator(clock, faults) as sim:
        config = build_config({}, flags(plan, report, sim.base_url, max_wait=60))
        assert run_job(config, io.StringIO(), ENVIRON, clock.clock) == ExitCode.ABORTED
        assert statuses(report)[:3] == ["succeeded"] * 3
        assert set(statuses(report)[4:]) == {"not_attempted"}
        assert journal_path(report).exists()
        resumed = build_config({}, flags(plan, report, sim.base_url, resume=True))
        assert run_job(resumed, io.StringIO(), ENVIRON, clock.clock) == ExitCode.OK
        assert dict(sim.state.applied) == dict.fromkeys(IDS, 1)  # none sent twice
        assert held_to_the_limit(sim)
    assert statuses(report) == ["succeeded"] * len(IDS)
    assert not journal_path(report).exists()


def test_retry_and_rollback_run_on_the_fake_clock(
    tmp_path: Path, plan: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A row failing after its attempts is sent again by ``retry``, under its number in the
    file; ``rollback`` then puts back every campaign the two runs changed."""
    report, again = tmp_path / "r.csv", tmp_path / "again.csv"
    faults = FaultPlan(scripted={IDS[2]: ["500"] * 3})
    with simulator(clock, faults) as sim:
        config = build_config({}, flags(plan, report, sim.base_url, max_attempts=3))
        assert run_job(config, io.StringIO(), ENVIRON, clock.clock) == ExitCode.ROWS_FAILED
        assert statuses(report)[2] == "failed"
        # A command starts with no memory of the last one's requests (only a resumed run
        # knows them): between two commands, a person lets a window pass.
        clock.now += RATE.seconds
        retried = build_config({}, flags(report, again, sim.base_url))
        with caplog.at_level(logging.INFO, logger="bulkrunner.output.events"):
            assert retry_job(retried, io.StringIO(), ENVIRON, clock.clock) == ExitCode.OK
        lines = pd.read_csv(again)
        assert lines["row"].tolist() == [3]  # its number in plan.csv, everywhere:
        finished = [r for r in caplog.records if r.getMessage() == "row_finished"]
        assert [r.__dict__["fields"]["row"] for r in finished] == [3]
        assert lines["status"].tolist() == ["succeeded"]
        assert sim.state.settings[IDS[2]]["sending_limit"] == IDS[2] - 100
        clock.now += RATE.seconds
        undo = build_config({}, flags(report, tmp_path / "undo.csv", sim.base_url))
        assert rollback_job(undo, io.StringIO(), ENVIRON, clock.clock) == ExitCode.OK
        restored = [sim.state.settings[cid]["sending_limit"] for cid in IDS if cid != IDS[2]]
        assert held_to_the_limit(sim)
    assert restored == [default_settings(cid)["sending_limit"] for cid in IDS if cid != IDS[2]]


def test_every_row_has_its_row_finished_event_sent_or_not(
    tmp_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Only the rows sent had one: an invalid row, one already as wanted and one of a campaign
    the account does not hold ended without a word to a log shipper counting them."""
    source = tmp_path / "mixed.csv"
    same = default_settings(IDS[1])["sending_limit"]
    source.write_text(f"campaign_id,sending_limit\n{IDS[0]},5\n{IDS[1]},{same}\n999,5\nx,5\n")
    with simulator(clock) as sim, caplog.at_level(logging.INFO, "bulkrunner.output.events"):
        config = build_config({}, flags(source, tmp_path / "r.csv", sim.base_url))
        assert run_job(config, io.StringIO(), ENVIRON, clock.clock) == ExitCode.ROWS_FAILED
    fields = [r.__dict__["fields"] for r in caplog.records if r.getMessage() == "row_finished"]
    said = sorted((f["row"], f["campaign_id"], f["status"]) for f in fields)
    assert said == [
        (1, IDS[0], "succeeded"),
        (2, IDS[1], "unchanged"),
        (3, 999, "failed"),
        (4, None, "invalid"),
    ]


def test_verbose_logs_every_read_and_its_answer_as_every_write(
    tmp_path: Path, plan: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    with simulator(clock) as sim, caplog.at_level(logging.DEBUG, "bulkrunner"):
        config = build_config({}, flags(plan, tmp_path / "r.csv", sim.base_url, verify=True))
        assert run_job(config, io.StringIO(), ENVIRON, clock.clock) == ExitCode.OK
    said = [r.getMessage() for r in caplog.records]
    assert "reading the list of campaigns: 200" in said
    assert f"reading /campaigns/{IDS[0]} back: 200" in said  # --verify's read-back
    assert any(m.startswith("row 1: 200") for m in said)  # a write's answer, as before

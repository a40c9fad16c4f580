"""Never lose a row when a run is interrupted: SIGINT and SIGTERM to a run in a process of its
own, and --resume after; and a request that times out on real time (the rest of recovery runs in
the test's process: ``tests/unit/commands/test_recovery.py``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from bulkrunner.cli.app import main
from bulkrunner.config.paths import journal_path
from bulkrunner.model import Rate
from bulkrunner.simulator import FaultPlan, SimulatorConfig, SimulatorThread
from tests import forked
from tests.fakes import rate_alone
from tests.forked import Forked
from tests.realtime import wait_for_lines, wait_until
from tests.unit.commands.test_recovery import KEY, plan


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch, no_ambient_settings: None) -> None:
    monkeypatch.setenv("SMARTLEAD_API_KEY", KEY)


def cli(*argv: str, base_url: str) -> list[str]:
    return [sys.executable, "-m", "bulkrunner", *argv, "--base-url", base_url]


@pytest.fixture
def sim_env() -> dict[str, str]:
    return {**os.environ, "SMARTLEAD_API_KEY": KEY}


# --- interruption and resume -----------------------------------------------------------------


@pytest.mark.slow
def test_sigint_stops_gracefully_and_resume_finishes_the_job(
    tmp_path: Path, sim_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    source = plan(tmp_path, 40)
    report = tmp_path / "out" / "r.csv"
    rates = [Rate(200, 1)]  # the resumed run goes at 200/1
    with SimulatorThread(SimulatorConfig(api_key=KEY, rates=rates, latency=0.05)) as sim:
        args = ("run", "--input", str(source), "--report", str(report), *rate_alone("20/1"))
        process = Forked(
            cli(*args, base_url=sim.base_url),
            env=sim_env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        wait_for_lines(journal_path(report), 12)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
        assert process.returncode == 3, err
        assert "requests in flight get 5s to finish" in err
        assert f"--resume --report {report}" in out
        assert "Traceback" not in err

        frame = pd.read_csv(report)
        assert frame["row"].tolist() == list(range(1, 41))
        succeeded = set(frame.loc[frame["status"] == "succeeded", "campaign_id"])
        assert succeeded == set(sim.state.applied)  # the report says exactly what was applied
        assert set(frame["status"]) == {"succeeded", "not_attempted"}
        assert journal_path(report).exists()
        first_attempts = frame.set_index("campaign_id")["attempts"]

        # Without --resume, the unfinished run is not silently overwritten.
        code = main(
            ["run", "--input", str(source), "--report", str(report), "--base-url", sim.base_url]
        )
        assert code == 2
        assert "add --resume to continue it" in capsys.readouterr().err

        code = main(
            [
                "run",
                "--input",
                str(source),
                "--report",
                str(report),
                *rate_alone("200/1"),
                "--base-url",
                sim.base_url,
                "--resume",
            ]
        )
        assert code == 0
        assert dict(sim.state.applied) == {100 + n: 1 for n in range(40)}  # none twice
    final = pd.read_csv(report)
    assert set(final["status"]) == {"succeeded"}
    assert final["row"].tolist() == list(range(1, 41))
    for campaign in succeeded:  # earlier successes keep their original attempts
        assert final.set_index("campaign_id")["attempts"][campaign] == first_attempts[campaign]
    assert not journal_path(report).exists()  # a finished run leaves only its report


def test_requests_abandoned_when_the_grace_period_ends_are_failed_outcome_unknown(
    tmp_path: Path, sim_env: dict[str, str]
) -> None:
    source = plan(tmp_path, 6)
    report = tmp_path / "r.csv"
    # The server applies campaigns 100 and 101, then sits on its answers far past the grace.
    faults = FaultPlan(scripted={100: ["slow"], 101: ["slow"]}, slow_seconds=60, slow_applies=True)
    with SimulatorThread(SimulatorConfig(api_key=KEY, faults=faults)) as sim:
        args = ("run", "--input", str(source), "--report", str(report), "--concurrency", "2")
        process = Forked(
            [*cli(*args, base_url=sim.base_url), "--grace", "0.2", "--timeout", "120"],
            env=sim_env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        wait_until(lambda: dict(sim.state.applied) == {100: 1, 101: 1})
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
        assert len(sim.state.posts()) == 2
        seen = len(sim.state.requests)  # and the reads of the current settings before them
    assert process.returncode == 3, err
    assert "Traceback" not in err
    lines = pd.read_csv(report, keep_default_na=False).set_index("campaign_id")
    for campaign in (100, 101):  # applied by the server: never reported as not sent
        assert lines.loc[campaign, "status"] == "failed"
        assert lines.loc[campaign, "attempts"] == 1
        assert lines.loc[campaign, "error"] == (
            "run interrupted while a request was in flight: outcome unknown"
        )
    assert set(lines.loc[102:, "status"]) == {"not_attempted"}
    assert set(lines.loc[102:, "attempts"]) == {0}
    assert f"requests: {seen} sent (2 writes, {seen - 2} reads)" in out
    assert f"--resume --report {report}" in out


# --- signals while the report is written, and a full disk -----------------------------------

SIGNAL_DURING_REPORT = """
import os, signal, sys
from bulkrunner.output import report_writer
from bulkrunner.cli.app import main

write = report_writer.ReportWriter.write

def interrupted_write(self, frame):
    os.kill(os.getpid(), signal.{name})  # arrives in the middle of writing the report
    write(self, frame)

report_writer.ReportWriter.write = interrupted_write
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM"])
def test_a_signal_while_the_report_is_written_leaves_a_whole_report_and_no_litter(
    tmp_path: Path, sim_env: dict[str, str], name: str
) -> None:
    source = plan(tmp_path, 3)
    report = tmp_path / "out" / "r.csv"
    with SimulatorThread(SimulatorConfig(api_key=KEY)) as sim:
        args = ["run", "--input", str(source), "--report", str(report), "--base-url"]
        done = forked.run(
            [sys.executable, "-c", SIGNAL_DURING_REPORT.format(name=name), *args, sim.base_url],
            env=sim_env,
            text=True,
            capture_output=True,
            timeout=60,
        )
        assert dict(sim.state.applied) == {100: 1, 101: 1, 102: 1}
        seen = len(sim.state.requests)
    assert done.returncode == 0, done.stderr  # every row was applied before the signal came
    assert "Traceback" not in done.stderr
    assert "interrupted while the report was being written: it was finished first" in done.stderr
    assert "rows: 3 (3 succeeded)" in done.stdout  # says what was sent
    assert f"requests: {seen} sent (3 writes, {seen - 3} reads)" in done.stdout
    assert pd.read_csv(report)["status"].tolist() == ["succeeded"] * 3
    left = sorted(p.name for p in report.parent.iterdir())
    assert left == ["r.csv", "r.csv.backup.parquet"]  # no temporary file, lock or journal


def test_sigterm_while_a_dry_run_writes_its_report_leaves_no_temporary_file_or_lock(
    tmp_path: Path,
) -> None:
    source = plan(tmp_path, 3)
    report = tmp_path / "out" / "r.csv"
    args = ["run", "--input", str(source), "--report", str(report), "--dry-run"]
    done = forked.run(
        [sys.executable, "-c", SIGNAL_DURING_REPORT.format(name="SIGTERM"), *args],
        text=True,
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 3, done.stderr
    assert "bulkrunner: interrupted before anything was sent" in done.stderr
    assert not report.parent.exists() or not list(report.parent.iterdir())


# --- secrets ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_key_never_appears_in_any_output_log_report_or_journal(
    tmp_path: Path, sim_env: dict[str, str]
) -> None:
    source = plan(tmp_path, 40)
    report = tmp_path / "r.jsonl"
    faults = FaultPlan(
        probabilities={"drop": 0.15, "slow": 0.1, "503": 0.1, "429": 0.05},
        seed=3,
        retry_after=0.1,
        slow_seconds=0.5,
    )
    with SimulatorThread(SimulatorConfig(api_key=KEY, faults=faults)) as sim:
        process = Forked(
            cli(
                "run",
                "--input",
                str(source),
                "--report",
                str(report),
                "-v",
                "--timeout",
                "0.2",
                *rate_alone("100/1"),
                base_url=sim.base_url,
            ),
            env=sim_env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        wait_for_lines(journal_path(report), 10)
        process.send_signal(signal.SIGINT)  # keep the journal: interrupted runs leave it
        out, err = process.communicate(timeout=60)
        records = repr(sim.state.requests)
    assert "POST /campaigns/" in err  # -v really logged requests
    assert "timed out" in err or "dropped" in err
    texts = {
        "stdout": out,
        "stderr": err,
        "report": report.read_text(),
        "journal": journal_path(report).read_text(),
        "server record": records,
    }
    for name, text in texts.items():
        assert KEY not in text, name


def test_a_timed_out_request_is_reported_as_outcome_unknown(tmp_path: Path) -> None:
    source = plan(tmp_path, 1)
    report = tmp_path / "r.csv"
    # A normal answer takes far less than the 1 s timeout, even on a loaded machine.
    faults = FaultPlan(scripted={100: ["slow"]}, slow_seconds=1.5, slow_applies=True)
    with SimulatorThread(SimulatorConfig(api_key=KEY, faults=faults)) as sim:
        code = main(
            [
                "run",
                "--input",
                str(source),
                "--report",
                str(report),
                "--base-url",
                sim.base_url,
                "--timeout",
                "1",
            ]
        )
        assert sim.state.applied[100] == 2  # applied by the timed-out request, then again
    assert code == 0
    (line,) = pd.read_csv(report, keep_default_na=False).to_dict("records")
    assert line["status"] == "succeeded"
    assert line["attempts"] == 2
    assert line["error"] == "attempt 1 timed out after 1s: outcome unknown, retried"


def test_a_signal_while_the_campaigns_are_read_stops_the_reading_at_once(
    tmp_path: Path, sim_env: dict[str, str]
) -> None:
    """Reading the current settings one by one (the list does not show the campaigns), a
    signal stops the reads at once: they change nothing, so they do not get the grace period
    that requests in flight do, and nothing more is read."""
    source = plan(tmp_path, 40, first_id=5000)
    report = tmp_path / "r.csv"
    with SimulatorThread(SimulatorConfig(api_key=KEY, latency=0.2)) as sim:
        process = Forked(
            cli("run", str(source), "--report", str(report), "--concurrency", "1",
                "--grace", "60", base_url=sim.base_url),
            env=sim_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            wait_until(lambda: len(sim.state.requests) >= 3, timeout=60)  # the list, two reads
        finally:
            process.send_signal(signal.SIGINT)
            out, err = process.communicate(timeout=30)  # not the 60 s of grace
        reads = len(sim.state.requests)
    assert process.returncode == 3, err
    assert reads <= 3 + 1  # at most the one read in flight at the signal
    assert set(pd.read_csv(report)["status"]) == {"not_attempted"}
    assert "run interrupted" in out

"""Never lose a row: journal, --resume, retry, locks, outages, unknown outcomes, a full disk;
on the command line in the test's process. A signal to a run, which needs a process of its
own, is in ``tests/e2e/test_recovery.py``."""

from __future__ import annotations

import asyncio
import errno
import io
import json
import os
import signal
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from aiohttp import web

from bulkrunner.cli.app import main
from bulkrunner.config.paths import journal_path, lock_path
from bulkrunner.model import Change, Changes, Outcome, Status
from bulkrunner.output import report as report_module
from bulkrunner.output.report_writer import ReportWriter
from bulkrunner.records.journal import Journal, RunIdentity, Success, read_successes, row_key
from bulkrunner.records.locks import RunLock
from bulkrunner.simulator import FaultPlan, SimulatorConfig, SimulatorThread, default_settings
from tests.fakes import one_line_error
from tests.hostile import ServerThread

KEY = "sk-recovery-SENTINEL-77aa"
WHEN = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch, no_ambient_settings: None) -> None:
    monkeypatch.setenv("SMARTLEAD_API_KEY", KEY)


def plan(tmp_path: Path, count: int, first_id: int = 100) -> Path:
    lines = ["campaign_id,sending_limit,stop_lead_settings"]
    lines += [f"{first_id + n},{10 + n},REPLY_TO_AN_EMAIL" for n in range(count)]
    path = tmp_path / "plan.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


# --- the journal -----------------------------------------------------------------------------


def test_row_key_follows_content_not_position() -> None:
    assert row_key(5, {"a": 1, "b": [2]}) == row_key(5, {"b": [2], "a": 1})
    assert row_key(5, {"a": 1}) != row_key(5, {"a": 2})
    assert row_key(5, {"a": 1}) != row_key(6, {"a": 1})


def test_the_journal_keeps_successes_and_survives_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "r.csv.journal"
    with Journal.open(path, input_path=Path("plan.csv"), started=WHEN) as journal:
        journal.record("k1", 1, 101, Outcome(Status.SUCCEEDED, 200, 2, "", 120, WHEN))
        journal.record("k2", 2, 102, Outcome(Status.FAILED, 404, 1, "HTTP 404", 30, WHEN))
    with path.open("a") as handle:
        handle.write('{"key": "k3", "status": "succ')  # kill -9 in the middle of a write
    assert read_successes(path) == {"k1": Success(Outcome(Status.SUCCEEDED, 200, 2, "", 120, WHEN))}


def test_the_journal_keeps_what_each_succeeded_row_changed(tmp_path: Path) -> None:
    path = tmp_path / "r.csv.journal"
    done = Outcome(Status.SUCCEEDED, 200, 1, "", 10, WHEN)
    changes = {"sending_limit": Change(40, 10), "track_settings": Change([], ["DONT_EMAIL_OPEN"])}
    with Journal.open(path, input_path=Path("plan.csv"), started=WHEN) as journal:
        journal.record("k1", 1, 101, done, changes)
        journal.record("k2", 2, 102, Outcome(Status.FAILED, 500), {"sending_limit": Change(1, 2)})
        journal.record("k3", 3, 103, done)  # a success that records no changes
    assert read_successes(path) == {"k1": Success(done, Changes(changes)), "k3": Success(done)}
    assert '"changes"' not in path.read_text().splitlines()[2]  # a failure's are not kept
    with path.open("a") as handle:
        handle.write('{"key":"k4","status":"succeeded","changes":{"sending_limit":5}}\n{}\n')
    from bulkrunner.errors import UsageError

    with pytest.raises(UsageError, match="line 5 has a bad value"):
        read_successes(path)


def test_a_corrupt_journal_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "r.csv.journal"
    path.write_text('not json\n{"key": "k"}\n')
    from bulkrunner.errors import UsageError

    with pytest.raises(UsageError, match="line 1 is not a journal entry"):
        read_successes(path)


# --- interruption and resume -----------------------------------------------------------------


def test_resume_resends_rows_whose_content_changed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = plan(tmp_path, 3)
    report = tmp_path / "r.csv"
    outcome = Outcome(Status.SUCCEEDED, 200, 1, "", 5, WHEN)
    with Journal.open(journal_path(report), input_path=source, started=WHEN) as journal:
        journal.record(
            row_key(100, {"sending_limit": 10, "stop_lead_settings": "REPLY_TO_AN_EMAIL"}),
            1,
            100,
            outcome,
        )
        journal.record(
            row_key(101, {"sending_limit": 999, "stop_lead_settings": "REPLY_TO_AN_EMAIL"}),
            2,
            101,
            outcome,
        )  # the plan was edited since: 101 now wants 11
    with SimulatorThread(SimulatorConfig(api_key=KEY)) as sim:
        code = main(
            [
                "run",
                "--input",
                str(source),
                "--report",
                str(report),
                "--base-url",
                sim.base_url,
                "--resume",
            ]
        )
        assert code == 0
        assert sorted(sim.state.applied) == [101, 102]
    assert "1 row already succeeded" in capsys.readouterr().err


def test_a_resumed_verify_run_reads_back_the_rows_the_stopped_run_applied(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """They were reported succeeded unread: a campaign changed since the kill, as 101 here, was
    succeeded, exit 0. Each is read back: as the row set it, succeeded; otherwise mismatch."""
    source = tmp_path / "plan.csv"
    source.write_text("campaign_id,sending_limit\n100,10\n101,11\n102,12\n")
    report = tmp_path / "r.csv"
    outcome = Outcome(Status.SUCCEEDED, 200, 1, "", 5, WHEN)
    with Journal.open(journal_path(report), input_path=source, started=WHEN) as journal:
        for number, campaign in enumerate((100, 101), 1):
            journal.record(
                row_key(campaign, {"sending_limit": 9 + number}), number, campaign, outcome
            )
    with SimulatorThread(SimulatorConfig(api_key=KEY)) as sim:
        sim.state.settings[100] = {**default_settings(100), "sending_limit": 10}  # as it set
        sim.state.settings[101] = {**default_settings(101), "sending_limit": 77}  # changed since
        args = ["run", str(source), "--report", str(report), "--base-url", sim.base_url]
        code = main([*args, "--resume", "--verify"])
        assert sorted(sim.state.applied) == [102]  # nothing sent again
    assert code == 1
    found = pd.read_csv(report, keep_default_na=False)
    assert found["status"].tolist() == ["succeeded", "mismatch", "succeeded"]
    assert "77" in found["error"][1]
    assert "verifying 3 campaigns by reading them back" in capsys.readouterr().err


def test_fresh_discards_the_unfinished_run(tmp_path: Path) -> None:
    source = plan(tmp_path, 2)
    report = tmp_path / "r.csv"
    journal_path(report).write_text('{"journal": 1}\n')
    with SimulatorThread(SimulatorConfig(api_key=KEY)) as sim:
        code = main(
            [
                "run",
                "--input",
                str(source),
                "--report",
                str(report),
                "--base-url",
                sim.base_url,
                "--fresh",
            ]
        )
        assert code == 0
        assert sorted(sim.state.applied) == [100, 101]


def test_resume_without_report_finds_the_newest_unfinished_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = plan(tmp_path, 2)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "reports").mkdir()
    older = tmp_path / "reports" / "plan-20261101T000000Z.csv"
    newer = tmp_path / "reports" / "plan-20261125T000000Z.csv"
    identity = RunIdentity.of(source, {"vocabulary": "documented"})
    for path, age in ((older, 100), (newer, 0)):
        Journal.open(journal_path(path), input_path=source, started=WHEN, identity=identity).close()
        os.utime(journal_path(path), (time.time() - age, time.time() - age))
    with SimulatorThread(SimulatorConfig(api_key=KEY)) as sim:
        assert main(["run", "--input", str(source), "--base-url", sim.base_url, "--resume"]) == 0
    assert newer.exists()
    assert not older.exists()
    assert journal_path(older).exists()


# --- locks -----------------------------------------------------------------------------------


def test_a_second_run_on_the_same_report_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = plan(tmp_path, 2)
    report = tmp_path / "r.csv"
    with RunLock(lock_path(report), WHEN):
        code = main(["run", "--input", str(source), "--report", str(report), "--dry-run"])
    assert code == 4  # another run of this job is in progress
    err = capsys.readouterr().err
    assert f"pid {os.getpid()}, started 2026-11-26T09:00:00+00:00" in err
    assert "another bulkrunner run" in err
    assert not report.exists()


def test_a_lock_left_by_a_killed_run_is_taken_over(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = plan(tmp_path, 2)
    report = tmp_path / "r.csv"
    lock_path(report).write_text('{"pid": 999999, "started_at": "2026-11-25T02:15:00+00:00"}')
    assert main(["run", "--input", str(source), "--report", str(report), "--dry-run"]) == 0
    assert "taking over the lock of an earlier run (pid 999999" in capsys.readouterr().err
    assert not lock_path(report).exists()


# --- retry -----------------------------------------------------------------------------------


def test_retry_sends_only_failed_and_not_attempted_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "plan.csv"
    source.write_text(
        "campaign_id,sending_limit,unsubscribe_text\n1,10,=ok\n2,20,\n3,abc,\n4,40,-opt out\n"
    )
    report = tmp_path / "first.csv"
    with SimulatorThread(SimulatorConfig(api_key=KEY, campaigns={1, 2})) as sim:
        assert (
            main(
                ["run", "--input", str(source), "--report", str(report), "--base-url", sim.base_url]
            )
            == 1
        )
    first = pd.read_csv(report)
    assert first["status"].tolist() == ["succeeded", "succeeded", "invalid", "failed"]
    capsys.readouterr()

    second = tmp_path / "second.jsonl"
    with SimulatorThread(SimulatorConfig(api_key=KEY)) as sim:
        code = main(["retry", str(report), "--report", str(second), "--base-url", sim.base_url])
        applied = dict(sim.state.settings)
        assert sorted(sim.state.applied) == [4]
    assert code == 0
    out = capsys.readouterr().out
    assert "row 3 is invalid, not retried: sending_limit: 'abc' is not a whole number" in out
    rows = [json.loads(line) for line in second.read_text().splitlines()]
    assert [(r["row"], r["campaign_id"], r["status"]) for r in rows] == [(4, "4", "succeeded")]
    assert applied[4]["unsubscribe_text"] == "-opt out"  # the CSV neutralising was undone


def test_retry_of_a_clean_report_sends_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = plan(tmp_path, 2)
    report = tmp_path / "r.parquet"
    assert main(["run", "--input", str(source), "--report", str(report), "--dry-run"]) == 0
    frame = pd.read_parquet(report)
    frame["status"] = "succeeded"
    frame.to_parquet(report)
    assert main(["retry", str(report), "--dry-run"]) == 0
    assert "no failed or not-attempted rows to retry" in capsys.readouterr().out


def test_retry_of_something_that_is_not_a_report(tmp_path: Path) -> None:
    source = plan(tmp_path, 1)
    assert main(["retry", str(source)]) == 2


@pytest.mark.parametrize("number", ["abc", "1" * 30, "0"])
def test_a_report_whose_row_number_was_edited_is_refused_naming_the_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], number: str
) -> None:
    source = plan(tmp_path, 2)
    report = tmp_path / "r.csv"
    assert main(["run", "--input", str(source), "--report", str(report), "--dry-run"]) == 0
    frame = pd.read_csv(report, dtype=str, keep_default_na=False)
    frame["status"] = "failed"
    frame.loc[1, "row"] = number
    frame.to_csv(report, index=False)
    capsys.readouterr()
    assert main(["retry", str(report), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert one_line_error(err) == (
        f"bulkrunner: error: {report}: its row 2 has {number!r} as its row number, which "
        "bulkrunner never writes: was the report edited? Put the number back"
    )


# --- outages and unknown outcomes ------------------------------------------------------------


def test_a_dead_api_aborts_after_the_outage_timeout_and_is_resumable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = plan(tmp_path, 3)
    report = tmp_path / "r.csv"
    faults = FaultPlan(probabilities={"503": 1.0}, seed=1)
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
                "--outage-timeout",
                "0.3",
                "--timeout",
                "0.3",
                "--max-attempts",
                "50",
            ]
        )
    assert code == 3
    captured = capsys.readouterr()
    assert "SmartLead looks unavailable" in captured.out
    assert "--resume" in captured.out
    assert journal_path(report).exists()
    assert set(pd.read_csv(report)["status"]) <= {"failed", "not_attempted"}


# --- a full disk ------------------------------------------------------------------------------


def no_space(*_: object) -> OSError:
    return OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_while_journaling_stops_sending_and_the_run_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    source = plan(tmp_path, 8)
    report = tmp_path / "out" / "r.csv"
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    journaled = 0
    write_entry = Journal._write

    def filling_write(self: Journal, entry: dict[str, object]) -> None:
        nonlocal journaled
        if journaled == 4:  # the header and three rows fit; the fourth row's line is torn
            self._handle.write(json.dumps(entry)[:20])
            self._handle.flush()
            raise no_space()
        journaled += 1
        write_entry(self, entry)

    stage = report_module.stage_report

    def full_disk_report(*args: Any) -> ReportWriter:  # (parts, path, ...)
        if args[1] == report:
            raise no_space()
        return stage(*args)

    with SimulatorThread(SimulatorConfig(api_key=KEY)) as sim:
        argv = ["run", "--input", str(source), "--report", str(report), "--base-url", sim.base_url]
        with monkeypatch.context() as patch:
            patch.setattr(Journal, "_write", filling_write)
            patch.setattr(report_module, "stage_report", full_disk_report)
            code = main([*argv, "--concurrency", "1"])
        out, err = capsys.readouterr()
        assert code == 3, err
        # The row whose journal line failed was applied; nothing was sent after it.
        assert dict(sim.state.applied) == {100: 1, 101: 1, 102: 1, 103: 1}
        stop = f"run aborted: cannot write the journal {journal_path(report)}"
        assert f"{stop} (No space left on device); sending nothing more" in err
        assert f"cannot write the report to {report}" in err
        assert "Traceback" not in err
        (fallback,) = elsewhere.glob("bulkrunner-report-*.csv")
        assert f"report: {fallback}" in out
        assert f"--resume --report {report}" in out
        lines = pd.read_csv(fallback, keep_default_na=False)
        assert lines["status"].tolist() == ["succeeded"] * 4 + ["not_attempted"] * 4
        assert set(lines["error"][4:]) == {f"{stop} (No space left on device)"}
        assert not report.exists()
        assert not list(report.parent.glob("*.tmp"))
        assert not lock_path(report).exists()

        # The journal's torn last line is skipped with a warning, not fatal.
        assert main([*argv, "--resume"]) == 0
        _, err = capsys.readouterr()
        assert "r.csv.journal: ignoring its last line (line 5)" in err
        # Campaign 103, applied but not journaled, already has its settings: not sent again,
        # and reported as the job's change (its backup holds its value from before).
        assert dict(sim.state.applied) == {campaign: 1 for campaign in range(100, 108)}
        assert "1 row found as the interrupted run left them" in err
    final = pd.read_csv(report, keep_default_na=False)
    assert final["status"].tolist() == ["succeeded"] * 8
    assert final["error"][3] == "applied by the interrupted run: found as this row sets it"
    assert all(final["before"])  # every change, with its values
    assert all(final["after"])
    assert not journal_path(report).exists()


def test_a_journal_that_cannot_be_started_sends_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    source = plan(tmp_path, 2)
    report = tmp_path / "r.csv"

    def full(*_: object) -> None:
        raise no_space()

    monkeypatch.setattr(Journal, "_write", full)
    with SimulatorThread(SimulatorConfig(api_key=KEY)) as sim:
        argv = ["run", "--input", str(source), "--report", str(report), "--base-url", sim.base_url]
        assert main(argv) == 2
        assert sim.state.requests == []
    err = capsys.readouterr().err
    assert f"{journal_path(report)}: cannot write the journal (No space left on device)" in err
    assert not journal_path(report).exists()  # nothing half-written to trip up the next run
    assert not lock_path(report).exists()


def test_with_no_space_anywhere_the_report_is_printed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    source = plan(tmp_path, 2)
    report = tmp_path / "r.csv"
    monkeypatch.chdir(tmp_path)

    def no_report(*_: object) -> None:
        raise no_space()

    monkeypatch.setattr(report_module, "stage_report", no_report)
    with SimulatorThread(SimulatorConfig(api_key=KEY)) as sim:
        code = main(
            ["run", "--input", str(source), "--report", str(report), "--base-url", sim.base_url]
        )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "printing it here instead" in err
    printed = pd.read_csv(io.StringIO(out[: out.index("rows: 2")]))
    assert printed["campaign_id"].tolist() == [100, 101]
    assert printed["status"].tolist() == ["succeeded", "succeeded"]


def test_appending_to_a_journal_with_a_torn_last_line_keeps_it_readable(tmp_path: Path) -> None:
    path = tmp_path / "r.csv.journal"
    with Journal.open(path, input_path=Path("plan.csv"), started=WHEN) as journal:
        journal.record("k1", 1, 101, Outcome(Status.SUCCEEDED, 200, 1, "", 10, WHEN))
    with path.open("a") as handle:
        handle.write('{"key": "k2", "status": "succ')  # the disk filled up mid-line
    with Journal.open(path, input_path=Path("plan.csv"), started=WHEN) as journal:  # --resume
        journal.record("k3", 3, 103, Outcome(Status.SUCCEEDED, 200, 1, "", 10, WHEN))
    assert set(read_successes(path)) == {"k1", "k3"}


@pytest.mark.real_clock  # the grace is real time: the request is in flight for it
def test_a_request_cut_off_by_ctrl_c_has_its_time_in_flight_and_the_run_its_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A write that never answers, the run interrupted: the row's ``duration_ms`` is how long
    it was in flight (it was the time from its start to the run's last answer, before it:
    negative), and the summary's time runs to the cut-off, not to the last answer."""
    release = threading.Event()

    async def handle(request: web.Request) -> web.StreamResponse:
        if request.method == "GET":
            return web.json_response([{"id": 100, "sending_limit": 5, "stop_lead_settings": "X"}])
        os.kill(os.getpid(), signal.SIGINT)
        await asyncio.to_thread(release.wait, 60)  # never answered in time
        return web.json_response({"ok": True})

    source = plan(tmp_path, 1)
    with ServerThread(handle) as server:
        try:
            code = main(
                ["run", str(source), "--report", str(tmp_path / "r.csv"), "--grace", "0.2",
                 "--base-url", f"{server.url}/api/v1"]
            )  # fmt: skip
        finally:
            release.set()
    assert code == 3
    (row,) = pd.read_csv(tmp_path / "r.csv").to_dict("records")
    assert row["status"] == "failed"
    assert row["duration_ms"] >= 150  # cut off at the end of the 0.2 s grace
    assert "in 0.0s" not in capsys.readouterr().out

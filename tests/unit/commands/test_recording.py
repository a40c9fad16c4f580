"""Run history and change history through the commands (``commands.recording``,
``commands.runs``, ``commands.changes``): every run, retry, rollback, plan and export recorded
with its times, counts, files and exit code; ``runs`` (``--json``), ``runs show ID``, ``changes
CAMPAIGN_ID`` (``--json``), ``retry --run ID`` and ``rollback --run ID``; nothing recorded with
``--no-state``; a store that cannot be opened stops a command before anything is done.

Whole commands run in this process against the simulator, on a fake clock where the recorded
times matter."""

from __future__ import annotations

import hashlib
import io
import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import bulkrunner
import bulkrunner.commands.recording as recording
from bulkrunner.cli.app import main
from bulkrunner.commands.export import export_job
from bulkrunner.commands.plan import plan_job
from bulkrunner.commands.retry import retry_job
from bulkrunner.commands.rollback import rollback_job
from bulkrunner.commands.run import run_job
from bulkrunner.config.folders import account_id
from bulkrunner.config.job_file import build_config
from bulkrunner.config.paths import backup_path, journal_path
from bulkrunner.errors import ExitCode
from bulkrunner.simulator import FaultPlan, SimulatorConfig, SimulatorThread, default_settings
from tests.fakes import FakeClock, one_line_error, run

KEY = "sk-history-cli-SENTINEL-4b4b"
ENVIRON = {"SMARTLEAD_API_KEY": KEY}
IDS = [201, 202, 203, 204]
START = 1000.0


@pytest.fixture(autouse=True)
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_ambient_settings: None) -> Path:
    monkeypatch.setenv("SMARTLEAD_API_KEY", KEY)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=START)


def simulator(clock: FakeClock | None = None, faults: FaultPlan | None = None) -> SimulatorThread:
    config = SimulatorConfig(api_key=KEY, campaigns=set(IDS), faults=faults or FaultPlan())
    return SimulatorThread(config) if clock is None else SimulatorThread(config, clock=clock)


def plan_file(limit: int = 100, name: str = "plan.csv") -> Path:
    path = Path(name)
    path.write_text("campaign_id,sending_limit\n" + "".join(f"{n},{limit + n}\n" for n in IDS))
    return path


def flags(source: str | Path, sim: SimulatorThread, **more: Any) -> dict[str, Any]:
    given = {"base_url": sim.base_url, "rate": ["100/1"], "max_attempts": 2, **more}
    return {"input": str(source), **given}


def runs(capsys: pytest.CaptureFixture[str], *more: str) -> list[dict[str, Any]]:
    code, out, err = run(capsys, "runs", "--json", *more)
    assert code == 0, err
    found: list[dict[str, Any]] = json.loads(out)
    return found


# --- every command is recorded -----------------------------------------------------------------


def test_every_command_is_recorded_with_its_times_counts_files_and_exit_code(
    clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    source = plan_file()
    out = io.StringIO()
    with simulator(clock, FaultPlan(scripted={203: ["500", "500"]})) as sim:
        base_url = sim.base_url
        assert plan_job(build_config({}, flags(source, sim)), out, ENVIRON, clock.clock) == 0
        clock.now += 60
        started = clock.wall().isoformat()
        assert run_job(build_config({}, flags(source, sim)), out, ENVIRON, clock.clock) == 1
        ended = clock.wall().isoformat()
        (report,) = Path("reports").glob("plan-*/report.csv")
        clock.now += 60
        retried = build_config({}, flags(report, sim))
        assert retry_job(retried, out, ENVIRON, clock.clock) == 0
        clock.now += 60
        undo = build_config({}, flags(report, sim))
        assert rollback_job(undo, out, ENVIRON, clock.clock) == 0
        clock.now += 60
        exporting = clock.wall().isoformat()
        exported = build_config({}, flags("", sim, output="campaigns.csv"))
        assert export_job(exported, out, ENVIRON, clock.clock) == 0
    export, rollback, retry, real, plan = runs(capsys)
    assert [export["id"], rollback["id"], retry["id"], real["id"]] == [5, 4, 3, 2]
    account = [{"name": "", "account": account_id(base_url, KEY)}]
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    assert real == {
        "id": 2,
        "command": "run",
        "operation": "settings",
        "of_run": None,
        "input": str(source.resolve()),
        "input_sha256": digest,
        "accounts": account,
        "pid": real["pid"],
        "started_at": started,
        "finished_at": real["finished_at"],
        "finished": True,
        "counts": {"succeeded": 3, "failed": 1},
        "exit_code": 1,
        "report": str(report.resolve()),
        "backup": str(backup_path(report).resolve()),
    }
    assert real["finished_at"] == ended
    assert (plan["command"], plan["counts"], plan["exit_code"]) == ("plan", {"dry_run": 4}, 0)
    assert Path(plan["report"]).parent.name.endswith("-plan")
    assert (retry["command"], retry["of_run"], retry["counts"]) == ("retry", 2, {"succeeded": 1})
    assert Path(retry["report"]).parent == report.parent.resolve()
    assert (rollback["command"], rollback["of_run"], rollback["exit_code"]) == ("rollback", 2, 0)
    assert rollback["input"] == str(backup_path(report).resolve())
    assert rollback["counts"] == {"succeeded": 4}  # all its backup holds, the retried row's too
    assert (export["command"], export["counts"], export["input"]) == (
        "export",
        {"exported": 4},
        None,
    )
    assert export["report"] == str(Path("campaigns.csv").resolve())
    assert export["started_at"] == exporting
    assert [each["command"] for each in runs(capsys, "--limit", "2")] == ["export", "rollback"]


def test_changes_tells_a_campaigns_history_across_runs(
    clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 21: nothing said which runs touched campaign 123, when, and from what to what."""
    first, edited = plan_file(100), plan_file(300, "edited.csv")
    original = default_settings(201)["sending_limit"]
    out = io.StringIO()
    with simulator(clock) as sim:
        account = account_id(sim.base_url, KEY)
        assert run_job(build_config({}, flags(first, sim)), out, ENVIRON, clock.clock) == 0
        clock.now += 600
        second = clock.wall()
        assert run_job(build_config({}, flags(edited, sim)), out, ENVIRON, clock.clock) == 0
        (later,) = Path("reports").glob("edited-*/report.csv")
        clock.now += 600
        undo = build_config({}, flags(later, sim))
        assert rollback_job(undo, out, ENVIRON, clock.clock) == 0
        assert sim.state.settings[201]["sending_limit"] == 301  # as the first run left it
    code, text, err = run(capsys, "changes", "201", "--json")
    assert code == 0, err
    changes = json.loads(text)
    assert [(c["run"], c["command"], c["before"], c["after"]) for c in changes] == [
        (1, "run", original, 301),
        (2, "run", 301, 501),
        (3, "rollback", 501, 301),
    ]
    assert {c["field"] for c in changes} == {"sending_limit"}
    assert {c["account"] for c in changes} == {account}
    assert second.isoformat() <= changes[1]["at"] <= clock.wall().isoformat()  # its clock
    code, text, _ = run(capsys, "changes", "201")
    assert code == 0
    assert "campaign 201: 3 changes in 3 runs" in text
    assert ["2 run", account[:8], "sending_limit", "301 -> 501"] in [
        re.split(r"\s{2,}", line)[1:] for line in text.splitlines()
    ]
    assert run(capsys, "changes", "999")[1].startswith("no changes of campaign 999 recorded")


def test_runs_lists_the_runs_and_runs_show_one_with_its_failed_rows(
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = plan_file()
    with simulator(faults=FaultPlan(scripted={203: ["500", "500"]})) as sim:
        assert main(["run", str(source), *cli_flags(sim)]) == 1
    capsys.readouterr()
    code, text, _ = run(capsys, "runs")
    assert code == 0
    header, line = (re.split(r"\s{2,}", each) for each in text.splitlines())
    titles = "id, started (UTC), took, command, operation, input, rows, exit, report"
    assert header == titles.split(", ")
    (report,) = Path("reports").glob("plan-*/report.csv")
    cells = ["1", "run", "settings", "plan.csv", "3 succeeded, 1 failed", "1", str(report)]
    assert line[:1] + line[3:] == cells
    code, text, _ = run(capsys, "runs", "show", "1")
    assert code == 0
    assert text.startswith("run 1: run settings (exit 1: some rows failed)")
    assert "rows that did not end well (1 row):\n  row 3 (campaign 203) failed: gave up" in text
    assert "changes:  3 fields recorded as applied" in text
    assert "undo:     bulkrunner rollback --run 1" in text
    code, text, _ = run(capsys, "runs", "show", "1", "--json")
    shown = json.loads(text)
    assert (shown["id"], shown["changes"], shown["followed_by"]) == (1, 3, [])
    assert [(r["row"], r["campaign_id"], r["status"]) for r in shown["rows"]] == [
        (3, 203, "failed")
    ]
    code, _, err = run(capsys, "runs", "show", "7")
    assert code == 2
    assert "no run 7 in the state store" in one_line_error(err)
    assert run(capsys, "runs", "show")[0] == 2
    assert json.loads(run(capsys, "runs", "--json", "--limit", "1")[1])[0]["id"] == 1
    # a run's id without `show`, a misspelt option: each said "argument show: invalid choice"
    code, _, err = run(capsys, "runs", "1")
    assert (code, one_line_error(err)) == (
        2,
        "bulkrunner: error: runs takes no '1': to show a run, bulkrunner runs show 1",
    )
    with pytest.raises(SystemExit) as exited:
        main(["runs", "--limt", "3"])
    last = capsys.readouterr().err.splitlines()[-1]
    assert (exited.value.code, last) == (
        2,
        "bulkrunner: error: unrecognized arguments: --limt (see bulkrunner --help)",
    )


def cli_flags(sim: SimulatorThread) -> list[str]:
    return ["--base-url", sim.base_url, "--rate", "100/1", "--max-attempts", "2"]


def test_retry_and_rollback_find_the_run_by_its_id(capsys: pytest.CaptureFixture[str]) -> None:
    source = plan_file()
    with simulator(faults=FaultPlan(scripted={203: ["500", "500"]})) as sim:
        assert main(["run", str(source), *cli_flags(sim)]) == 1
        assert main(["plan", str(source), *cli_flags(sim)]) == 0
        capsys.readouterr()
        assert main(["retry", "--run", "1", *cli_flags(sim)]) == 0
        assert sim.state.settings[203]["sending_limit"] == 303
        job = Path("job.toml")
        job.write_text('rate = ["100/1"]\n')
        assert main(["rollback", "--run", "1", str(job), "--base-url", sim.base_url]) == 0
        restored = [sim.state.settings[n]["sending_limit"] for n in (201, 202, 204)]
        assert restored == [default_settings(n)["sending_limit"] for n in (201, 202, 204)]
        capsys.readouterr()
        for argv, problem in (
            (["retry", "--run", "9"], "no run 9 in the state store"),
            (["rollback", "--run", "2"], "run 2 (plan, "),  # a plan backs nothing up
            (["retry", "reports", "--run", "1"], "give reports or --run 1, not both"),
            (["retry"], "give the run to retry: its report (or backup), or --run ID"),
            (["retry", "--run", "1", "--no-state"], "which --no-state leaves out"),
        ):
            assert main([*argv, "--base-url", sim.base_url]) == 2, argv
            assert problem in one_line_error(capsys.readouterr().err), argv
    retry, rollback = runs(capsys)[1], runs(capsys)[0]
    assert (retry["command"], retry["of_run"]) == ("retry", 1)
    assert (rollback["command"], rollback["of_run"]) == ("rollback", 1)


def test_a_run_writing_an_earlier_runs_report_keeps_that_runs_report_and_backup(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A fixed --report (or a job's {date} run twice a day): the second run writes the report
    anew, and the first run's report and backup are kept aside, so that rolling back the first
    run undoes the first run, not the second."""
    first, second = plan_file(100, "first.csv"), plan_file(200, "second.csv")
    second.write_text("campaign_id,sending_limit\n201,401\n")
    with simulator() as sim:
        report = ["--report", "fixed/r.csv"]
        assert main(["run", str(first), *report, *cli_flags(sim)]) == 0
        assert main(["run", str(second), *report, *cli_flags(sim)]) == 0
        (aside,) = Path("fixed").glob("r-*.csv")
        assert "the report and backup of the run before are kept as" in capsys.readouterr().err
        assert pd.read_csv(aside)["campaign_id"].tolist() == IDS
        assert pd.read_csv("fixed/r.csv")["campaign_id"].tolist() == [201]
        earlier, later = runs(capsys)[1], runs(capsys)[0]
        assert (earlier["report"], earlier["backup"]) == (
            str(aside.resolve()),
            str(backup_path(aside).resolve()),
        )
        assert later["report"] == str(Path("fixed/r.csv").resolve())
        undo = ["--report", "undo.csv", *cli_flags(sim)]
        assert main(["rollback", "--run", str(earlier["id"]), *undo]) == 1
        restored = {n: sim.state.settings[n]["sending_limit"] for n in IDS}
        # the first run's changes undone, but 201's, which the second run changed since
        assert restored == {n: default_settings(n)["sending_limit"] for n in IDS} | {201: 401}
        assert pd.read_csv("undo.csv")["status"].tolist() == ["drifted"] + ["succeeded"] * 3


def test_a_run_whose_report_was_written_over_is_not_followed_up_from_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A store written by a version that wrote over an earlier run's report and backup: the
    earlier run is neither retried nor rolled back from what another run wrote there."""
    with simulator() as sim:
        report = ["--report", "fixed/r.csv"]
        assert main(["run", str(plan_file(100)), *report, *cli_flags(sim)]) == 0
        Path("fixed/r.csv").unlink()
        backup_path(Path("fixed/r.csv")).unlink()  # as if never kept aside
        assert main(["run", str(plan_file(200)), *report, *cli_flags(sim)]) == 0
        capsys.readouterr()
        for command, undone in (("retry", "retried"), ("rollback", "rolled back")):
            code, _, err = run(capsys, command, "--run", "1", *cli_flags(sim))
            said = one_line_error(err)
            assert (code, said.split(") ", 1)[1]) == (
                2,
                "wrote fixed/r.csv, which run 2 then wrote over, with its "
                f"backup: run 1 can no longer be {undone} from them",
            )
        shown = run(capsys, "runs", "show", "1")[1]
        assert "(written over by run 2)" in shown
        assert "rollback --run 1" not in shown
        assert "its report was written over by run 2's" in shown
    assert [sim.state.settings[n]["sending_limit"] for n in IDS] == [200 + n for n in IDS]


# --- what is not recorded, and a store that cannot be used ---------------------------------------


def test_no_state_records_nothing(own_state_folder: Path) -> None:
    source = plan_file()
    with simulator() as sim:
        assert main(["run", str(source), *cli_flags(sim), "--no-state"]) == 0
        assert main(["plan", str(source), *cli_flags(sim), "--no-state"]) == 0
    assert not own_state_folder.exists()


def test_a_store_that_cannot_be_opened_stops_a_command_before_anything_is_done(
    own_state_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    own_state_folder.parent.mkdir(parents=True, exist_ok=True)
    own_state_folder.write_text("a file where the state folder goes")
    source = plan_file()
    with simulator() as sim:
        for command in ("run", "plan"):
            assert main([command, str(source), *cli_flags(sim)]) == 2
            error = one_line_error(capsys.readouterr().err)
            assert str(own_state_folder) in error
            assert "--no-state" in error
        assert sim.state.requests == []
        assert main(["run", str(source), *cli_flags(sim), "--no-state"]) == 0  # as it always ran
    assert not list(Path("reports").glob("*-plan"))
    assert run(capsys, "runs")[0] == 2


# --- the Python API, and a run continuing one its process could not finish recording ------------


def test_the_python_api_records_its_runs(capsys: pytest.CaptureFixture[str]) -> None:
    frame = pd.DataFrame({"campaign_id": IDS, "sending_limit": [7, 8, 9, 10]})
    with simulator() as sim:
        bulkrunner.plan(frame, base_url=sim.base_url, rate=["100/1"])
        report = bulkrunner.apply(frame, base_url=sim.base_url, rate=["100/1"], keep=1)
    capsys.readouterr()
    applied, planned = runs(capsys)
    assert (planned["command"], planned["counts"]) == ("plan", {"dry_run": 4})
    assert (applied["command"], applied["counts"]) == ("run", {"succeeded": 4})
    assert applied["report"] == str(Path(report.attrs["report"]).resolve())
    assert len(json.loads(run(capsys, "changes", "201", "--json")[1])) == 1


def test_a_resumed_run_records_the_changes_its_interrupted_process_left_unrecorded(
    clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    """Its process killed once the journal had lines it had not yet recorded: the run that
    continues it records them, as the killed run's."""
    source = plan_file()
    out = io.StringIO()
    faults = FaultPlan(scripted={203: ["429"]}, retry_after=1000)  # the run stops at row 3
    with simulator(clock, faults) as sim:
        config = build_config({}, flags(source, sim, max_wait=5, concurrency=1))
        with pytest.MonkeyPatch.context() as patched:
            patched.setattr(recording.ChangeLog, "flush", lambda self: None)
            patched.setattr(recording.Recording, "finish", lambda self, code: None)
            assert run_job(config, out, ENVIRON, clock.clock) == ExitCode.ABORTED
        (report,) = Path("reports").glob("plan-*/report.csv")
        assert journal_path(report).exists()
        (killed,) = runs(capsys)
        assert (killed["finished"], killed["finished_at"], killed["exit_code"]) == (
            False,
            None,
            None,
        )
        assert run(capsys, "changes", "201", "--json")[1].strip() == "[]"
        clock.now += 60
        resumed = build_config({}, flags(source, sim, resume=True))
        assert run_job(resumed, out, ENVIRON, clock.clock) == 0
    later, killed = runs(capsys)
    assert (later["of_run"], later["report"], later["counts"]) == (
        killed["id"],
        str(report.resolve()),
        {"succeeded": 4},
    )
    by_run = {
        campaign: [c["run"] for c in json.loads(run(capsys, "changes", str(campaign), "--json")[1])]
        for campaign in IDS
    }
    assert by_run == {
        201: [1],
        202: [1],
        203: [2],
        204: [2],
    }  # each once, by the run that applied it
    shown = run(capsys, "runs", "show", "1")[1].splitlines()[0]
    assert shown == "run 1: run settings (unfinished: stopped, and continued by run 2)"

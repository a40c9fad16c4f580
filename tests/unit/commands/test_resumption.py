"""Resume, rollback and retry are runs like any other: the journal knows its input, hints work
when pasted (in this process, as a shell would run them), and a report round-trips to exactly
what was sent. An overlapping run of the same input, refused, needs two processes at once:
``tests/e2e/test_overlapping_runs.py``."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shlex
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from bulkrunner.cli.app import main
from bulkrunner.commands.run import run_job
from bulkrunner.config.job_file import build_config, read_job_file
from bulkrunner.config.paths import backup_path, journal_path
from bulkrunner.input.validation import validate
from bulkrunner.model import Clock
from bulkrunner.operations.fields import Vocabulary
from bulkrunner.simulator import FaultPlan, SimulatorConfig, SimulatorThread
from bulkrunner.simulator.state import default_settings

KEY = "sk-resume-SENTINEL-31cd"
WHEN = datetime(2026, 11, 26, 2, 15, tzinfo=UTC)


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch, no_ambient_settings: None) -> None:
    monkeypatch.setenv("SMARTLEAD_API_KEY", KEY)


@pytest.fixture
def sim() -> Iterator[SimulatorThread]:
    # Campaigns that exist are listed by GET /campaigns/, so a run backs up their values.
    with SimulatorThread(SimulatorConfig(api_key=KEY, campaigns=set(range(1, 100)))) as running:
        yield running


def preset(sim: SimulatorThread, campaign_id: int, **settings: Any) -> None:
    """Give a simulated campaign settings other than its defaults."""
    sim.state.settings[campaign_id] = {**default_settings(campaign_id), **settings}


# --- a report round-trips to exactly what the earlier run would have sent ---------------------


def test_a_csv_cell_of_two_double_quotes_is_an_explicitly_empty_text() -> None:
    frame = pd.DataFrame(
        {"campaign_id": ["1", "2"], "unsubscribe_text": ['""', ""], "sending_limit": ["", "5"]},
        dtype=object,
    )
    rows = validate(frame, Vocabulary.DOCUMENTED).rows
    assert [dict(row.payload) for row in rows] == [{"unsubscribe_text": ""}, {"sending_limit": 5}]


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".json", ".jsonl"])
def test_retry_sends_explicitly_empty_values_as_the_earlier_run_would_have(
    tmp_path: Path, suffix: str
) -> None:
    source = tmp_path / "plan.parquet"
    pd.DataFrame(
        {
            "campaign_id": [1, 2],
            "unsubscribe_text": ["", None],  # row 1: set it empty; row 2: leave it
            "track_settings": [[], None],  # row 1: track everything; row 2: leave it
            "sending_limit": [None, 30],
        }
    ).to_parquet(source)
    first = tmp_path / f"first{suffix}"
    with SimulatorThread(SimulatorConfig(api_key=KEY, campaigns={99})) as missing:
        argv = ["run", "--input", str(source), "--report", str(first)]
        assert main([*argv, "--base-url", missing.base_url]) == 1  # both rows: 404, failed

    with SimulatorThread(SimulatorConfig(api_key=KEY)) as sim:
        for campaign_id in (1, 2):
            preset(sim, campaign_id, unsubscribe_text="Keep me", track_settings=["DONT_LINK_CLICK"])
        second = tmp_path / "second.csv"
        argv = ["retry", str(first), "--report", str(second), "--base-url", sim.base_url]
        assert main(argv) == 0
        one, two = sim.state.settings[1], sim.state.settings[2]
    assert (one["unsubscribe_text"], one["track_settings"]) == ("", [])
    assert (two["unsubscribe_text"], two["track_settings"]) == ("Keep me", ["DONT_LINK_CLICK"])
    assert two["sending_limit"] == 30


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_report_is_a_valid_input_file(
    tmp_path: Path, sim: SimulatorThread, capsys: pytest.CaptureFixture[str], suffix: str
) -> None:
    source = tmp_path / "plan.csv"
    source.write_text(
        "campaign_id,sending_limit,unsubscribe_text\n1,10,=ok\n2,20,\n3,30,-opt out\n"
    )
    report = tmp_path / f"preview{suffix}"
    assert main(["run", "--input", str(source), "--report", str(report), "--dry-run"]) == 0
    assert main(["validate", "--input", str(report)]) == 0
    assert f"{report}: 3 rows, 3 valid, 0 invalid" in capsys.readouterr().out

    preset(sim, 2, unsubscribe_text="Keep me")
    applied = tmp_path / "applied.csv"
    argv = ["run", "--input", str(report), "--report", str(applied), "--base-url", sim.base_url]
    assert main(argv) == 0
    settings = sim.state.settings
    assert [settings[n]["unsubscribe_text"] for n in (1, 2, 3)] == ["=ok", "Keep me", "-opt out"]
    assert [settings[n]["sending_limit"] for n in (1, 2, 3)] == [10, 20, 30]
    written = pd.read_csv(applied, dtype=str, keep_default_na=False)
    assert list(written.columns[:3]) == ["campaign_id", "sending_limit", "unsubscribe_text"]
    assert written["status"].tolist() == ["succeeded"] * 3


# --- the journal knows its input ---------------------------------------------------------------


def plan(folder: Path, ids: range, limit: int = 10) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "plan.csv"
    lines = ["campaign_id,sending_limit"] + [f"{n},{limit + n}" for n in ids]
    path.write_text("\n".join(lines) + "\n")
    return path


def unfinished(report: Path, source: Path, age: float = 0, vocabulary: str = "documented") -> Path:
    """The journal an interrupted run of ``source`` left beside ``report``, ``age`` seconds old."""
    header = {
        "journal": 1,
        "input": str(source.resolve()),
        "input_sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
        "options": {"vocabulary": vocabulary},
        "started_at": WHEN.isoformat(),
    }
    journal = journal_path(report)
    journal.parent.mkdir(parents=True, exist_ok=True)
    journal.write_text(json.dumps(header) + "\n")
    os.utime(journal, (time.time() - age, time.time() - age))
    return journal


def test_resume_without_report_continues_only_a_run_of_this_input(
    tmp_path: Path,
    sim: SimulatorThread,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    ours = plan(tmp_path / "a", range(1, 3))
    theirs = plan(tmp_path / "b", range(7, 9))  # the same file name, so the same report stem
    our_report = Path("reports/plan-20261101T000000Z.csv")
    their_report = Path("reports/plan-20261125T000000Z.csv")
    unfinished(our_report, ours, age=100)
    their_journal = unfinished(their_report, theirs)  # newer, but another input's
    before = their_journal.read_bytes()

    assert main(["run", "--input", str(ours), "--base-url", sim.base_url, "--resume"]) == 0
    assert sorted(sim.state.applied) == [1, 2]
    assert our_report.exists()
    assert not journal_path(our_report).exists()
    assert their_journal.read_bytes() == before  # neither adopted nor removed
    assert not their_report.exists()
    assert not backup_path(their_report).exists()

    # With only another input's journal left, there is nothing to resume: exit 2, untouched.
    capsys.readouterr()
    assert main(["run", "--input", str(ours), "--base-url", sim.base_url, "--resume"]) == 2
    assert "nothing to resume: no unfinished run of" in capsys.readouterr().err
    assert their_journal.read_bytes() == before
    assert sorted(sim.state.applied) == [1, 2]


def test_resume_does_not_pick_a_run_of_the_same_file_with_other_content(
    tmp_path: Path,
    sim: SimulatorThread,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    source = plan(tmp_path, range(1, 3))
    journal = unfinished(Path("reports/plan-20261101T000000Z.csv"), source)
    source.write_text("campaign_id,sending_limit\n1,50\n")  # tonight's plan is another one
    assert main(["run", "--input", str(source), "--base-url", sim.base_url, "--resume"]) == 2
    err = capsys.readouterr().err
    assert "nothing to resume" in err
    assert journal.exists()
    assert not sim.state.requests
    # It points at the earlier version's run, with the command to resume that one anyway.
    pasted = paste(
        capsys, err, "to resume it anyway (rows whose content changed are sent again): ", "\n"
    )
    assert pasted.returncode == 0, pasted.stderr
    assert "has changed since the interrupted run" in pasted.stderr
    assert sim.state.settings[1]["sending_limit"] == 50
    assert not journal.exists()


def test_default_reports_of_two_inputs_of_one_name_never_overwrite_each_other(
    tmp_path: Path, sim: SimulatorThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    first = plan(tmp_path / "a", range(1, 3), limit=10)
    second = plan(tmp_path / "b", range(1, 3), limit=20)  # same name, same campaigns
    key = {"SMARTLEAD_API_KEY": KEY}
    for source in (first, second):  # both in the same second
        config = build_config({}, {"input": str(source), "base_url": sim.base_url})
        assert run_job(config, io.StringIO(), key, Clock(wall=lambda: WHEN)) == 0
    reports = sorted(Path("reports").glob("*/report.csv"))
    assert [p.parent.name for p in reports] == [
        "plan-20261126T021500Z",
        "plan-20261126T021500Z-2",
    ]
    earlier = pd.read_parquet(backup_path(reports[0]))  # the first run's undo is intact
    originals = [default_settings(n)["sending_limit"] for n in (1, 2)]
    assert earlier["sending_limit"].tolist() == originals
    assert pd.read_parquet(backup_path(reports[1]))["sending_limit"].tolist() == [11, 12]


@pytest.mark.parametrize("flag", ["--resume", "--fresh", None])
def test_a_named_report_whose_journal_is_another_inputs_is_left_alone(
    tmp_path: Path, sim: SimulatorThread, capsys: pytest.CaptureFixture[str], flag: str | None
) -> None:
    ours = plan(tmp_path / "a", range(1, 3))
    theirs = plan(tmp_path / "b", range(7, 9))
    report = tmp_path / "shared.csv"
    journal = unfinished(report, theirs)
    before = journal.read_bytes()
    argv = ["run", "--input", str(ours), "--report", str(report), "--base-url", sim.base_url]
    assert main([*argv, *([flag] if flag else [])]) == 2
    err = capsys.readouterr().err
    assert f"it is the journal of another input, {theirs.resolve()}" in err
    assert len(err.strip().splitlines()) == 1
    assert journal.read_bytes() == before
    assert not report.exists()
    assert not sim.state.requests  # nothing sent, not even the read of current settings


def test_a_journal_of_the_other_vocabulary_is_not_resumed(
    tmp_path: Path, sim: SimulatorThread, capsys: pytest.CaptureFixture[str]
) -> None:
    source = plan(tmp_path, range(1, 3))
    report = tmp_path / "r.csv"
    unfinished(report, source, vocabulary="long")
    argv = ["run", "--input", str(source), "--report", str(report), "--base-url", sim.base_url]
    assert main([*argv, "--resume"]) == 2
    assert "that run used --vocabulary long, not documented" in capsys.readouterr().err
    assert main([*argv, "--resume", "--vocabulary", "long"]) == 0
    assert sorted(sim.state.applied) == [1, 2]


def test_the_journal_header_names_the_input_its_content_and_the_vocabulary(
    tmp_path: Path,
) -> None:
    source = plan(tmp_path, range(1, 4))
    report = tmp_path / "r.csv"
    with SimulatorThread(SimulatorConfig(api_key="another-key")) as sim:  # 401: run aborts
        argv = ["run", "--input", str(source), "--report", str(report), "--base-url", sim.base_url]
        assert main([*argv, "--vocabulary", "long"]) == 3
    header = json.loads(journal_path(report).read_text().splitlines()[0])
    assert header["input"] == str(source.resolve())
    assert header["input_sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    assert header["options"] == {"vocabulary": "long"}


@pytest.mark.parametrize("dry_run", [True, False])
def test_a_report_that_is_the_input_is_refused(
    tmp_path: Path,
    sim: SimulatorThread,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    dry_run: bool,
) -> None:
    source = plan(tmp_path, range(1, 3))
    before = source.read_bytes()
    monkeypatch.chdir(tmp_path)
    argv = ["run", "--input", str(source), "--report", "./plan.csv", "--base-url", sim.base_url]
    assert main([*argv, *(["--dry-run"] if dry_run else [])]) == 2
    assert "the report would overwrite the input file" in capsys.readouterr().err
    assert source.read_bytes() == before
    assert not sim.state.requests


# --- every hint printed is a command that works when pasted --------------------------------------


def paste(
    capsys: pytest.CaptureFixture[str], text: str, before: str, after: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the command printed in ``text`` between ``before`` and ``after``, as a user pasting
    it into a shell in ``cwd`` would, with this process's ``bulkrunner`` (``main``)."""
    assert before in text, text
    command = text.split(before, 1)[1].split(after, 1)[0]
    words = shlex.split(command)
    assert words[0] == "bulkrunner"
    # A command that lost its --base-url must fail on loopback, not reach SmartLead.
    dead_end = "http://127.0.0.1:9/api/v1"
    with pytest.MonkeyPatch.context() as patch:
        if cwd is not None:
            patch.chdir(cwd)
        patch.setenv("SMARTLEAD_API_KEY", KEY)
        patch.setenv("SMARTLEAD_BASE_URL", dead_end)
        capsys.readouterr()
        code = main(words[1:])
        out, err = capsys.readouterr()
    return subprocess.CompletedProcess(words, code, out, err)


def rejected_key(monkeypatch: pytest.MonkeyPatch, argv: list[str]) -> int:
    """Run ``argv`` with a key the server refuses: it stops at once, exit 3, resumable."""
    with monkeypatch.context() as patch:
        patch.setenv("SMARTLEAD_API_KEY", "sk-revoked")
        return main(argv)


@pytest.mark.parametrize("command", ["run", "retry", "rollback"])
def test_the_printed_resume_command_works_when_pasted(
    tmp_path: Path,
    sim: SimulatorThread,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    plan(tmp_path, range(1, 4))
    url = ["--base-url", sim.base_url]
    if command == "run":
        argv = ["run", "--input", "plan.csv", "--rate", "50/1", *url]
    elif command == "retry":
        with SimulatorThread(SimulatorConfig(api_key=KEY, campaigns={99})) as missing:
            first = ["run", "--input", "plan.csv", "--report", "first.csv"]
            assert main([*first, "--base-url", missing.base_url]) == 1
        argv = ["retry", "first.csv", "--rate", "50/1", *url]
    else:
        assert main(["run", "--input", "plan.csv", "--report", "apply.csv", *url]) == 0
        assert sorted(sim.state.applied) == [1, 2, 3]
        argv = ["rollback", "apply.csv", "--rate", "50/1", *url]
    capsys.readouterr()

    assert rejected_key(monkeypatch, argv) == 3
    out = capsys.readouterr().out
    pasted = paste(capsys, out, "to resume: ", "  (the journal", tmp_path)
    assert pasted.returncode == 0, pasted.stderr
    assert "resuming: 0 rows already succeeded" in pasted.stderr
    settings = sim.state.settings
    if command == "rollback":
        assert [settings[n]["sending_limit"] for n in (1, 2, 3)] == [
            default_settings(n)["sending_limit"] for n in (1, 2, 3)
        ]
    else:
        assert [settings[n]["sending_limit"] for n in (1, 2, 3)] == [11, 12, 13]
    assert not list(tmp_path.glob("reports/*.journal"))  # the resumed run finished


def test_rollback_and_retry_take_fresh_and_vocabulary(
    tmp_path: Path,
    sim: SimulatorThread,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    plan(tmp_path, range(1, 3))
    url = ["--base-url", sim.base_url]
    assert main(["run", "--input", "plan.csv", "--report", "apply.csv", *url]) == 0
    undo = ["rollback", "apply.csv", "--report", "undo.csv", *url]
    assert rejected_key(monkeypatch, undo) == 3
    assert main([*undo, "--fresh", "--vocabulary", "long"]) == 0
    assert [sim.state.settings[n]["sending_limit"] for n in (1, 2)] == [
        default_settings(n)["sending_limit"] for n in (1, 2)
    ]
    again = ["retry", "undo.csv", "--report", "again.csv", "--fresh", "--vocabulary", "long"]
    assert main([*again, *url]) == 0
    assert "no failed or not-attempted rows to retry" in capsys.readouterr().out


def test_the_printed_undo_command_works_when_pasted(
    tmp_path: Path,
    sim: SimulatorThread,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    plan(tmp_path, range(1, 3))
    job = tmp_path / "nightly.toml"
    job.write_text(f'input = "plan.csv"\nreport = "out/nightly.csv"\nbase_url = "{sim.base_url}"\n')
    assert main(["run", "nightly.toml", "--rate", "50/1"]) == 0
    assert [sim.state.settings[n]["sending_limit"] for n in (1, 2)] == [11, 12]
    pasted = paste(capsys, capsys.readouterr().err, "(undo with: ", ")\n", tmp_path)
    assert pasted.returncode == 0, pasted.stderr
    assert [sim.state.settings[n]["sending_limit"] for n in (1, 2)] == [
        default_settings(n)["sending_limit"] for n in (1, 2)
    ]
    assert (tmp_path / "out" / "nightly.csv").exists()  # the run's report is still its own


def test_the_undo_command_of_a_run_given_its_input_as_argument_works_when_pasted(
    tmp_path: Path,
    sim: SimulatorThread,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    plan(tmp_path, range(1, 3))
    assert main(["run", "plan.csv", "--report", "out/r.csv", "--base-url", sim.base_url]) == 0
    assert [sim.state.settings[n]["sending_limit"] for n in (1, 2)] == [11, 12]
    pasted = paste(capsys, capsys.readouterr().err, "(undo with: ", ")\n", tmp_path)
    assert pasted.returncode == 0, pasted.stderr
    assert [sim.state.settings[n]["sending_limit"] for n in (1, 2)] == [
        default_settings(n)["sending_limit"] for n in (1, 2)
    ]


def test_unfinished_run_refusal_names_commands_that_work(
    tmp_path: Path,
    sim: SimulatorThread,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    plan(tmp_path, range(1, 3))
    argv = ["run", "--input", "plan.csv", "--report", "r.csv", "--base-url", sim.base_url]
    assert rejected_key(monkeypatch, argv) == 3
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert paste(capsys, err, "or --fresh to start over: ", "\n", tmp_path).returncode == 0
    assert sorted(sim.state.applied) == [1, 2]


@pytest.mark.parametrize(("edited", "choice"), [(False, "--resume"), (True, "--fresh")])
def test_a_plain_rerun_of_an_interrupted_input_is_refused_and_says_how_to_continue(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    edited: bool,
    choice: str,
) -> None:
    """Issue 19: with default (timestamped) report names, a plain re-run started a new backup
    beside the interrupted run's, and rolling back the newest report left the first run's
    changes in place. It is refused as a re-run with the same --report is; either command it
    prints continues the one backup, which a rollback then undoes whole."""
    monkeypatch.chdir(tmp_path)
    plan(tmp_path, range(1, 4))
    ids = (1, 2, 3)
    faults = FaultPlan(scripted={2: ["429"]}, retry_after=1000)  # the first run stops at row 2
    config = SimulatorConfig(api_key=KEY, campaigns=set(range(1, 100)), faults=faults)
    with SimulatorThread(config) as sim:
        url = ["--base-url", sim.base_url]
        argv = ["run", "--input", "plan.csv", *url, "--concurrency", "1", "--max-wait", "5"]
        assert main(argv) == 3
        assert sim.state.settings[1]["sending_limit"] == 11  # applied before the stop
        (first,) = Path("reports").glob("*/report.csv")
        if edited:
            plan(tmp_path, range(1, 4), limit=20)
        capsys.readouterr()
        writes = len(sim.state.writes())

        assert main(argv) == 2
        err = capsys.readouterr().err
        assert f"{journal_path(first)}: an earlier run of plan.csv did not finish" in err
        assert len(err.strip().splitlines()) == 1
        assert len(sim.state.writes()) == writes  # nothing sent
        assert sorted(p.name for p in first.parent.iterdir()) == sorted(
            [first.name, journal_path(first).name, backup_path(first).name]
        )

        if choice == "--resume":
            pasted = paste(capsys, err, "(rows it applied are not sent again): ", " ; or", tmp_path)
        else:
            pasted = paste(capsys, err, "or --fresh to start over: ", "\n", tmp_path)
        assert pasted.returncode == 0, pasted.stderr
        wanted = 20 if edited else 10
        assert [sim.state.settings[n]["sending_limit"] for n in ids] == [wanted + n for n in ids]
        assert sorted(Path("reports").glob("*/*.csv")) == [first]  # one run, one report

        assert main(["rollback", str(first), *url]) == 0
        assert [sim.state.settings[n]["sending_limit"] for n in ids] == [
            default_settings(n)["sending_limit"] for n in ids
        ]


# --- the report of a resumed run shows every change the job applied ------------------------------


@pytest.mark.parametrize("journaled", [True, False])
def test_a_resumed_runs_report_shows_every_applied_change_with_its_values(
    tmp_path: Path, journaled: bool
) -> None:
    """Issue 19: rows the interrupted run applied lost their before/after in the resumed run's
    report; one it applied but could not journal (kill -9 while its answer came in) was
    ``unchanged``, as if the job had not changed it."""
    source = plan(tmp_path, range(1, 4))
    report = tmp_path / "r.csv"
    faults = FaultPlan(scripted={2: ["429"]}, retry_after=1000)  # the first run stops at row 2
    config = SimulatorConfig(api_key=KEY, campaigns=set(range(1, 100)), faults=faults)
    with SimulatorThread(config) as sim:
        argv = ["run", "--input", str(source), "--report", str(report), "--base-url", sim.base_url]
        assert main([*argv, "--concurrency", "1", "--max-wait", "5"]) == 3
        assert sim.state.settings[1]["sending_limit"] == 11
        journal = journal_path(report)
        if not journaled:  # as if killed after row 1 was applied, before its line was written
            lines = journal.read_text().splitlines(keepends=True)
            kept = [line for line in lines if '"campaign_id":1,' not in line]
            assert len(kept) == len(lines) - 1
            journal.write_text("".join(kept))
        assert main([*argv, "--resume"]) == 0
        assert dict(sim.state.applied) == {1: 1, 2: 1, 3: 1}  # none sent twice
    final = pd.read_csv(report, keep_default_na=False)
    assert final["status"].tolist() == ["succeeded"] * 3
    for index, campaign in enumerate((1, 2, 3)):
        before = {"sending_limit": default_settings(campaign)["sending_limit"]}
        assert json.loads(final["before"][index]) == before
        assert json.loads(final["after"][index]) == {"sending_limit": 10 + campaign}
    if not journaled:
        assert final["error"][0] == "applied by the interrupted run: found as this row sets it"


# --- a job file may resume by itself ------------------------------------------------------------


def test_a_job_with_resume_auto_continues_an_interrupted_run_unattended(
    tmp_path: Path, sim: SimulatorThread
) -> None:
    source = plan(tmp_path, range(1, 4))
    reports = tmp_path / "reports"
    other = plan(tmp_path / "other", range(50, 52))
    stranger = unfinished(reports / "nightly-20261120T000000Z.csv", other)  # newest, not ours
    job = tmp_path / "jobs" / "nightly.toml"
    job.parent.mkdir()
    job.write_text(
        'input = "../plan.csv"\nreport = "../reports/nightly-{timestamp}.csv"\n'
        f'resume = "auto"\nbase_url = "{sim.base_url}"\n'
    )
    nights = [datetime(2026, 11, day, 2, 15, tzinfo=UTC) for day in (24, 25, 26)]
    key = {"SMARTLEAD_API_KEY": KEY}

    def night(when: datetime, environ: dict[str, str]) -> int:
        config = build_config(read_job_file(job), {}, when)
        return int(run_job(config, io.StringIO(), environ, Clock(wall=lambda: when)))

    assert night(nights[0], {"SMARTLEAD_API_KEY": "sk-revoked"}) == 3  # interrupted
    first = reports / "nightly-20261124T021500Z.csv"
    assert journal_path(first).exists()
    os.utime(stranger)  # the other input's journal is the newest in the folder

    assert night(nights[1], key) == 0  # continues the 24th's run, into its report
    assert pd.read_csv(first)["status"].tolist() == ["succeeded"] * 3
    assert not journal_path(first).exists()
    assert not (reports / "nightly-20261125T021500Z.csv").exists()
    assert dict(sim.state.applied) == {1: 1, 2: 1, 3: 1}
    assert stranger.exists()
    assert not (reports / "nightly-20261120T000000Z.csv").exists()

    assert night(nights[2], key) == 0  # nothing left unfinished: an ordinary run
    assert (reports / "nightly-20261126T021500Z.csv").exists()
    assert source.exists()


def test_a_job_with_resume_auto_continues_its_interrupted_run_after_an_edit(
    tmp_path: Path, sim: SimulatorThread
) -> None:
    """The edited file's run continues the interrupted one, in its report and its backup, as it
    would with its report named: never a second backup beside the first."""
    plan(tmp_path, range(1, 3))
    reports = tmp_path / "reports"
    job = tmp_path / "nightly.toml"
    job.write_text(
        'input = "plan.csv"\nreport = "reports/nightly-{timestamp}.csv"\n'
        f'resume = "auto"\nbase_url = "{sim.base_url}"\n'
    )

    def night(day: int, key: str) -> int:
        when = datetime(2026, 11, day, 2, 15, tzinfo=UTC)
        config = build_config(read_job_file(job), {}, when)
        return int(
            run_job(config, io.StringIO(), {"SMARTLEAD_API_KEY": key}, Clock(wall=lambda: when))
        )

    assert night(24, "sk-revoked") == 3
    plan(tmp_path, range(1, 3), limit=40)
    assert night(25, KEY) == 0
    assert sorted(p.name for p in reports.iterdir()) == [
        "nightly-20261124T021500Z.csv",
        "nightly-20261124T021500Z.csv.backup.parquet",
    ]
    assert [sim.state.settings[n]["sending_limit"] for n in (1, 2)] == [41, 42]


def test_fresh_starts_a_jobs_unfinished_run_over_and_leaves_nothing_to_resume_later(
    tmp_path: Path, sim: SimulatorThread
) -> None:
    plan(tmp_path, range(1, 3))
    reports = tmp_path / "reports"
    job = tmp_path / "nightly.toml"
    job.write_text(
        'input = "plan.csv"\nreport = "reports/nightly-{timestamp}.csv"\n'
        f'resume = "auto"\nbase_url = "{sim.base_url}"\n'
    )

    def night(day: int, flags: dict[str, Any], key: str) -> int:
        when = datetime(2026, 11, day, 2, 15, tzinfo=UTC)
        config = build_config(read_job_file(job), flags, when)
        return int(
            run_job(config, io.StringIO(), {"SMARTLEAD_API_KEY": key}, Clock(wall=lambda: when))
        )

    assert night(24, {}, "sk-revoked") == 3
    assert night(25, {"fresh": True}, KEY) == 0  # by hand: start it over
    assert sorted(p.name for p in reports.iterdir()) == [
        "nightly-20261124T021500Z.csv",
        "nightly-20261124T021500Z.csv.backup.parquet",
    ]
    assert night(26, {}, KEY) == 0  # the next night is an ordinary run, not a resumption
    assert (reports / "nightly-20261126T021500Z.csv").exists()


@pytest.mark.parametrize(
    ("value", "resume", "auto"),
    [("true", True, False), ("false", False, False), ('"auto"', False, True)],
)
def test_a_job_file_says_resume_true_false_or_auto(
    tmp_path: Path, value: str, resume: bool, auto: bool
) -> None:
    job = tmp_path / "job.toml"
    job.write_text(f'input = "plan.csv"\nresume = {value}\n')
    config = build_config(read_job_file(job), {})
    assert (config.resume, config.auto_resume) == (resume, auto)
    assert build_config(read_job_file(job), {"fresh": True}).resume is False  # the flag wins


def test_a_job_file_with_another_resume_value_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = tmp_path / "job.toml"
    job.write_text('input = "plan.csv"\nresume = "sometimes"\n')
    assert main(["run", str(job), "--dry-run"]) == 2
    assert "resume must be true, false or \"auto\", got 'sometimes'" in capsys.readouterr().err


def test_runs_of_one_input_on_the_embedded_simulator_do_not_lock_each_other_out(
    tmp_path: Path,
) -> None:
    from bulkrunner.commands.resumption import input_lock
    from bulkrunner.errors import RunInProgress

    source = plan(tmp_path, range(1, 3))
    real = build_config({}, {"input": str(source)})
    simulated = build_config({}, {"input": str(source), "simulate": True})
    when = datetime.now(UTC)
    with input_lock(real, when):
        with pytest.raises(RunInProgress), input_lock(real, when):  # a second real run: exit 4
            pass
        with input_lock(simulated, when), input_lock(simulated, when):
            pass  # the demo touches no account: two of it may run at once


def test_resume_of_a_run_that_finished_is_refused_its_report_kept(
    tmp_path: Path, sim: SimulatorThread, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--resume --report R`` with no journal beside R: there is nothing to resume. It used to
    send every row again into R, "found as the interrupted run left them"."""
    source = tmp_path / "plan.csv"
    source.write_text("campaign_id,sending_limit\n11,41\n")
    report = tmp_path / "r.csv"
    base = ["--base-url", sim.base_url, "--report"]
    assert main(["run", str(source), *base, str(report)]) == 0
    kept = report.read_bytes()
    writes = len(sim.state.writes())
    capsys.readouterr()
    for given, why in ((report, "its run finished (bulkrunner retry sends its failed rows again)"),
                       (tmp_path / "none.csv", "no run wrote it")):  # fmt: skip
        assert main(["run", str(source), "--resume", *base, str(given)]) == 2
        assert capsys.readouterr().err.strip() == (
            f"bulkrunner: error: nothing to resume: {given} has no journal: {why}"
        )
    assert report.read_bytes() == kept
    assert len(sim.state.writes()) == writes

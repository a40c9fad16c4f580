"""The ``status`` operation: start, pause or stop campaigns (``POST /campaigns/{id}/status``).

Unit tests for each cell form, the wire body, the state from both GET shapes, changes,
refusals, undo and the backup's list of campaigns a rollback cannot restore; then every command
end to end through ``cli.main`` against the simulator on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from bulkrunner.cli.app import main
from bulkrunner.config.paths import backup_path
from bulkrunner.model import Answer, Change, Rate
from bulkrunner.operations import operation
from bulkrunner.operations.base import Operation, Request, Undo, Wire
from bulkrunner.operations.fields import Field
from bulkrunner.operations.status import STATUS, parse_status
from bulkrunner.output.hints import rollback_command
from bulkrunner.records.backup import read_backup, read_unrestorable, record_backup
from bulkrunner.sending.plan import plan
from bulkrunner.sending.reads import read_current
from bulkrunner.simulator import FaultPlan, SimulatorConfig, SimulatorThread, default_status
from tests.fakes import FakeClock, RecordingSleep, connection

KEY = "sk-status-SENTINEL-77"


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMARTLEAD_API_KEY", KEY)
    monkeypatch.delenv("SMARTLEAD_BASE_URL", raising=False)


def run(*argv: str) -> int:
    return main(list(argv))


# --- cells ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "value"),
    [
        ("START", "START"),
        ("start", "START"),
        (" Paused ", "PAUSED"),
        ("stopped", "STOPPED"),
        ("ACTIVE", "START"),  # what GET shows of a started campaign: written as START
        ("active", "START"),
    ],
)
def test_a_status_cell_is_read_in_any_case_and_active_means_start(cell: str, value: str) -> None:
    assert parse_status(cell) == (value, None)


@pytest.mark.parametrize(
    ("cell", "error"),
    [
        ("pause", "'pause' is not a status (did you mean PAUSED?)"),
        ("STOP", "'STOP' is not a status (did you mean STOPPED?)"),
        ("running", "'running' is not a status (use START, PAUSED, STOPPED)"),
        (
            "drafted",
            "'drafted' cannot be written: no API puts a campaign back to DRAFTED "
            "(use START, PAUSED, STOPPED)",
        ),
        (
            "COMPLETED",
            "'COMPLETED' cannot be written: no API puts a campaign back to COMPLETED "
            "(use START, PAUSED, STOPPED)",
        ),
        (5, "5 is not a status (use START, PAUSED, STOPPED)"),  # a number from Parquet
        (True, "True is not a status (use START, PAUSED, STOPPED)"),
    ],
)
def test_a_bad_status_cell_says_why_and_what_to_use(cell: object, error: str) -> None:
    assert parse_status(cell) == (None, error)


def test_validate_names_the_file_row_and_field_of_each_bad_cell(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "statuses.csv"
    source.write_text("campaign_id,status\n1,start\n2,pause\n3,STOPPED\n4,\n5,drafted\n")
    assert run("validate", str(source), "--operation", "status") == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        f"{source} row 2: status: 'pause' is not a status (did you mean PAUSED?)",
        f"{source} row 3: status: STOPPED cannot be undone (a stopped campaign can never be "
        "started again): run with --allow-stop to stop campaigns",
        f"{source} row 4: nothing to send: every field is blank",
        f"{source} row 5: status: 'drafted' cannot be written: no API puts a campaign back to "
        "DRAFTED (use START, PAUSED, STOPPED)",
        f"{source}: 5 rows, 1 valid, 4 invalid",
    ]
    # with --allow-stop the row that stops a campaign is valid, as with --allow-irreversible,
    # the consent to every change a rollback cannot undo
    for consent in ("--allow-stop", "--allow-irreversible"):
        assert run("validate", str(source), "--operation", "status", consent) == 1
        assert "row 3" not in capsys.readouterr().out


def test_a_status_cell_from_parquet_of_another_type_is_invalid_not_a_crash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "statuses.parquet"
    pd.DataFrame({"campaign_id": [1, 2], "status": [["START"], ["PAUSED", "START"]]}).to_parquet(
        source
    )
    assert run("validate", str(source), "--operation", "status") == 1
    out = capsys.readouterr().out
    assert f"{source} row 1: status: " in out
    assert f"{source} row 2: status: " in out


# --- the wire, the state, changes, refusals, undo ---------------------------------------------


def test_the_operation_is_registered_and_sends_the_reference_names() -> None:
    status = operation("status")
    assert status is STATUS
    assert status.columns == ("status",)
    wire = Wire(allow_stop=True)
    assert status.requests(7, {"status": "START"}, wire) == [
        Request("POST", "/campaigns/7/status", {"status": "START"})
    ]
    assert status.requests(8, {"status": "STOPPED"}, wire) == [
        Request("POST", "/campaigns/8/status", {"status": "STOPPED"})
    ]


def test_stopping_is_refused_by_check_unless_the_run_allows_it() -> None:
    refusal = STATUS.check({"status": "STOPPED"}, Wire())
    assert refusal.startswith("status: STOPPED cannot be undone")
    assert "--allow-stop" in refusal
    assert STATUS.check({"status": "STOPPED"}, Wire(allow_stop=True)) == ""
    assert STATUS.check({"status": "PAUSED"}, Wire()) == ""


class ReadSender:
    """A campaign list and one campaign by id, each in its own GET shape."""

    def __init__(self, listed: list[dict[str, Any]], by_id: Mapping[int, object]) -> None:
        self.listed = listed
        self.by_id = by_id

    async def send(self, request: Request) -> Answer:
        raise AssertionError("nothing is sent while reading")

    async def list_campaigns(self) -> Answer:
        await asyncio.sleep(0)
        return Answer(200, json.dumps(self.listed))

    async def get_campaign(self, campaign_id: int) -> Answer:
        await asyncio.sleep(0)
        return Answer(200, json.dumps(self.by_id[campaign_id]))

    async def read(self, path: str) -> Answer:
        raise AssertionError(f"status needs no per-campaign detail read: {path}")


async def test_the_current_status_is_read_from_the_list_and_from_a_campaign_by_id() -> None:
    listed = [{"id": 11, "name": "A", "status": "ACTIVE", "track_settings": []}]
    sender = ReadSender(listed, {12: {"data": {"id": 12, "status": "paused"}}})  # wrapped
    reading = connection(sender, FakeClock(), RecordingSleep(), [Rate(100, 1)], max_attempts=2)
    current = await read_current(reading, {11, 12}, operation=STATUS)
    assert {cid: STATUS.state(c) for cid, c in current.campaigns.items()} == {
        11: {"status": "ACTIVE"},
        12: {"status": "PAUSED"},
    }
    assert "track_settings" not in current.campaigns[11]  # only what status reads is kept


@pytest.mark.parametrize(
    ("server", "wanted", "changes"),
    [
        ("ACTIVE", "START", {}),  # START is what gives ACTIVE: unchanged
        ("active", "START", {}),
        ("PAUSED", "PAUSED", {}),
        ("STOPPED", "STOPPED", {}),
        ("ACTIVE", "PAUSED", {"status": Change("ACTIVE", "PAUSED")}),
        ("PAUSED", "START", {"status": Change("PAUSED", "START")}),
        ("DRAFTED", "START", {"status": Change("DRAFTED", "START")}),
        (None, "START", {"status": Change(None, "START")}),  # the campaign shows no status
    ],
)
def test_changes_compare_start_with_active(
    server: str | None, wanted: str, changes: dict[str, Change]
) -> None:
    campaign = {"id": 1} if server is None else {"id": 1, "status": server}
    assert STATUS.changes({"status": wanted}, campaign) == changes


@pytest.mark.parametrize(
    ("server", "wanted", "refusal"),
    [
        ("STOPPED", "START", "it is STOPPED, and a stopped campaign cannot be started"),
        ("STOPPED", "PAUSED", "it is STOPPED, and a stopped campaign cannot be paused"),
        ("COMPLETED", "START", "it is COMPLETED, and a completed campaign cannot be started"),
        ("completed", "STOPPED", "it is COMPLETED, and a completed campaign cannot be stopped"),
        ("STOPPED", "STOPPED", ""),  # already as wanted: unchanged, not refused
        ("DRAFTED", "START", ""),  # the server decides (it needs a schedule and an account)
        ("PAUSED", "STOPPED", ""),
    ],
)
def test_a_stopped_or_completed_campaign_is_refused_before_sending(
    server: str, wanted: str, refusal: str
) -> None:
    assert STATUS.refuse({"status": wanted}, {"id": 1, "status": server}) == refusal
    assert STATUS.refuse({"status": wanted}, None) == ""  # state unknown: nothing to refuse on


def test_a_row_an_interrupted_run_applied_is_shown_from_the_status_the_backup_holds() -> None:
    active = {"id": 1, "status": "ACTIVE"}
    assert STATUS.applied_changes({"status": "START"}, {"status": "PAUSED"}, active) == {
        "status": Change("PAUSED", "START")
    }
    assert STATUS.applied_changes({"status": "START"}, {"status": "START"}, active) == {}
    assert STATUS.applied_changes({"status": "PAUSED"}, {}, active) == {}  # nothing backed up


@pytest.mark.parametrize(
    ("before", "after", "undo"),
    [
        ("ACTIVE", "PAUSED", Undo({"status": "START"})),
        ("PAUSED", "START", Undo({"status": "PAUSED"})),
        (
            "DRAFTED",
            "START",
            Undo({}, "it was DRAFTED before the run; no API puts a campaign back to that"),
        ),
        (
            "COMPLETED",
            "START",
            Undo({}, "it was COMPLETED before the run; no API puts a campaign back to that"),
        ),
        (
            "ACTIVE",
            "STOPPED",
            Undo(
                {}, "the run stops it (it was ACTIVE), and a stopped campaign cannot be restarted"
            ),
        ),
        (None, "PAUSED", Undo({}, "its status before the run could not be read")),
        (" ", "PAUSED", Undo({}, "its status before the run could not be read")),
    ],
)
def test_undo_restores_active_and_paused_and_says_why_not_the_rest(
    before: str | None, after: str, undo: Undo
) -> None:
    assert STATUS.undo({"status": Change(before, after)}) == undo


def test_export_gives_an_input_row_and_leaves_out_what_cannot_be_written() -> None:
    assert STATUS.export({"id": 1, "status": "ACTIVE"}) == {"status": "START"}
    assert STATUS.export({"id": 1, "status": "PAUSED"}) == {"status": "PAUSED"}
    assert STATUS.export({"id": 1, "status": "DRAFTED"}) == {}


def test_plan_fails_rows_of_stopped_campaigns_with_the_reason() -> None:
    from bulkrunner.model import Row, Status
    from bulkrunner.sending.reads import Current

    rows = [Row(1, 31, {"status": "START"}), Row(2, 32, {"status": "START"})]
    current = Current({31: {"id": 31, "status": "STOPPED"}, 32: {"id": 32, "status": "ACTIVE"}})
    planned = plan(rows, current, skip=True, require_backup=True, operation=STATUS)
    assert planned.send == []
    assert planned.unchanged[2].status is Status.UNCHANGED
    assert planned.refused[1].error == (
        "campaign 31: it is STOPPED, and a stopped campaign cannot be started; not sent"
    )


# --- the backup keeps what it cannot restore ---------------------------------------------------


def test_the_backup_keeps_each_campaign_it_cannot_restore_with_why(tmp_path: Path) -> None:
    path = tmp_path / "r.csv.backup.parquet"
    changes = {
        1: {"status": Change("ACTIVE", "PAUSED")},
        5: {"status": Change("DRAFTED", "START")},
        8: {"status": Change("ACTIVE", "STOPPED")},
    }
    recorded = record_backup(path, changes, keep=False, operation=STATUS)
    assert (recorded.campaigns, recorded.unknown, recorded.total) == (1, 0, 1)
    assert recorded.unrestorable == {
        5: "it was DRAFTED before the run; no API puts a campaign back to that",
        8: "the run stops it (it was ACTIVE), and a stopped campaign cannot be restarted",
    }
    assert read_backup(path) == {1: {"status": "START"}}
    assert read_unrestorable(path) == recorded.unrestorable


def test_a_resumed_run_keeps_the_first_record_of_a_campaign_it_cannot_restore(
    tmp_path: Path,
) -> None:
    """Campaign 5 was a draft before the interrupted run started it: resumed, the run sees it
    ACTIVE, but a rollback must still not "restore" ACTIVE, the run's own doing."""
    path = tmp_path / "r.csv.backup.parquet"
    record_backup(path, {5: {"status": Change("DRAFTED", "START")}}, keep=False, operation=STATUS)
    again = {5: {"status": Change("ACTIVE", "PAUSED")}, 6: {"status": Change("PAUSED", "START")}}
    recorded = record_backup(path, again, keep=True, operation=STATUS)
    assert recorded.unrestorable == {}  # nothing new: 5 was recorded by the first run
    assert read_backup(path) == {6: {"status": "PAUSED"}}
    assert read_unrestorable(path) == {
        5: "it was DRAFTED before the run; no API puts a campaign back to that"
    }
    fresh = record_backup(path, again, keep=False, operation=STATUS)  # a new run: a new ledger
    assert fresh.unrestorable == {}
    assert read_unrestorable(path) == {}


class _Partly(Operation):
    """An operation whose undo restores one column and cannot restore the other."""

    name = "partly"
    fields = (Field("kept", "custom", arrow="int64"), Field("lost", "custom", arrow="int64"))

    def undo(self, changes: Mapping[str, Change]) -> Undo:
        return Undo({"kept": changes["kept"].before}, "lost cannot be put back")


def test_a_change_undone_in_part_keeps_both_its_values_and_its_reason(tmp_path: Path) -> None:
    path = tmp_path / "r.csv.backup.parquet"
    changes = {4: {"kept": Change(1, 2), "lost": Change(3, 4)}}
    recorded = record_backup(path, changes, keep=False, operation=_Partly())
    assert (recorded.campaigns, recorded.unknown) == (1, 0)
    assert read_backup(path) == {4: {"kept": 1}}
    assert read_unrestorable(path) == {4: "lost cannot be put back"}


def test_the_rollback_hint_leaves_out_allow_stop_which_rollback_refuses(tmp_path: Path) -> None:
    from bulkrunner.config.run_config import RunConfig

    config = RunConfig(
        Path("in.csv"),
        command=("run", "in.csv", "--operation", "status", "--allow-stop", "--rate", "5/1"),
    )
    hint = rollback_command(config, tmp_path / "r.csv.backup.parquet")
    assert "--allow-stop" not in hint
    assert hint.endswith("--operation status --rate 5/1")


# --- every command end to end against the simulator --------------------------------------------

ACTIVE_ID, PAUSED_ID, DRAFTED_ID, TO_STOP_ID, COMPLETED_ID = 1, 3, 5, 8, 9


def test_seeded_statuses_are_what_the_end_to_end_tests_assume() -> None:
    assert [default_status(i) for i in (ACTIVE_ID, PAUSED_ID, DRAFTED_ID, TO_STOP_ID)] == [
        "ACTIVE",
        "PAUSED",
        "DRAFTED",
        "ACTIVE",
    ]


def statuses(sim: SimulatorThread, ids: tuple[int, ...]) -> dict[int, str]:
    return {cid: sim.state.statuses.get(cid, default_status(cid)) for cid in ids}


def test_run_skip_unchanged_and_rollback_put_back_what_the_api_allows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "statuses.csv"
    source.write_text(
        "campaign_id,status\n"
        f"{ACTIVE_ID},paused\n"
        f"{PAUSED_ID},Active\n"
        f"{DRAFTED_ID},START\n"
        f"{TO_STOP_ID},stopped\n"
        f"{COMPLETED_ID},PAUSED\n"
    )
    ids = (ACTIVE_ID, PAUSED_ID, DRAFTED_ID, TO_STOP_ID, COMPLETED_ID)
    report = tmp_path / "apply.csv"
    with SimulatorThread(SimulatorConfig(api_key=KEY, campaigns=set(ids))) as sim:
        sim.state.statuses[COMPLETED_ID] = "COMPLETED"
        common = ("--operation", "status", "--base-url", sim.base_url)
        code = run("run", str(source), "--report", str(report), "--allow-stop", *common)
        assert code == 1  # the completed campaign's row failed, before sending
        assert statuses(sim, ids) == {
            ACTIVE_ID: "PAUSED",
            PAUSED_ID: "ACTIVE",
            DRAFTED_ID: "ACTIVE",
            TO_STOP_ID: "STOPPED",
            COMPLETED_ID: "COMPLETED",
        }
        assert sorted(r.campaign_id or 0 for r in sim.state.writes("status")) == sorted(ids[:4])
        logged = capsys.readouterr().err
        assert (
            f"a rollback could not restore 1 campaign ({DRAFTED_ID}): it was DRAFTED before the "
            "run; no API puts a campaign back to that" in logged
        )
        assert f"a rollback could not restore 1 campaign ({TO_STOP_ID}): the run stops it" in logged
        hint = logged.split("undo with: ")[1].split(")\n")[0]
        assert "--allow-stop" not in hint

        applied = pd.read_csv(report, dtype=str, keep_default_na=False)
        assert list(applied.columns[:4]) == ["campaign_id", "wanted_status", "row", "status"]
        assert applied["status"].tolist() == ["succeeded"] * 4 + ["failed"]
        assert applied["error"].tolist()[4] == (
            f"campaign {COMPLETED_ID}: it is COMPLETED, and a completed campaign cannot be "
            "paused; not sent"
        )
        assert json.loads(applied["before"][0]) == {"status": "ACTIVE"}
        assert json.loads(applied["after"][0]) == {"status": "PAUSED"}

        # the same file again: every row already as wanted, nothing sent
        sent = len(sim.state.writes())
        again = tmp_path / "again.csv"
        assert run("run", str(source), "--report", str(again), "--allow-stop", *common) == 1
        assert len(sim.state.writes()) == sent
        assert pd.read_csv(again)["status"].tolist() == ["unchanged"] * 4 + ["failed"]

        capsys.readouterr()
        undo = tmp_path / "undo.csv"
        # the hint as printed, pasted (with another report name)
        words = shlex.split(hint)[1:]
        assert run(*words, "--report", str(undo)) == 1  # two campaigns stay as the run left them
        out = capsys.readouterr().out.splitlines()
        assert out[:2] == [
            f"campaign {DRAFTED_ID}: cannot be restored: it was DRAFTED before the run; no API "
            "puts a campaign back to that",
            f"campaign {TO_STOP_ID}: cannot be restored: the run stops it (it was ACTIVE), and a "
            "stopped campaign cannot be restarted",
        ]
        assert out[-1] == "not restored: 2 campaigns (listed above)"
        assert statuses(sim, ids) == {
            ACTIVE_ID: "ACTIVE",  # restored by writing START
            PAUSED_ID: "PAUSED",
            DRAFTED_ID: "ACTIVE",  # no API makes it a draft again
            TO_STOP_ID: "STOPPED",  # final
            COMPLETED_ID: "COMPLETED",
        }
    restored = pd.read_csv(undo)
    assert restored["campaign_id"].tolist() == [ACTIVE_ID, PAUSED_ID]
    assert restored["wanted_status"].tolist() == ["START", "PAUSED"]
    assert restored["status"].tolist() == ["succeeded", "succeeded"]


def test_stopping_without_allow_stop_sends_nothing_for_that_row(tmp_path: Path) -> None:
    source = tmp_path / "stop.csv"
    source.write_text(f"campaign_id,status\n{TO_STOP_ID},STOPPED\n{ACTIVE_ID},PAUSED\n")
    report = tmp_path / "stop-report.csv"
    with SimulatorThread(SimulatorConfig(api_key=KEY)) as sim:
        code = run(
            "run", str(source), "--operation", "status", "--report", str(report),
            "--base-url", sim.base_url,
        )  # fmt: skip
        assert code == 1
        assert [r.campaign_id for r in sim.state.writes("status")] == [ACTIVE_ID]
        assert statuses(sim, (TO_STOP_ID,)) == {TO_STOP_ID: "ACTIVE"}
    result = pd.read_csv(report)
    assert result["status"].tolist() == ["invalid", "succeeded"]
    assert "run with --allow-stop" in result["error"][0]


def test_a_dry_run_previews_the_status_requests(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "s.csv"
    source.write_text("campaign_id,status\n41,active\n42,paused\n")
    report = tmp_path / "dry.csv"
    assert (
        run("run", str(source), "--operation", "status", "--dry-run", "--report", str(report)) == 0
    )
    out = capsys.readouterr().out
    assert '  row 1: POST /campaigns/41/status {"status": "START"}' in out
    assert '  row 2: POST /campaigns/42/status {"status": "PAUSED"}' in out
    assert pd.read_csv(report)["status"].tolist() == ["dry_run", "dry_run"]
    # the report, as an input, gives its wanted_status back as the status column
    assert run("validate", str(report), "--operation", "status") == 0
    assert "2 rows, 2 valid, 0 invalid" in capsys.readouterr().out


def test_verify_reads_active_back_as_the_start_that_was_sent(tmp_path: Path) -> None:
    source = tmp_path / "s.csv"
    source.write_text(f"campaign_id,status\n{PAUSED_ID},START\n{ACTIVE_ID},PAUSED\n")
    report = tmp_path / "v.csv"
    with SimulatorThread(SimulatorConfig(api_key=KEY)) as sim:
        code = run(
            "run", str(source), "--operation", "status", "--verify", "--report", str(report),
            "--base-url", sim.base_url,
        )  # fmt: skip
        assert code == 0
        assert statuses(sim, (PAUSED_ID, ACTIVE_ID)) == {PAUSED_ID: "ACTIVE", ACTIVE_ID: "PAUSED"}
    assert pd.read_csv(report)["status"].tolist() == ["succeeded", "succeeded"]


def test_retry_sends_the_failed_rows_of_a_status_report_again(tmp_path: Path) -> None:
    source = tmp_path / "s.csv"
    source.write_text(f"campaign_id,status\n{ACTIVE_ID},PAUSED\n{TO_STOP_ID},paused\n")
    report = tmp_path / "first.csv"
    faults = FaultPlan(scripted={TO_STOP_ID: ["503"]})
    with SimulatorThread(SimulatorConfig(api_key=KEY, faults=faults)) as sim:
        common = ("--operation", "status", "--base-url", sim.base_url)
        assert run("run", str(source), "--report", str(report), "--max-attempts", "1", *common) == 1
        assert pd.read_csv(report)["status"].tolist() == ["succeeded", "failed"]
        retried = tmp_path / "retried.csv"
        assert run("retry", str(report), "--report", str(retried), *common) == 0
        assert statuses(sim, (ACTIVE_ID, TO_STOP_ID)) == {ACTIVE_ID: "PAUSED", TO_STOP_ID: "PAUSED"}
    again = pd.read_csv(retried)
    assert again["row"].tolist() == [2]
    assert again["wanted_status"].tolist() == ["paused"]
    assert again["status"].tolist() == ["succeeded"]


def test_an_interrupted_status_run_resumes_and_rolls_back_in_full(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The first row is applied, then an outage aborts the run (exit 3); --resume finishes it,
    and the rollback restores the campaign changed before the interruption too. (The outage:
    the second row's 429 asks for 4 s, which would carry it past the 2 s timeout.)"""
    ids = (21, 22, 23)  # ACTIVE, ACTIVE, ACTIVE
    assert [default_status(i) for i in ids] == ["ACTIVE"] * 3
    source = tmp_path / "s.csv"
    source.write_text("campaign_id,status\n21,PAUSED\n22,PAUSED\n23,PAUSED\n")
    report = tmp_path / "apply.csv"
    faults = FaultPlan(scripted={22: ["429"]}, retry_after=4.0)
    config = SimulatorConfig(api_key=KEY, campaigns=set(ids), faults=faults)
    sending = ("--operation", "status", "--report", str(report), "--concurrency", "1")
    outage = ("--outage-timeout", "2", "--timeout", "2")
    with SimulatorThread(config) as sim:
        base = ("--base-url", sim.base_url)
        assert run("run", str(source), *sending, *outage, *base) == 3
        assert statuses(sim, ids) == {21: "PAUSED", 22: "ACTIVE", 23: "ACTIVE"}
        assert run("run", str(source), *sending, "--resume", *base) == 0
        assert statuses(sim, ids) == {21: "PAUSED", 22: "PAUSED", 23: "PAUSED"}
        capsys.readouterr()
        assert run("rollback", str(report), "--report", str(tmp_path / "undo.csv"), *base) == 0
        assert "cannot be restored" not in capsys.readouterr().out
        assert statuses(sim, ids) == {21: "ACTIVE", 22: "ACTIVE", 23: "ACTIVE"}
    assert read_backup(backup_path(report)) == {cid: {"status": "START"} for cid in ids}


def test_a_job_file_chooses_the_status_operation_and_allows_stopping(tmp_path: Path) -> None:
    source = tmp_path / "s.csv"
    source.write_text(f"campaign_id,status\n{TO_STOP_ID},STOPPED\n")
    job = tmp_path / "stop.toml"
    with SimulatorThread(SimulatorConfig(api_key=KEY)) as sim:
        job.write_text(
            f'input = "{source}"\nreport = "{tmp_path / "job.csv"}"\noperation = "status"\n'
            f'allow_stop = true\nbase_url = "{sim.base_url}"\n'
        )
        assert run("run", str(job)) == 0
        assert statuses(sim, (TO_STOP_ID,)) == {TO_STOP_ID: "STOPPED"}


def test_rolling_back_a_backup_with_nothing_restorable_sends_nothing_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "s.csv"
    source.write_text(f"campaign_id,status\n{DRAFTED_ID},START\n")
    report = tmp_path / "start.csv"
    with SimulatorThread(SimulatorConfig(api_key=KEY)) as sim:
        common = ("--base-url", sim.base_url)
        assert (
            run("run", str(source), "--operation", "status", "--report", str(report), *common) == 0
        )
        assert statuses(sim, (DRAFTED_ID,)) == {DRAFTED_ID: "ACTIVE"}
        sent = len(sim.state.requests)
        capsys.readouterr()
        assert run("rollback", str(report), "--report", str(tmp_path / "undo.csv"), *common) == 1
        assert len(sim.state.requests) == sent  # nothing read, nothing written
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"campaign {DRAFTED_ID}: cannot be restored: it was DRAFTED before the run; no API puts "
        "a campaign back to that",
        f"{backup_path(report)}: nothing the rollback can restore",
        "not restored: 1 campaign (listed above)",
    ]

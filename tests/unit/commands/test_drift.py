"""A rollback that respects later changes: it reads each campaign first, and restores it only if
it still has what the run set (recorded in the backup's ``set_by_run``); a campaign changed
since is left as it is, reported ``drifted`` (its value now and the run's), counted, exit 1;
``--force`` restores it anyway. ``rollback --dry-run`` and a plan of the backup show the drift.

Whole runs in this process, on a fake clock, against the embedded simulator.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest
from aiohttp import web

from bulkrunner.commands.plan import plan_job
from bulkrunner.commands.rollback import rollback_job
from bulkrunner.commands.run import run_job
from bulkrunner.config.paths import backup_path
from bulkrunner.errors import ExitCode, UsageError
from bulkrunner.model import Change, Rate
from bulkrunner.operations.email_accounts import EMAIL_ACCOUNTS
from bulkrunner.operations.fields import SET_BY_RUN
from bulkrunner.records.backup import read_backup, record_backup
from bulkrunner.records.expected import read_expected
from bulkrunner.simulator import SimulatorConfig, SimulatorThread, default_settings
from tests.fakes import FakeClock, JobCommands
from tests.hostile import ServerThread

KEY = "sk-drift-SENTINEL-31"
ENVIRON = {"SMARTLEAD_API_KEY": KEY}
IDS = [202, 204, 207]  # ACTIVE campaigns of the simulator
LATER = 204  # the campaign a later run changes


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sim(clock: FakeClock) -> Any:
    config = SimulatorConfig(api_key=KEY, campaigns=set(IDS), rates=[Rate(100, 1)])
    with SimulatorThread(config, clock=clock) as running:
        yield running


def csv(path: Path, header: str, *lines: str) -> Path:
    path.write_text("\n".join([header, *lines]) + "\n")
    return path


command = JobCommands(ENVIRON)


def said() -> str:
    return command.out


def limit(sim: SimulatorThread, campaign: int) -> int:
    return int(sim.state.settings.get(campaign, default_settings(campaign))["sending_limit"])


def settings_writes(sim: SimulatorThread, campaign: int) -> int:
    return sum(1 for r in sim.state.writes("settings") if f"/campaigns/{campaign}/" in r.path)


def report_of(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


@pytest.fixture
def changed_later(tmp_path: Path, clock: FakeClock, sim: SimulatorThread) -> Path:
    """A run sets sending_limit 61 in three campaigns; a later run sets 44 in one of them.
    The first run's report."""
    first = tmp_path / "first.csv"
    source = csv(tmp_path / "in.csv", "campaign_id,sending_limit", *(f"{c},61" for c in IDS))
    assert command(run_job, clock, sim, source, first) == ExitCode.OK
    later = csv(tmp_path / "later.csv", "campaign_id,sending_limit", f"{LATER},44")
    assert command(run_job, clock, sim, later, tmp_path / "later-report.csv") == ExitCode.OK
    assert [limit(sim, c) for c in IDS] == [61, 44, 61]
    return first


def test_a_campaign_changed_after_the_run_is_left_alone_reported_and_exits_1(
    tmp_path: Path, clock: FakeClock, sim: SimulatorThread, changed_later: Path
) -> None:
    undo = tmp_path / "undo.csv"
    writes = settings_writes(sim, LATER)
    assert command(rollback_job, clock, sim, changed_later, undo) == ExitCode.ROWS_FAILED
    # the later change is kept, the rest restored
    assert limit(sim, LATER) == 44
    assert settings_writes(sim, LATER) == writes  # not even sent
    assert [limit(sim, c) for c in IDS if c != LATER] == [
        default_settings(c)["sending_limit"] for c in IDS if c != LATER
    ]
    report = report_of(undo)
    assert report["status"].tolist() == ["succeeded", "drifted", "succeeded"]
    assert report["error"].tolist()[1] == (
        f"campaign {LATER} changed since the run: sending_limit is 44 now, the run set 61; "
        "left as it is (--force restores it)"
    )
    # the report carries what the run set, beside the rollback's own before and after
    assert json.loads(report[SET_BY_RUN].tolist()[1]) == {"sending_limit": 61}
    assert "rows: 3 (2 succeeded, 1 drifted)" in said()


def test_a_rollback_stopped_by_an_outage_as_it_reads_says_no_campaign_changed(
    tmp_path: Path, clock: FakeClock, changed_later: Path
) -> None:
    """A campaign not read is not one that changed since the run: its row is not_attempted,
    resumable, not drifted with a --force to restore it all the same."""

    async def down(request: web.Request) -> web.Response:
        return web.json_response({"error": "maintenance"}, status=503)

    undo = tmp_path / "undo.csv"
    with ServerThread(down) as server:
        there = SimpleNamespace(base_url=f"{server.url}/api/v1")
        code = command(rollback_job, clock, there, changed_later, undo, outage_timeout=30)
    assert code == ExitCode.ABORTED
    report = report_of(undo)
    assert report["status"].tolist() == ["not_attempted"] * 3
    assert report["error"].tolist()[0].startswith("run aborted: reading the current settings, ")
    assert "--force" not in said()
    assert "changed since the run" not in said()


def test_force_restores_a_campaign_changed_after_the_run(
    tmp_path: Path, clock: FakeClock, sim: SimulatorThread, changed_later: Path
) -> None:
    undo = tmp_path / "undo.csv"
    assert command(rollback_job, clock, sim, changed_later, undo, force=True) == ExitCode.OK
    assert [limit(sim, c) for c in IDS] == [default_settings(c)["sending_limit"] for c in IDS]
    report = report_of(undo)
    assert report["status"].tolist() == ["succeeded"] * 3
    assert json.loads(report["before"].tolist()[1]) == {"sending_limit": 44}  # as it was found


def test_rollback_dry_run_shows_the_drift_and_sends_nothing(
    tmp_path: Path, clock: FakeClock, sim: SimulatorThread, changed_later: Path
) -> None:
    writes = len(sim.state.writes())
    undo = tmp_path / "undo.csv"
    assert command(rollback_job, clock, sim, changed_later, undo, dry_run=True) == 1
    assert len(sim.state.writes()) == writes
    assert limit(sim, LATER) == 44
    lines = said().splitlines()
    assert (
        f"campaign {LATER} changed since the run: sending_limit is 44 now, the run set 61; "
        "left as it is (--force restores it)"
    ) in lines
    assert "rows to change: 2, unchanged: 0, invalid: 0, missing from the account: 0, " in (said())
    assert "drifted: 1 (left as they are)" in said()
    assert report_of(undo)["status"].tolist() == ["dry_run", "drifted", "dry_run"]
    # with --force, the same plan would restore it too
    forced = tmp_path / "forced.csv"
    assert command(rollback_job, clock, sim, changed_later, forced, dry_run=True, force=True) == 0
    assert report_of(forced)["status"].tolist() == ["dry_run"] * 3
    assert len(sim.state.writes()) == writes


def test_a_plan_of_the_backup_shows_the_drift(
    tmp_path: Path, clock: FakeClock, sim: SimulatorThread, changed_later: Path
) -> None:
    backup = backup_path(changed_later)
    report = tmp_path / "planned.csv"
    assert command(plan_job, clock, sim, backup, report) == ExitCode.ROWS_FAILED
    assert f"campaign {LATER} changed since the run: sending_limit is 44 now" in said()
    assert report_of(report)["status"].tolist() == ["dry_run", "drifted", "dry_run"]


def test_a_campaign_put_back_by_hand_is_unchanged_not_drifted(
    tmp_path: Path, clock: FakeClock, sim: SimulatorThread
) -> None:
    """Someone restored one campaign already: nothing to do for it, nothing drifted."""
    first = tmp_path / "first.csv"
    source = csv(tmp_path / "in.csv", "campaign_id,sending_limit", *(f"{c},61" for c in IDS))
    assert command(run_job, clock, sim, source, first) == ExitCode.OK
    was = default_settings(LATER)["sending_limit"]
    back = csv(tmp_path / "back.csv", "campaign_id,sending_limit", f"{LATER},{was}")
    assert command(run_job, clock, sim, back, tmp_path / "back-report.csv") == ExitCode.OK
    undo = tmp_path / "undo.csv"
    assert command(rollback_job, clock, sim, first, undo) == ExitCode.OK
    assert report_of(undo)["status"].tolist() == ["succeeded", "unchanged", "succeeded"]


def test_a_backup_that_does_not_record_what_its_run_set_is_refused_unless_forced(
    tmp_path: Path, clock: FakeClock, sim: SimulatorThread, changed_later: Path
) -> None:
    """A backup of an earlier bulkrunner (no ``set_by_run``): a rollback cannot tell a later
    change, so it sends nothing (exit 2, naming --force); --force restores every campaign."""
    backup = backup_path(changed_later)
    table = pq.read_table(backup)
    pq.write_table(table.drop_columns([SET_BY_RUN]), backup)  # as an earlier version wrote it
    writes = len(sim.state.writes())
    with pytest.raises(UsageError) as refused:
        command(rollback_job, clock, sim, changed_later, tmp_path / "undo.csv")
    assert "does not record what its run set" in str(refused.value)
    assert f"bulkrunner rollback {backup}" in str(refused.value)
    assert str(refused.value).endswith("--force); nothing was sent")
    assert len(sim.state.writes()) == writes
    # its plan says it cannot show the drift, and shows the rest
    planned = tmp_path / "planned.csv"
    assert command(rollback_job, clock, sim, changed_later, planned, dry_run=True) == 0
    assert report_of(planned)["status"].tolist() == ["dry_run"] * 3
    undo = tmp_path / "forced.csv"
    assert command(rollback_job, clock, sim, changed_later, undo, force=True) == ExitCode.OK
    assert [limit(sim, c) for c in IDS] == [default_settings(c)["sending_limit"] for c in IDS]


def test_a_backup_naming_an_operation_bulkrunner_does_not_know_is_refused(
    tmp_path: Path, clock: FakeClock, sim: SimulatorThread, changed_later: Path
) -> None:
    """An edited backup's operation ended a rollback with an internal error."""
    backup = backup_path(changed_later)
    table = pq.read_table(backup)
    metadata = {**table.schema.metadata, b"bulkrunner.operation": b"bogus"}
    pq.write_table(table.replace_schema_metadata(metadata), backup)
    writes = len(sim.state.writes())
    with pytest.raises(UsageError) as refused:
        command(rollback_job, clock, sim, changed_later, tmp_path / "undo.csv")
    assert str(refused.value) == (
        f"{backup}: cannot read the backup (unknown operation 'bogus' (known: settings, "
        "schedule, status, email-accounts, leads, lead-status))"
    )
    assert len(sim.state.writes()) == writes


def test_other_operations_drift_too(tmp_path: Path, clock: FakeClock, sim: SimulatorThread) -> None:
    """schedule and email-accounts: what the run set is compared as each operation reads it."""
    first = tmp_path / "first.csv"
    hours = csv(tmp_path / "hours.csv", "campaign_id,start_hour", *(f"{c},10:00" for c in IDS))
    assert command(run_job, clock, sim, hours, first, operation="schedule") == ExitCode.OK
    later = csv(tmp_path / "later.csv", "campaign_id,start_hour", f"{LATER},11:30")
    assert command(run_job, clock, sim, later, tmp_path / "l.csv", operation="schedule") == 0
    undo = tmp_path / "undo.csv"
    assert command(rollback_job, clock, sim, first, undo) == ExitCode.ROWS_FAILED
    assert report_of(undo)["status"].tolist() == ["succeeded", "drifted", "succeeded"]
    assert report_of(undo)["error"].tolist()[1] == (
        f"campaign {LATER} changed since the run: start_hour is 11:30 now, the run set 10:00; "
        "left as it is (--force restores it)"
    )
    assert sim.state.schedules[LATER].start_hour == "11:30"
    # email accounts: the run attaches 9; later another is attached
    accounts = tmp_path / "accounts.csv"
    add = csv(tmp_path / "add.csv", "campaign_id,add", f"{LATER},9")
    assert command(run_job, clock, sim, add, accounts, operation="email-accounts") == 0
    now = sim.state.email_accounts[LATER]
    assert 9 in now
    sim.state.email_accounts[LATER] = [*now, 30]
    undo = tmp_path / "undo-accounts.csv"
    assert command(rollback_job, clock, sim, accounts, undo) == ExitCode.ROWS_FAILED
    assert report_of(undo)["error"].tolist() == [
        f"campaign {LATER} changed since the run: email_accounts is "
        f"[{', '.join(map(str, [*now, 30]))}] now, the run set [{', '.join(map(str, now))}]; "
        "left as it is (--force restores it)"
    ]
    assert sim.state.email_accounts[LATER] == [*now, 30]


def test_a_rollback_interrupted_between_its_add_and_its_remove_is_not_drift(
    tmp_path: Path, clock: FakeClock, sim: SimulatorThread
) -> None:
    """An email-accounts row is two requests, its adds first: a rollback killed between them
    leaves the campaign half restored, which its resumption must finish, not call a change of
    someone else's. An account neither the run nor the rollback attaches is still drift."""
    report = tmp_path / "accounts.csv"
    first = [1, 2]
    sim.state.email_accounts[LATER] = first
    swap = csv(tmp_path / "swap.csv", "campaign_id,add,remove", f"{LATER},9;11,{first[0]}")
    assert command(run_job, clock, sim, swap, report, operation="email-accounts") == 0
    run_set = list(sim.state.email_accounts[LATER])
    assert {9, 11} <= set(run_set)
    assert first[0] not in run_set
    # the interrupted rollback re-attached the removed account, and did not detach 9 and 11 yet
    sim.state.email_accounts[LATER] = sorted({*run_set, first[0]})
    undo = tmp_path / "undo.csv"
    assert command(rollback_job, clock, sim, report, undo) == ExitCode.OK, said()
    assert sim.state.email_accounts[LATER] == sorted(first)
    # the same halfway state with another account attached besides is someone else's change
    again = tmp_path / "again.csv"
    assert command(run_job, clock, sim, swap, again, operation="email-accounts") == ExitCode.OK
    sim.state.email_accounts[LATER] = sorted({*sim.state.email_accounts[LATER], first[0], 30})
    undo = tmp_path / "undo-again.csv"
    assert command(rollback_job, clock, sim, again, undo) == ExitCode.ROWS_FAILED
    assert report_of(undo)["status"].tolist() == ["drifted"]


def test_a_resumed_run_records_what_it_sets_over_what_the_earlier_run_set(
    tmp_path: Path,
) -> None:
    """The ledger keeps each field's first value before the run, and what the job set last."""
    path = tmp_path / "b.parquet"
    record_backup(path, {7: {"sending_limit": Change(10, 20)}}, keep=False)
    record_backup(
        path,
        {7: {"sending_limit": Change(20, 30), "unsubscribe_text": Change("", "Bye")}},
        keep=True,
    )
    assert read_backup(path) == {7: {"sending_limit": 10, "unsubscribe_text": ""}}
    assert read_expected(path, SET_BY_RUN, [7]) == {
        7: {"sending_limit": 30, "unsubscribe_text": "Bye"}
    }
    # email accounts: the attached ids after the run, as the change shows them
    accounts = tmp_path / "a.parquet"
    record_backup(
        accounts,
        {8: {"email_accounts": Change([1, 2], [2, 3])}},
        keep=False,
        operation=EMAIL_ACCOUNTS,
    )
    assert read_backup(accounts) == {8: {"add": [1], "remove": [3]}}
    assert read_expected(accounts, SET_BY_RUN, [8, 9]) == {8: {"email_accounts": [2, 3]}}

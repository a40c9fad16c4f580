"""Run history and change history in the state store (``bulkrunner.records.history``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bulkrunner.config.folders import account_id
from bulkrunner.records.history import ChangeRecord, History, RunAccount
from bulkrunner.records.store import StateStore

KEY = "sk-history-SENTINEL-5e5e"
ACME = account_id("https://server.smartlead.ai/api/v1", KEY)
OTHER = account_id("https://server.smartlead.ai/api/v1", "sk-other-key-222333")
T0 = 1_800_000_000.0


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    with StateStore.open(tmp_path / "state") as opened:
        yield opened


def test_a_run_is_recorded_as_it_starts_and_completed_as_it_ends(
    store: StateStore, tmp_path: Path
) -> None:
    history = History(store)
    run = history.start_run(
        "run",
        T0,
        operation="settings",
        input_path=tmp_path / "plan.csv",
        input_sha256="ab" * 32,
        accounts=[RunAccount("acme", ACME), RunAccount("other", OTHER)],
        report_path=tmp_path / "reports" / "plan-1" / "report.csv",
    )
    started = history.run(run)
    assert started is not None
    assert (started.command, started.operation, started.started_at) == ("run", "settings", T0)
    assert started.accounts == (RunAccount("acme", ACME), RunAccount("other", OTHER))
    assert started.input_path == str(tmp_path / "plan.csv")
    assert not started.finished
    assert (started.counts, started.exit_code, started.backup_path) == ({}, None, None)
    backup = tmp_path / "reports" / "plan-1" / "backup.parquet"
    history.finish_run(run, T0 + 42, 1, {"succeeded": 98, "failed": 2}, backup_path=backup)
    finished = history.run(run)
    assert finished is not None
    assert finished.finished
    assert (finished.finished_at, finished.exit_code) == (T0 + 42, 1)
    assert finished.counts == {"succeeded": 98, "failed": 2}
    assert finished.report_path == str(tmp_path / "reports" / "plan-1" / "report.csv")  # kept
    assert finished.backup_path == str(backup)
    assert KEY.encode() not in store.path.read_bytes() + Path(f"{store.path}-wal").read_bytes()


def test_runs_are_listed_latest_first_with_ids_that_only_grow(store: StateStore) -> None:
    history = History(store)
    ids = [history.start_run(command, T0 + n) for n, command in enumerate(["export", "plan"] * 3)]
    assert ids == sorted(ids)
    assert len(set(ids)) == 6
    history.finish_run(ids[0], T0 + 10, 0, {})
    rolled_back = history.start_run("rollback", T0 + 20, of_run=ids[1])
    assert [run.id for run in history.runs(limit=3)] == [rolled_back, ids[5], ids[4]]
    assert [run.command for run in history.runs()] == ["rollback"] + ["plan", "export"] * 3
    found = history.run(rolled_back)
    assert found is not None
    assert found.of_run == ids[1]
    assert history.run(rolled_back + 1) is None
    with pytest.raises(KeyError):
        history.finish_run(rolled_back + 1, T0, 0, {})


def test_a_campaigns_changes_are_told_across_runs_in_the_order_they_were_applied(
    store: StateStore,
) -> None:
    history = History(store)
    first = history.start_run("run", T0)
    second = history.start_run("run", T0 + 100)
    rollback = history.start_run("rollback", T0 + 200, of_run=first)
    history.record_changes(
        [
            ChangeRecord(first, T0 + 1, ACME, 123, "sending_limit", 61, 44),
            ChangeRecord(first, T0 + 1, ACME, 123, "track_settings", [], ["DONT_EMAIL_OPEN"]),
            ChangeRecord(first, T0 + 2, ACME, 456, "sending_limit", 10, 20),
        ]
    )
    history.record_changes(
        [
            ChangeRecord(rollback, T0 + 201, ACME, 123, "sending_limit", 50, 61),
            ChangeRecord(second, T0 + 101, ACME, 123, "sending_limit", 44, 50),
            ChangeRecord(second, T0 + 101, OTHER, 123, "schedule", None, {"days": [1, 2]}),
        ]
    )
    changes = history.changes(123)
    assert [(c.run, c.field, c.before, c.after) for c in changes] == [
        (first, "sending_limit", 61, 44),
        (first, "track_settings", [], ["DONT_EMAIL_OPEN"]),
        (second, "sending_limit", 44, 50),
        (second, "schedule", None, {"days": [1, 2]}),
        (rollback, "sending_limit", 50, 61),
    ]
    assert changes[0] == ChangeRecord(first, T0 + 1, ACME, 123, "sending_limit", 61, 44)
    assert [c.run for c in history.changes(123, account=OTHER)] == [second]
    assert history.changes(789) == []


def test_a_20000_row_run_is_recorded_a_batch_at_a_time(store: StateStore) -> None:
    history = History(store)
    run = history.start_run("run", T0)
    batch = 1_000
    for start in range(0, 20_000, batch):
        recorded = history.record_changes(
            ChangeRecord(run, T0 + n / 1000, ACME, 1_000_000 + n, "sending_limit", n, n + 1)
            for n in range(start, start + batch)
        )
        assert recorded == batch
    with store.read() as db:
        assert db.execute("SELECT count(*) FROM changes WHERE run = ?", (run,)).fetchone() == (
            20_000,
        )
    assert history.changes(1_019_999) == [
        ChangeRecord(run, T0 + 19.999, ACME, 1_019_999, "sending_limit", 19_999, 20_000)
    ]

"""The backup ledger is extended a batch at a time without reading it whole.

A run of a million rows records each batch's changes in the ledger: ``record_backup`` streams
the file already on disk rather than holding every earlier campaign in Python. These tests check
that it still does exactly what the whole-ledger implementation did (kept below, as it was but
for merging a later run's undo through the operation, as the reference: random sequences of
calls through both must read back the same), and that its memory no longer grows with the ledger.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tracemalloc
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bulkrunner.config.redaction import redact
from bulkrunner.model import Change
from bulkrunner.operations.base import Operation, Target, Undo
from bulkrunner.operations.email_accounts import ATTACHED, EMAIL_ACCOUNTS
from bulkrunner.operations.fields import ACCOUNT, CAMPAIGN_ID, SET_BY_RUN, Field
from bulkrunner.operations.settings import SETTINGS
from bulkrunner.operations.status import STATUS
from bulkrunner.records import backup
from bulkrunner.records.backup import (
    _UNRESTORABLE_KEY,
    OPERATION_KEY,
    BackupError,
    Recorded,
    backup_operation,
    backup_rows,
    read_backup,
    read_unrestorable,
    record_backup,
)
from bulkrunner.records.expected import merged
from bulkrunner.records.undo import arrow_type, undo_row
from tests.heap import own_heap

# --- the reference: record_backup and write_backup as they were, holding the whole ledger -------


def reference_record(
    path: Path,
    changes: Mapping[int, Mapping[str, Change]],
    *,
    keep: bool,
    account: str | None = None,
    operation: Operation = SETTINGS,
) -> Recorded:
    earlier = keep and path.exists()
    ledger = whole_ledger(path) if earlier else {}
    reasons = read_unrestorable(path) if earlier else {}
    wholly = {campaign for campaign in reasons if campaign not in ledger}
    new_reasons: dict[Target, str] = {}
    recorded = unknown = 0
    for campaign, fields in changes.items():
        if campaign in wholly:
            continue
        values, reason = undo_row(operation, fields)
        if reason and campaign not in ledger and campaign not in reasons:
            reasons[campaign] = new_reasons[campaign] = redact(reason)
        entry = ledger.setdefault(campaign, {})
        entry.update(operation.merge_undo(entry, values))
        if any(name not in (ACCOUNT, SET_BY_RUN) for name in entry):
            if account is not None:
                entry.setdefault(ACCOUNT, account)
            set_now = {name: change.after for name, change in fields.items()}
            entry[SET_BY_RUN] = merged(entry.get(SET_BY_RUN), set_now)
            recorded += 1
        else:
            del ledger[campaign]
            unknown += campaign not in reasons
    reference_write(path, ledger, operation, reasons)
    return Recorded(recorded, unknown, len(ledger), new_reasons)


def whole_ledger(path: Path) -> dict[int, dict[str, Any]]:
    """The ledger as ``read_backup`` reads it, with what each campaign's run set."""
    ledger: dict[int, dict[str, Any]] = {}
    for record in pq.read_table(path).to_pylist():
        campaign = int(record.pop(CAMPAIGN_ID))
        values = {name: value for name, value in record.items() if value is not None}
        ledger.setdefault(campaign, {}).update(values)
    return ledger


def reference_write(
    path: Path,
    ledger: Mapping[int, Mapping[str, Any]],
    operation: Operation,
    unrestorable: Mapping[Target, str],
) -> None:
    used = [f for f in operation.fields if any(f.name in fields for fields in ledger.values())]
    columns: dict[str, list[object]] = {CAMPAIGN_ID: list(ledger)}
    fields_ = [pa.field(CAMPAIGN_ID, pa.int64())]
    if any(ACCOUNT in fields for fields in ledger.values()):
        columns[ACCOUNT] = [fields.get(ACCOUNT) for fields in ledger.values()]
        fields_.append(pa.field(ACCOUNT, pa.string()))
    for field in used:
        columns[field.name] = [fields.get(field.name) for fields in ledger.values()]
    recorded = any(SET_BY_RUN in fields for fields in ledger.values())
    if recorded:
        columns[SET_BY_RUN] = [fields.get(SET_BY_RUN) for fields in ledger.values()]
    metadata = {OPERATION_KEY: operation.name.encode()}
    if unrestorable:
        reasons = {str(campaign): reason for campaign, reason in sorted(unrestorable.items())}
        metadata[_UNRESTORABLE_KEY] = json.dumps(reasons).encode()
    set_by_run = [pa.field(SET_BY_RUN, pa.string())] if recorded else []
    schema = pa.schema(
        [*fields_, *(pa.field(f.name, arrow_type(f)) for f in used), *set_by_run], metadata
    )
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table(columns, schema=schema), tmp)
        with tmp.open("rb") as written:
            os.fsync(written.fileno())
        os.replace(tmp, path)
    except (OSError, pa.ArrowException) as exc:
        tmp.unlink(missing_ok=True)
        raise BackupError(f"{path}: cannot write the backup ({exc})") from None


# --- random runs through both --------------------------------------------------------------------


class _Partly(Operation):
    """Undone in part: one column restored, the other not (a reason and values both)."""

    name = "partly"
    fields = (Field("kept", "custom", arrow="int64"), Field("lost", "custom", arrow="int64"))

    def undo(self, changes: Mapping[str, Change]) -> Undo:
        kept = changes.get("kept")
        reason = "lost cannot be put back" if "lost" in changes else ""
        return Undo({"kept": kept.before} if kept is not None else {}, reason)


PARTLY = _Partly()
TRACKING = ["DONT_EMAIL_OPEN", "DONT_LINK_CLICK", "DONT_REPLY_TO_AN_EMAIL"]


def settings_change(rng: random.Random, name: str) -> Change:
    kind = SETTINGS.field(name).kind  # type: ignore[union-attr]
    choices: list[Any] = [None]  # not known before the run
    if kind == "enum_list":
        choices += [[], rng.sample(TRACKING, rng.randint(1, 3)), "DONT_EMAIL_OPEN;DONT_LINK_CLICK"]
    elif kind == "enum":
        choices += ["REPLY_TO_AN_EMAIL", "CLICK_ON_A_LINK", "OPEN_AN_EMAIL"]
    elif kind == "int":
        choices += [rng.randint(0, 500), rng.randint(0, 500), "ten"]  # "ten": of the wrong type
    elif kind == "bool":
        choices += [True, False]
    else:
        choices += ["", "Reply STOP", rng.choice(["a", "b", "c"])]
    return Change(rng.choice(choices), "after")


def random_changes(
    rng: random.Random, operation: Operation, campaigns: int
) -> dict[int, dict[str, Change]]:
    chosen = rng.sample(range(1, 40), rng.randint(0, campaigns))
    changes: dict[int, dict[str, Change]] = {}
    for campaign in chosen:
        if operation is SETTINGS:
            names = rng.sample([f.name for f in SETTINGS.fields], rng.randint(1, 3))
            changes[campaign] = {name: settings_change(rng, name) for name in names}
        elif operation is STATUS:
            before = rng.choice(["ACTIVE", "PAUSED", "DRAFTED", "COMPLETED", None])
            after = rng.choice(["START", "PAUSED", "STOPPED"])
            changes[campaign] = {"status": Change(before, after)}
        elif operation is EMAIL_ACCOUNTS:
            attached = None if rng.random() < 0.2 else rng.sample(range(1, 9), rng.randint(0, 3))
            wanted = rng.sample(range(1, 9), rng.randint(0, 3))
            changes[campaign] = {ATTACHED: Change(attached, wanted)}
        else:
            names = rng.sample(["kept", "lost"], rng.randint(1, 2))
            changes[campaign] = {name: Change(rng.choice([None, 1, 2, 3]), 9) for name in names}
    return changes


def ledger_file(path: Path) -> tuple[object, ...]:
    """Everything a reader of the ledger sees, its rows' order included."""
    schema = pq.read_schema(path)
    return (
        list(read_backup(path).items()),
        {c: fields.get(SET_BY_RUN) for c, fields in whole_ledger(path).items()},
        read_unrestorable(path),
        backup_operation(path),
        backup_rows(path),
        [(field.name, field.type) for field in schema],
    )


OPERATIONS = [SETTINGS, STATUS, EMAIL_ACCOUNTS, PARTLY]


def shape(rng: random.Random) -> tuple[int, int]:
    """The rows a batch holds (mostly a few, so that rows are copied across many batches and
    row groups) and the operation a random run starts with (its index in OPERATIONS)."""
    return rng.choice([1, 2, 3, 5, 65_536]), rng.randrange(len(OPERATIONS))


# The first seed of each shape (20 shapes, met by seeds 0 to 43): each run still switches
# operations and continues the other code's ledger at random; more seeds repeat a shape.
SEEDS = sorted({shape(random.Random(seed)): seed for seed in reversed(range(60))}.values())


@pytest.mark.parametrize("seed", SEEDS)
def test_random_runs_read_back_as_with_the_whole_ledger_implementation(
    seed: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(seed)
    batch_rows, first = shape(rng)
    monkeypatch.setattr(backup, "_BATCH_ROWS", batch_rows)
    operations = OPERATIONS
    operation = operations[first]
    old, new = tmp_path / "old.parquet", tmp_path / "new.parquet"
    for _ in range(rng.randint(3, 12)):
        if rng.random() < 0.1:  # a ledger another operation wrote (its columns are dropped)
            operation = rng.choice(operations)
        if rng.random() < 0.2 and old.exists():  # continuing a ledger the old code wrote
            shutil.copyfile(old, new)
        changes = random_changes(rng, operation, rng.choice([3, 10, 25]))
        keep = rng.random() < 0.8
        account = rng.choice([None, None, "a", "b"])
        expected = reference_record(old, changes, keep=keep, account=account, operation=operation)
        got = record_backup(new, changes, keep=keep, account=account, operation=operation)
        assert got == expected
        assert ledger_file(new) == ledger_file(old)
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_campaign_kept_in_several_rows_is_merged_into_one_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ledger written by hand may hold a campaign twice: read_backup merges its rows (the
    later value wins) and, as before, a campaign about to change ends up in one row."""
    monkeypatch.setattr(backup, "_BATCH_ROWS", 2)
    rows = {CAMPAIGN_ID: [5, 6, 5, 7, 5], "sending_limit": [10, 20, None, 30, 11]}
    for path in (tmp_path / "old.parquet", tmp_path / "new.parquet"):
        pq.write_table(pa.table(rows), path)
    changes = {5: {"unsubscribe_text": Change("", "x")}, 8: {"sending_limit": Change(1, 2)}}
    expected = reference_record(tmp_path / "old.parquet", changes, keep=True)
    got = record_backup(tmp_path / "new.parquet", changes, keep=True)
    assert got == expected
    assert ledger_file(tmp_path / "new.parquet") == ledger_file(tmp_path / "old.parquet")
    by_hand = None  # (what the run set: not recorded by hand)
    assert pq.read_table(tmp_path / "new.parquet").to_pylist() == [
        {
            CAMPAIGN_ID: 5,
            "sending_limit": 11,
            "unsubscribe_text": "",
            SET_BY_RUN: '{"unsubscribe_text": "x"}',
        },
        {CAMPAIGN_ID: 6, "sending_limit": 20, "unsubscribe_text": None, SET_BY_RUN: by_hand},
        {CAMPAIGN_ID: 7, "sending_limit": 30, "unsubscribe_text": None, SET_BY_RUN: by_hand},
        {
            CAMPAIGN_ID: 8,
            "sending_limit": 1,
            "unsubscribe_text": None,
            SET_BY_RUN: '{"sending_limit": 2}',
        },
    ]


def test_a_column_whose_only_values_go_with_a_dropped_row_is_dropped_as_before(
    tmp_path: Path,
) -> None:
    """Campaign 1's row holds only its account (its values were of another operation): about to
    change with nothing known, its row goes, and with it the account column no other row uses."""
    rows = {CAMPAIGN_ID: [1, 2], ACCOUNT: ["a", None], "sending_limit": [None, 5]}
    for path in (tmp_path / "old.parquet", tmp_path / "new.parquet"):
        pq.write_table(pa.table(rows), path)
    changes = {1: {"sending_limit": Change(None, 3)}}
    expected = reference_record(tmp_path / "old.parquet", changes, keep=True)
    assert record_backup(tmp_path / "new.parquet", changes, keep=True) == expected
    assert ledger_file(tmp_path / "new.parquet") == ledger_file(tmp_path / "old.parquet")
    assert pq.read_schema(tmp_path / "new.parquet").names == [CAMPAIGN_ID, "sending_limit"]


# --- memory, row groups, failures ----------------------------------------------------------------


LARGE = 20_000  # campaigns in a ledger a run adds to
BOUND = 1_000_000  # bytes of Python objects adding to it may hold at once


def ledger_of(path: Path, campaigns: int) -> None:
    """A ledger as a run of ``campaigns`` rows writes it (the old code: one row group)."""
    pq.write_table(
        pa.table(
            {
                CAMPAIGN_ID: pa.array(range(1, campaigns + 1), pa.int64()),
                "sending_limit": pa.array([i % 500 for i in range(campaigns)], pa.int64()),
                "unsubscribe_text": pa.array(["Reply STOP"] * campaigns, pa.string()),
            }
        ),
        path,
    )


def python_peak(call: Callable[[], object]) -> int:
    """The most memory Python objects held at once during ``call`` (bytes)."""
    with own_heap():
        tracemalloc.start()
        try:
            call()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()


def test_adding_to_a_large_ledger_does_not_hold_it_in_memory(tmp_path: Path) -> None:
    path = tmp_path / "r.csv.backup.parquet"
    ledger_of(path, LARGE)
    changes = {200_000 + i: {"sending_limit": Change(i, 99)} for i in range(10)}
    changes[5_000] = {"sending_limit": Change(7, 99)}  # one the ledger holds: its value wins
    peak = python_peak(lambda: record_backup(path, changes, keep=True))
    # The whole-ledger code builds a dict per campaign (about 10 MB for 20,000); streaming holds
    # the 11 changed campaigns and a batch's bookkeeping (about 12 KB measured: the rows stay
    # in Arrow), whatever the ledger's size.
    assert peak < BOUND, f"{peak:,} bytes of Python objects"
    ledger = read_backup(path)
    assert len(ledger) == LARGE + 10
    assert ledger[5_000] == {"sending_limit": 4_999 % 500, "unsubscribe_text": "Reply STOP"}
    assert ledger[200_003] == {"sending_limit": 3}


def test_the_memory_bound_is_one_the_whole_ledger_code_does_not_meet(tmp_path: Path) -> None:
    """The measurement above can tell: the reference, holding the ledger, goes far over it."""
    path = tmp_path / "r.csv.backup.parquet"
    ledger_of(path, LARGE)
    changes = {200_000 + i: {"sending_limit": Change(i, 99)} for i in range(10)}
    assert python_peak(lambda: reference_record(path, changes, keep=True)) > 5 * BOUND


def test_row_groups_stay_bounded_and_small_batches_are_gathered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A row group is what a reader holds at once: each stays within a batch of rows, and
    batches of a few campaigns each do not leave a trail of tiny row groups behind."""
    monkeypatch.setattr(backup, "_BATCH_ROWS", 4)
    path = tmp_path / "r.csv.backup.parquet"
    for campaign in range(1, 11):
        record_backup(path, {campaign: {"sending_limit": Change(campaign, 0)}}, keep=True)
    metadata = pq.read_metadata(path)
    sizes = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
    assert sizes == [4, 4, 2]
    assert list(read_backup(path)) == list(range(1, 11))


def test_a_failure_midway_leaves_the_old_ledger_and_names_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A value the column cannot hold, in a late batch of a (hand-made) ledger, fails the copy
    after earlier batches were written to the temporary file."""
    monkeypatch.setattr(backup, "_BATCH_ROWS", 2)
    path = tmp_path / "r.csv.backup.parquet"
    limits = ["1", "2", "3", "4", "5", "many"]
    pq.write_table(pa.table({CAMPAIGN_ID: [1, 2, 3, 4, 5, 6], "sending_limit": limits}), path)
    before = path.read_bytes()
    with pytest.raises(BackupError, match=r"r\.csv\.backup\.parquet: cannot write the backup"):
        record_backup(path, {9: {"sending_limit": Change(1, 2)}}, keep=True)
    assert path.read_bytes() == before
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_failed_flush_to_disk_leaves_the_old_ledger(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "r.csv.backup.parquet"
    record_backup(path, {1: {"sending_limit": Change(1, 2)}}, keep=False)
    before = path.read_bytes()

    def full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(BackupError, match=r"cannot write the backup \(.*No space left"):
        record_backup(path, {2: {"sending_limit": Change(3, 4)}}, keep=True)
    assert path.read_bytes() == before
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_file_that_is_not_a_backup_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "r.csv.backup.parquet"
    pq.write_table(pa.table({"id": [1, 2]}), path)
    before = path.read_bytes()
    with pytest.raises(BackupError, match=r"r\.csv\.backup\.parquet: not a backup"):
        record_backup(path, {1: {"sending_limit": Change(1, 2)}}, keep=True)
    assert path.read_bytes() == before


def test_campaigns_it_cannot_restore_are_kept_grouped_by_reason(tmp_path: Path) -> None:
    """A run that stops every campaign has a reason for each: kept as each reason once with
    its campaigns, the footer stays small (one entry a campaign would pass pyarrow's 100 MB
    footer limit at about 850,000 campaigns, and the backup could no longer be read)."""
    path = tmp_path / "r.csv.backup.parquet"
    stopped = {c: {"status": Change("ACTIVE", "STOPPED")} for c in range(1, 20_001)}
    recorded = record_backup(path, stopped, keep=False, operation=STATUS)
    assert len(recorded.unrestorable) == 20_000
    reasons = read_unrestorable(path)
    assert sorted(reasons) == list(range(1, 20_001))
    assert len(set(reasons.values())) == 1
    footer = pq.read_schema(path).metadata[_UNRESTORABLE_KEY]
    assert len(footer) < 8 * 20_000  # ~6 bytes a campaign; one entry each took ~70


def test_a_backup_written_with_a_reason_for_each_campaign_is_still_read(tmp_path: Path) -> None:
    path = tmp_path / "r.csv.backup.parquet"
    reference_write(path, {}, STATUS, {5: "stopping cannot be undone", 7: "a draft was started"})
    assert read_unrestorable(path) == {5: "stopping cannot be undone", 7: "a draft was started"}
    record_backup(path, {9: {"status": Change("ACTIVE", "STOPPED")}}, keep=True, operation=STATUS)
    assert sorted(read_unrestorable(path)) == [5, 7, 9]

"""Backups: a ledger of the original values of exactly the fields a run changes, as an input file.

The backup is Parquet, because it must restore values a blank CSV cell cannot express: an empty
``unsubscribe_text`` is an empty string, an empty ``track_settings`` an empty list, while a
field the run does not change is null (left unchanged). ``bulkrunner rollback`` (or ``run`` on
the backup) puts the old values back.

It is a ledger: once a campaign's field is recorded, nothing overwrites it. A ``--resume``d run
adds the campaigns and fields it is about to change to the backup of the run it continues, so
after any number of interruptions the backup still holds the values from before the first one.
Every write goes to a temporary file, flushed to disk, then renamed over the backup: a kill at
any moment leaves the old ledger or the new one, never a torn file.

Some changes cannot be undone (a campaign the run stops; a campaign that was a draft before it
was started): the operation says why (``Undo.reason``), and the backup keeps each such campaign
with its reason in its metadata, so that ``rollback`` can name them rather than skip them.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from bulkrunner.fields import ACCOUNT, CAMPAIGN_ID, Field
from bulkrunner.model import Change
from bulkrunner.operations.base import Operation
from bulkrunner.operations.settings import SETTINGS
from bulkrunner.redaction import redact
from bulkrunner.state import canonical, shared

BACKUP_SUFFIX = ".backup.parquet"

_TYPES: dict[str, pa.DataType] = {
    "enum_list": pa.list_(pa.string()),
    "enum": pa.string(),
    "int": pa.int64(),
    "bool": pa.bool_(),
    "text": pa.string(),
}

_ARROW: dict[str, pa.DataType] = {
    "string": pa.string(),
    "int64": pa.int64(),
    "list<string>": pa.list_(pa.string()),
    "list<int64>": pa.list_(pa.int64()),
}
_OPERATION_KEY = b"bulkrunner.operation"
_UNRESTORABLE_KEY = b"bulkrunner.unrestorable"  # JSON: {campaign id: why it cannot be restored}

Ledger = dict[int, dict[str, Any]]  # campaign -> field -> its value before the run


class BackupError(Exception):
    """The backup cannot be read or written; the message names the file."""


@dataclass(frozen=True, slots=True)
class Recorded:
    """What recording a run's changes in the ledger did."""

    campaigns: int  # campaigns about to change whose values the ledger holds
    unknown: int  # campaigns about to change of which no value could be recorded
    total: int  # campaigns in the ledger, earlier runs' included
    # campaigns about to change that a rollback cannot restore (in full), with why
    unrestorable: dict[int, str] = dataclasses.field(default_factory=dict)


def backup_path(report_path: Path) -> Path:
    """The backup beside a report, named after its whole name: x.csv and x.json differ."""
    return report_path.with_name(f"{report_path.name}{BACKUP_SUFFIX}")


def backup_operation(path: Path) -> str:
    """The operation whose changes the backup at ``path`` undoes (a backup written before
    operations were recorded undoes settings)."""
    try:
        metadata = pq.read_schema(path).metadata or {}
    except (OSError, pa.ArrowException) as exc:
        raise BackupError(f"{path}: cannot read the backup ({exc})") from None
    return str(metadata.get(_OPERATION_KEY, b"settings").decode())


def backup_rows(path: Path) -> int:
    """How many campaigns the backup at ``path`` can restore (its rows)."""
    try:
        return int(pq.read_metadata(path).num_rows)
    except (OSError, pa.ArrowException) as exc:
        raise BackupError(f"{path}: cannot read the backup ({exc})") from None


def read_unrestorable(path: Path) -> dict[int, str]:
    """The campaigns the backup at ``path`` cannot restore, each with why (none in a backup
    written before reasons were kept)."""
    try:
        metadata = pq.read_schema(path).metadata or {}
    except (OSError, pa.ArrowException) as exc:
        raise BackupError(f"{path}: cannot read the backup ({exc})") from None
    try:
        found = json.loads(metadata.get(_UNRESTORABLE_KEY, b"{}"))
        return {int(campaign): str(reason) for campaign, reason in found.items()}
    except (ValueError, TypeError, AttributeError):
        raise BackupError(f"{path}: the list of campaigns it cannot restore is damaged") from None


def read_backup(path: Path) -> Ledger:
    """The values a backup holds, by campaign; fields left null (unchanged) are not listed."""
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise BackupError(f"{path}: cannot read the backup ({exc})") from None
    if CAMPAIGN_ID not in table.column_names:
        raise BackupError(f"{path}: not a backup (no {CAMPAIGN_ID} column)")
    ledger: Ledger = {}
    for record in table.to_pylist():
        campaign = record.pop(CAMPAIGN_ID)
        values = {name: value for name, value in record.items() if value is not None}
        ledger.setdefault(int(campaign), {}).update(values)
    return ledger


def record_backup(
    path: Path,
    changes: Mapping[int, Mapping[str, Change]],
    *,
    keep: bool,
    account: str | None = None,
    operation: Operation = SETTINGS,
) -> Recorded:
    """Record what undoes each campaign's changes (for most operations, the ``before`` of
    every change whose current value is known).

    With ``keep`` the ledger already at ``path`` is kept: its values win over the new ones, and
    only campaigns and fields it does not hold are added. Without it the ledger starts empty.
    ``account`` (a run of several accounts) is recorded in an ``account`` column, so that a
    rollback restores each campaign with its own account's key.
    """
    earlier = keep and path.exists()
    ledger = read_backup(path) if earlier else {}
    reasons = read_unrestorable(path) if earlier else {}
    wholly = {campaign for campaign in reasons if campaign not in ledger}  # nothing to restore
    new_reasons: dict[int, str] = {}
    recorded = unknown = 0
    for campaign, fields in changes.items():
        if campaign in wholly:  # as first recorded: its values now are the run's, not the original
            continue
        undone = operation.undo(fields)
        undo = undone.values
        if undone.reason and campaign not in ledger and campaign not in reasons:
            reasons[campaign] = new_reasons[campaign] = redact(undone.reason)
        values = {
            name: _before(spec, value)
            for name, value in undo.items()
            if value is not None and (spec := operation.field(name)) is not None
        }
        entry = ledger.setdefault(campaign, {})
        for name, value in values.items():
            entry.setdefault(name, shared(value))  # 100,000 campaigns hold a few values
        if any(name != ACCOUNT for name in entry):
            if account is not None:
                entry.setdefault(ACCOUNT, account)
            recorded += 1
        else:
            del ledger[campaign]
            unknown += campaign not in reasons
    write_backup(path, ledger, operation, reasons)
    return Recorded(recorded, unknown, len(ledger), new_reasons)


def write_backup(
    path: Path,
    ledger: Mapping[int, Mapping[str, Any]],
    operation: Operation = SETTINGS,
    unrestorable: Mapping[int, str] | None = None,
) -> int:
    """Write ``ledger`` atomically and durably, one row per campaign, and the campaigns it
    cannot restore with why (``unrestorable``); returns the rows written."""
    used = [f for f in operation.fields if any(f.name in fields for fields in ledger.values())]
    columns: dict[str, list[object]] = {CAMPAIGN_ID: list(ledger)}
    fields_ = [pa.field(CAMPAIGN_ID, pa.int64())]
    if any(ACCOUNT in fields for fields in ledger.values()):
        columns[ACCOUNT] = [fields.get(ACCOUNT) for fields in ledger.values()]
        fields_.append(pa.field(ACCOUNT, pa.string()))
    for field in used:
        columns[field.name] = [fields.get(field.name) for fields in ledger.values()]
    metadata = {_OPERATION_KEY: operation.name.encode()}
    if unrestorable:
        reasons = {str(campaign): reason for campaign, reason in sorted(unrestorable.items())}
        metadata[_UNRESTORABLE_KEY] = json.dumps(reasons).encode()
    schema = pa.schema([*fields_, *(pa.field(f.name, arrow_type(f)) for f in used)], metadata)
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
    return len(ledger)


def arrow_type(field: Field) -> pa.DataType:
    """The column type of ``field`` in a backup (or an exported Parquet file)."""
    if field.kind == "custom":
        return _ARROW[field.arrow]
    return _TYPES[field.kind]


def _before(field: Field, value: Any) -> object:
    """The value in the column's type; None (cannot be restored) when the server gave
    something of another type ("abc" as a number). Text is redacted: never the key in a file."""
    if field.kind == "custom":
        return _custom(field, value)
    if value is None:
        return None
    if field.kind == "enum_list":
        items = value if isinstance(value, list) else str(value).replace(",", ";").split(";")
        return [redact(str(item)) for item in items if str(item).strip()]
    if field.kind in ("int", "bool"):
        known = canonical(field.name, value)
        wanted = int if field.kind == "int" else bool
        return known if type(known) is wanted else None
    return redact(str(value))


def _custom(field: Field, value: Any) -> object:
    """A custom field's value in its declared column type (None when it is not of it)."""
    if field.arrow == "int64":
        return value if type(value) is int else None
    if field.arrow == "list<int64>":
        items = list(value) if isinstance(value, list | tuple | set | frozenset) else None
        ok = items is not None and all(type(item) is int for item in items)
        return sorted(items) if ok and items is not None else None
    if field.arrow == "list<string>":
        items = list(value) if isinstance(value, list | tuple) else None
        return [redact(str(item)) for item in items] if items is not None else None
    return redact(str(value))

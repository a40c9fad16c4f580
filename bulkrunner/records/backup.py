"""Backups: a ledger of the original values of exactly the fields a run changes, as an input file.

The backup is Parquet, because it must restore values a blank CSV cell cannot express: an empty
``unsubscribe_text`` is an empty string, an empty ``track_settings`` an empty list, while a
field the run does not change is null (left unchanged). ``bulkrunner rollback`` (or ``run`` on
the backup) puts the old values back.

A row of the ledger is a campaign, or for an operation whose rows name what they change in
their campaign (``Operation.key``: a lead's address), a campaign and key (``Target``): the key
column is then in the row, and a campaign has a row for each of its targets.

It is a ledger: once a campaign's field is recorded, nothing overwrites it. A ``--resume``d run
adds the campaigns and fields it is about to change to the backup of the run it continues, so
after any number of interruptions the backup still holds the values from before the first one.
(An operation whose undo is a change rather than a value merges it: ``Operation.merge_undo``.)
Beside each campaign's values before the run, its ``set_by_run`` column holds what the run set
in it (JSON, as the report's ``after``; a resumed run's values over the earlier ones), so that a
rollback can tell a campaign changed since the run from one the run left as it set it.
Every write replaces the file atomically (``bulkrunner.config.paths.Staged``): a kill at any
moment leaves the old ledger or the new one, never a torn file.

Some changes cannot be undone (a campaign the run stops; a campaign that was a draft before it
was started; a field that had no value before the run, set with --allow-irreversible; a value
the field's column cannot hold): the operation says why (``Undo.reason``), or ``undo_row`` does,
and the backup keeps each such campaign with its reason in its metadata, so that ``rollback``
can name them rather than skip them.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from bulkrunner.config.paths import replace_atomically
from bulkrunner.config.redaction import redact
from bulkrunner.model import Change
from bulkrunner.operations.base import Operation, Target, campaign_of
from bulkrunner.operations.fields import ACCOUNT, CAMPAIGN_ID, SET_BY_RUN
from bulkrunner.operations.settings import SETTINGS
from bulkrunner.operations.state import shared
from bulkrunner.records.expected import merged
from bulkrunner.records.undo import arrow_type, undo_row

OPERATION_KEY = b"bulkrunner.operation"  # the operation whose input the file is
# JSON: {why it cannot be restored: [campaign ids, or [campaign id, key]]}; a backup may hold
# {campaign id: why}
_UNRESTORABLE_KEY = b"bulkrunner.unrestorable"

Ledger = dict[int, dict[str, Any]]  # campaign -> field -> its value before the run
Held = dict[Target, dict[str, Any]]  # target -> field -> its value before the run


class BackupError(Exception):
    """The backup cannot be read or written; the message names the file."""


@dataclass(frozen=True, slots=True)
class Recorded:
    """What recording a run's changes in the ledger did."""

    campaigns: int  # campaigns about to change whose values the ledger holds
    unknown: int  # campaigns about to change of which no value could be recorded
    total: int  # campaigns in the ledger, earlier runs' included
    # campaigns (targets) about to change that a rollback cannot restore (in full), with why
    unrestorable: dict[Target, str] = dataclasses.field(default_factory=dict)


def backup_operation(path: Path) -> str:
    """The operation whose changes the backup at ``path`` undoes (a backup that names none
    undoes settings)."""
    try:
        metadata = pq.read_schema(path).metadata or {}
    except (OSError, pa.ArrowException) as exc:
        raise BackupError(f"{path}: cannot read the backup ({exc})") from None
    return str(metadata.get(OPERATION_KEY, b"settings").decode())


def backup_rows(path: Path) -> int:
    """How many campaigns the backup at ``path`` can restore (its rows)."""
    try:
        return int(pq.read_metadata(path).num_rows)
    except (OSError, pa.ArrowException) as exc:
        raise BackupError(f"{path}: cannot read the backup ({exc})") from None


def read_unrestorable(path: Path) -> dict[Target, str]:
    """The campaigns (targets) the backup at ``path`` cannot restore, each with why (none in a
    backup that lists none)."""
    try:
        metadata = pq.read_schema(path).metadata or {}
    except (OSError, pa.ArrowException) as exc:
        raise BackupError(f"{path}: cannot read the backup ({exc})") from None
    try:
        found = json.loads(metadata.get(_UNRESTORABLE_KEY, b"{}"))
        if all(isinstance(ids, list) for ids in found.values()):  # {reason: [targets]}
            return {_target(c): str(reason) for reason, ids in found.items() for c in ids}
        return {int(campaign): str(reason) for campaign, reason in found.items()}  # 1 by 1
    except (ValueError, TypeError, AttributeError):
        raise BackupError(f"{path}: the list of campaigns it cannot restore is damaged") from None


def read_backup(path: Path) -> Ledger:
    """The values a backup holds, by campaign; fields left null (unchanged) are not listed (of
    a ledger with a row per lead, each campaign's rows merged: what it holds, not each row)."""
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise BackupError(f"{path}: cannot read the backup ({exc})") from None
    if CAMPAIGN_ID not in table.column_names:
        raise BackupError(f"{path}: not a backup (no {CAMPAIGN_ID} column)")
    ledger: Ledger = {}
    for record in table.to_pylist():
        campaign = record.pop(CAMPAIGN_ID)
        record.pop(SET_BY_RUN, None)  # what the run set: not a value to restore
        values = {name: value for name, value in record.items() if value is not None}
        ledger.setdefault(int(campaign), {}).update(values)
    return ledger


def read_held(path: Path, targets: Collection[Target], key: str | None = None) -> Held:
    """The values the backup at ``path`` holds for ``targets`` (campaigns; with ``key``,
    campaigns and keys), as ``read_backup`` gives them, read a batch of rows at a time."""
    held = _scan(path, targets, key).held
    return {t: {k: v for k, v in e.items() if k != SET_BY_RUN} for t, e in held.items()}


def _target(value: Any) -> Target:
    """A target as the backup's metadata holds it: a campaign id, or [campaign id, key]."""
    return (int(value[0]), str(value[1])) if isinstance(value, list) else int(value)


# What a batch is about to change, by target (of one ledger, all alike)
Changed = (
    Mapping[int, Mapping[str, Change]]
    | Mapping[tuple[int, str], Mapping[str, Change]]
    | Mapping[Target, Mapping[str, Change]]
)


def record_backup(
    path: Path,
    changes: Changed,
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

    The ledger is streamed, never read whole: what this holds is ``changes``, the rows of those
    campaigns the ledger already has, and a batch of rows of the file at a time, however many
    campaigns earlier runs (or earlier batches of this one) recorded. The rows of the other
    campaigns are copied as they are, in their order, and the new campaigns appended.
    """
    earlier = keep and path.exists()
    reasons = read_unrestorable(path) if earlier else {}
    key = operation.key
    found = _scan(path, changes, key) if earlier else _Scan({}, set())
    ledger = found.held  # the campaigns about to change that the ledger already holds
    held = set(ledger)  # their rows: rewritten, or dropped
    wholly = {campaign for campaign in reasons if campaign not in ledger}  # nothing to restore
    new_reasons: dict[Target, str] = {}
    added: Held = {}  # campaigns the ledger does not hold yet, in the order of ``changes``
    recorded = unknown = 0
    for campaign, fields in changes.items():
        if campaign in wholly:  # as first recorded: its values now are the run's, not the original
            continue
        values, reason = undo_row(operation, fields)
        if reason and campaign not in ledger and campaign not in reasons:
            reasons[campaign] = new_reasons[campaign] = redact(reason)
        if key is not None and values and not isinstance(campaign, int):
            values[key] = campaign[1]  # the row names what it undoes in its campaign
        entry = ledger[campaign] if campaign in ledger else added.setdefault(campaign, {})
        for name, value in operation.merge_undo(entry, values).items():
            if name not in entry or entry[name] is not value:
                entry[name] = shared(value)  # 100,000 campaigns hold a few values
        if any(name not in _NOT_VALUES for name in entry):
            if account is not None:
                entry.setdefault(ACCOUNT, account)
            # what this run sets, over what the run it continues set (the last value set wins)
            entry[SET_BY_RUN] = merged(entry.get(SET_BY_RUN), _afters(fields))
            recorded += 1
        else:  # nothing to restore: no row (a row of the ledger without a value is dropped)
            ledger.pop(campaign, None)
            added.pop(campaign, None)
            unknown += campaign not in reasons
    entries = [*ledger.values(), *added.values()]
    schema = _schema(
        operation,
        lambda name: name in found.filled or any(name in entry for entry in entries),
        reasons,
    )

    def fill(sink: _Sink) -> None:
        if earlier:
            _copy(path, sink, held, ledger, key)
        new = iter(added)
        while campaigns := list(itertools.islice(new, _BATCH_ROWS)):
            sink.add(_rows(campaigns, [added[campaign] for campaign in campaigns], sink.schema))

    total = _atomically(path, schema, fill)
    return Recorded(recorded, unknown, total, new_reasons)


_BATCH_ROWS = 65_536  # rows of a ledger read, and written (a row group), at a time
_NOT_VALUES = (ACCOUNT, SET_BY_RUN)  # a ledger's columns that restore nothing


def _afters(changes: Mapping[str, Change]) -> dict[str, Any]:
    return {name: change.after for name, change in changes.items()}


@dataclass(frozen=True, slots=True)
class _Scan:
    """What recording needs of the ledger on disk, found in one pass over it."""

    held: Held  # the values of the targets about to change that it holds (as read_backup)
    filled: set[str]  # its columns with a value in a row of another target


def _scan(path: Path, targets: Collection[Target], key: str | None = None) -> _Scan:
    """One pass over the ledger at ``path``, a batch of rows at a time, for what it holds of
    ``targets`` (campaigns; with ``key``, campaigns and keys)."""
    wanted = pa.array(sorted({campaign_of(target) for target in targets}), pa.int64())
    held: Held = {}
    filled: set[str] = set()
    try:
        for batch, ids in _batches(path):
            mine = batch.filter(pc.fill_null(pc.is_in(ids, value_set=wanted), False))
            for record in mine.to_pylist():
                campaign = int(record.pop(CAMPAIGN_ID))
                values = {name: value for name, value in record.items() if value is not None}
                target = campaign if key is None else (campaign, str(values.get(key)))
                if key is None or target in targets:
                    held.setdefault(target, {}).update(values)
            columns = zip(batch.schema.names, batch.columns, mine.columns, strict=True)
            for name, column, theirs in columns:  # a value in a row copied as it is
                others = mine.num_rows - theirs.null_count if key is None else 0
                if batch.num_rows - column.null_count > others:
                    filled.add(name)
    except (OSError, pa.ArrowException) as exc:
        raise BackupError(f"{path}: cannot read the backup ({exc})") from None
    filled.discard(CAMPAIGN_ID)
    return _Scan(held, filled)


def _batches(path: Path) -> Iterator[tuple[pa.RecordBatch, pa.Array]]:
    """The ledger at ``path`` a batch of rows at a time, each with its campaign ids as int64."""
    with pq.ParquetFile(path) as parquet:  # read by Arrow itself, not through Python bytes
        if CAMPAIGN_ID not in parquet.schema_arrow.names:
            raise BackupError(f"{path}: not a backup (no {CAMPAIGN_ID} column)")
        for batch in parquet.iter_batches(batch_size=_BATCH_ROWS):
            ids = batch.column(CAMPAIGN_ID)
            yield batch, ids if ids.type == pa.int64() else ids.cast(pa.int64())


def _copy(
    path: Path, sink: _Sink, replaced: Collection[Target], ledger: Held, key: str | None
) -> None:
    """Copy the ledger at ``path`` into ``sink``, in its order, with the row of each target
    of ``replaced`` put in its place by its ``ledger`` entry (none when it has none)."""
    written: set[Target] = set()
    campaigns_replaced = pa.array(sorted({campaign_of(t) for t in replaced}), pa.int64())
    for batch, ids in _batches(path):
        table = _conform(batch, ids, sink.schema)
        mine = pc.fill_null(pc.is_in(ids, value_set=campaigns_replaced), False)
        if not pc.any(mine).as_py():
            sink.add(table)
            continue
        at = pc.indices_nonzero(mine).to_pylist()
        campaigns = pc.take(ids, pa.array(at, pa.int64())).to_pylist()
        targets: list[Target] = campaigns
        if key is not None:  # a campaign's rows are its targets': only those replaced change
            keys = pc.take(table.column(key), pa.array(at, pa.int64())).to_pylist()
            targets = [(int(c), str(k)) for c, k in zip(campaigns, keys, strict=True)]
        kept = [t for t in dict.fromkeys(targets) if t in ledger and t not in written]
        rewritten = _rows(kept, [ledger[target] for target in kept], sink.schema)
        place = {target: index for index, target in enumerate(kept)}
        written.update(kept)
        start = 0
        for row, target in zip(at, targets, strict=True):
            sink.add(table.slice(start, row - start))
            if target in place:  # the first row of a target (the only one a ledger has)
                sink.add(rewritten.slice(place.pop(target), 1))
            elif target not in replaced:  # another target of the campaign: as it is
                sink.add(table.slice(row, 1))
            start = row + 1
        sink.add(table.slice(start))


def _conform(batch: pa.RecordBatch, ids: pa.Array, schema: pa.Schema) -> pa.Table:
    """The rows of ``batch`` in the columns of ``schema`` (a column it lacks is null)."""
    columns = []
    for field in schema:
        if field.name == CAMPAIGN_ID:
            column = ids
        elif field.name in batch.schema.names:
            column = batch.column(field.name)
            column = column if column.type == field.type else column.cast(field.type)
        else:
            column = pa.nulls(batch.num_rows, field.type)
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=schema)


def _rows(
    targets: Sequence[Target], entries: list[Mapping[str, Any]], schema: pa.Schema
) -> pa.Table:
    """A table of one row per target in the columns of ``schema``."""
    columns: dict[str, list[object]] = {CAMPAIGN_ID: [campaign_of(t) for t in targets]}
    for name in schema.names[1:]:
        columns[name] = [entry.get(name) for entry in entries]
    return pa.table(columns, schema=schema)


def _schema(
    operation: Operation, used: Callable[[str], bool], unrestorable: Mapping[Target, str]
) -> pa.Schema:
    """The columns of a ledger: the campaign, the account, the operation's fields and what the
    run set that some row ``used``; its metadata names the operation and the campaigns it
    cannot restore."""
    fields = [pa.field(CAMPAIGN_ID, pa.int64())]
    if used(ACCOUNT):
        fields.append(pa.field(ACCOUNT, pa.string()))
    fields += [pa.field(f.name, arrow_type(f)) for f in operation.fields if used(f.name)]
    if used(SET_BY_RUN):
        fields.append(pa.field(SET_BY_RUN, pa.string()))
    metadata = {OPERATION_KEY: operation.name.encode()}
    if unrestorable:
        # grouped by reason: a run that stops a million campaigns has one or two reasons, and
        # a campaign an entry (a footer past 100 MB, as one entry each, is one pyarrow refuses)
        reasons: dict[str, list[Target]] = {}
        for campaign, reason in sorted(unrestorable.items()):
            reasons.setdefault(reason, []).append(campaign)
        metadata[_UNRESTORABLE_KEY] = json.dumps(reasons, separators=(",", ":")).encode()
    return pa.schema(fields, metadata)


class _Sink:
    """Rows on their way to a Parquet file, written in row groups of ``_BATCH_ROWS`` rows."""

    def __init__(self, writer: pq.ParquetWriter, schema: pa.Schema) -> None:
        self.writer = writer
        self.schema = schema.remove_metadata()  # the rows' own columns
        self.waiting: list[pa.Table] = []
        self.held = 0
        self.rows = 0

    def add(self, table: pa.Table) -> None:
        if table.num_rows:
            self.waiting.append(table)
            self.held += table.num_rows
        if self.held >= _BATCH_ROWS:
            self.flush(whole=True)

    def flush(self, *, whole: bool = False) -> None:
        """Write the waiting rows (with ``whole``, only whole row groups of them)."""
        if not self.waiting:
            return
        rows = pa.concat_tables(self.waiting)
        count = rows.num_rows - rows.num_rows % _BATCH_ROWS if whole else rows.num_rows
        for start in range(0, count, _BATCH_ROWS):
            self.writer.write_table(rows.slice(start, min(_BATCH_ROWS, count - start)))
        self.rows += count
        rest = rows.slice(count)
        self.waiting = [rest] if rest.num_rows else []
        self.held = rest.num_rows


def _atomically(path: Path, schema: pa.Schema, fill: Callable[[_Sink], None]) -> int:
    """Write a ledger of ``schema`` whose rows ``fill`` gives, replacing ``path`` atomically;
    returns the rows written. On failure the ledger at ``path`` is left as it was."""
    sinks: list[_Sink] = []

    def write(tmp: Path) -> None:
        with pq.ParquetWriter(tmp, schema) as writer:
            sinks.append(_Sink(writer, schema))
            fill(sinks[0])
            sinks[0].flush()

    try:
        replace_atomically(path, write)
    except (OSError, pa.ArrowException) as exc:
        raise BackupError(f"{path}: cannot write the backup ({exc})") from None
    return sinks[0].rows

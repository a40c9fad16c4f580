"""The backup of a ``leads`` run: a ledger of the leads it adds, which ``rollback`` removes.

A Parquet file beside the report (the backup's name), a row per lead: ``campaign_id``,
``email`` (as sent), ``lead_id`` (where the run learned it: a read-back shows it; else null,
and the rollback reads it from the campaign) and, in a run of several accounts, ``account``. It
names the ``lead-removal`` operation, so that ``bulkrunner rollback`` runs it as an input of
that operation: each lead the campaign still holds is removed, and a lead that was in a
campaign before the run was never in the ledger, so it stays.

Before a batch is sent, each lead about to be added (one its campaign did not hold when read)
is recorded: a ``kill -9`` at any moment after leaves a ledger that names every lead the run
may have added. Once the batch is through, its leads that are known not to have gone in
(refused, never sent, not in the campaign when read back) are taken out again, and the ids
read back are filled in: the ledger then holds the leads the run added, and only those, but
for leads whose answer never came (kept: they may have gone in). A ``--resume``d run adds to
the ledger of the run it continues. Every write replaces the file atomically.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from bulkrunner.config.paths import replace_atomically
from bulkrunner.config.redaction import redact
from bulkrunner.model import OUTCOME_UNKNOWN, Change, Changes, Outcome, Row, Status
from bulkrunner.operations.addresses import address_key
from bulkrunner.operations.fields import ACCOUNT, CAMPAIGN_ID
from bulkrunner.operations.lead_removal import LEAD_ID, LEAD_REMOVAL
from bulkrunner.operations.leads import EMAIL, leads_of
from bulkrunner.records.backup import OPERATION_KEY, BackupError

Key = tuple[int, str]  # a lead of the ledger: its campaign, its address as compared
# an outcome that leaves its lead in the ledger: added, or it may have been
_KEPT = frozenset({Status.SUCCEEDED, Status.UNVERIFIED})


@dataclass(frozen=True, slots=True)
class Entry:
    campaign_id: int
    email: str
    lead_id: int | None = None
    account: str | None = None

    @property
    def key(self) -> Key:
        return self.campaign_id, address_key(self.email)


def read_ledger(path: Path) -> list[Entry]:
    """The leads the ledger at ``path`` holds, in its order (none when there is no file)."""
    if not path.exists():
        return []
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise BackupError(f"{path}: cannot read the backup ({exc})") from None
    if CAMPAIGN_ID not in table.column_names or EMAIL not in table.column_names:
        raise BackupError(f"{path}: not the backup of a leads run (no {EMAIL} column)")
    return [
        Entry(
            int(record[CAMPAIGN_ID]),
            str(record[EMAIL]),
            record.get(LEAD_ID),
            record.get(ACCOUNT),
        )
        for record in table.to_pylist()
    ]


def write_ledger(path: Path, entries: Sequence[Entry]) -> None:
    """Replace the ledger at ``path`` with ``entries``, atomically."""
    columns: dict[str, pa.Array] = {
        CAMPAIGN_ID: pa.array([e.campaign_id for e in entries], pa.int64()),
    }
    if any(e.account is not None for e in entries):
        columns[ACCOUNT] = pa.array([e.account for e in entries], pa.string())
    columns[EMAIL] = pa.array([redact(e.email) for e in entries], pa.string())
    columns[LEAD_ID] = pa.array([e.lead_id for e in entries], pa.int64())
    table = pa.table(columns).replace_schema_metadata({OPERATION_KEY: LEAD_REMOVAL.name.encode()})
    try:
        replace_atomically(path, lambda tmp: pq.write_table(table, tmp))
    except (OSError, pa.ArrowException) as exc:
        raise BackupError(f"{path}: cannot write the backup ({exc})") from None


@dataclass(frozen=True, slots=True)
class Recorded:
    leads: int  # leads about to be added, recorded now
    total: int  # leads in the ledger, earlier batches' and runs' included


def record_intended(
    path: Path, rows: Iterable[Row], *, keep: bool, account: str | None = None
) -> Recorded:
    """Record the leads of ``rows`` (about to be sent) the ledger does not hold; with ``keep``
    the ledger at ``path`` is kept, else it starts empty."""
    entries = read_ledger(path) if keep else []
    held = {entry.key for entry in entries}
    new = 0
    for row in rows:
        entry = Entry(row.campaign_id, str(row.payload[EMAIL]), None, account)
        if entry.key not in held:
            held.add(entry.key)
            entries.append(entry)
            new += 1
    write_ledger(path, entries)
    return Recorded(new, len(entries))


def settle(
    path: Path,
    rows: Iterable[Row],
    outcomes: Mapping[int, Outcome],
    campaigns: Mapping[int, Mapping[str, Any]],
) -> int | None:
    """Once ``rows`` were sent: take out of the ledger the leads known not to have gone in, and
    fill in the ids of those ``campaigns`` (read back) show. How many leads it holds then (None:
    nothing to change, it was not written)."""
    dropped: set[Key] = set()
    ids: dict[Key, int] = {}
    for row in rows:
        email = str(row.payload[EMAIL])
        key = (row.campaign_id, address_key(email))
        outcome = outcomes.get(row.number)
        if outcome is None or not (outcome.status in _KEPT or OUTCOME_UNKNOWN in outcome.error):
            dropped.add(key)
            continue
        found = leads_of(campaigns.get(row.campaign_id))
        lead = found.lead_id(email) if found is not None else None
        if lead is not None:
            ids[key] = lead
    if not dropped and not ids:
        return None
    entries = [
        Entry(e.campaign_id, e.email, ids.get(e.key, e.lead_id), e.account)
        for e in read_ledger(path)
        if e.key not in dropped
    ]
    write_ledger(path, entries)
    return len(entries)


APPLIED_EARLIER = Outcome(
    Status.SUCCEEDED, error="added by the interrupted run: the campaign holds it, as recorded"
)


def applied_earlier(
    path: Path, rows: Sequence[Row], unchanged: Collection[int]
) -> dict[int, Changes]:
    """Of ``rows``, those found ``unchanged`` (by number: the campaign holds their lead) as a
    run continues an interrupted one, whose ledger records their lead: it added them without
    journaling it (its answer was in flight). What each changed, by row number."""
    if not unchanged or not path.exists():
        return {}
    held = {entry.key for entry in read_ledger(path)}
    found: dict[int, Changes] = {}
    for row in rows:
        email = str(row.payload[EMAIL])
        if row.number in unchanged and (row.campaign_id, address_key(email)) in held:
            found[row.number] = Changes({EMAIL: Change(None, email)})
    return found

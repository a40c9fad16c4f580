"""A saved plan (``plan --out PLAN``): what a run would change, kept so that ``run --plan PLAN``
applies exactly that, and nothing else.

A Parquet file with a row for each row the plan would send:

- ``row``: its number in the input the plan read (the run's report numbers it so again);
- ``campaign_id``, ``account`` (with an accounts file), and the operation's columns as the row
  sends them, in their types (an empty text or an empty list is kept as such);
- ``before`` and ``after``: JSON of what the row changes, as the report's columns hold them.

Its metadata (``bulkrunner.plan``, JSON) is the plan's header (:class:`PlanHeader`): the
operation, the options that shape what is sent, the accounts (each named by ``account_id``, a
one-way hash of its server and key: never a key), the input it was made from (path and
SHA-256) and when. A run of the plan is refused unless its options and accounts are the same.

The file is written a batch at a time to a temporary file and moved into place only once the
plan is complete (``PlanWriter``): a plan stopped part way leaves none.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from bulkrunner.config.paths import Staged
from bulkrunner.config.redaction import redact
from bulkrunner.errors import UsageError
from bulkrunner.model import Changes, Row
from bulkrunner.operations import NAMES
from bulkrunner.operations.base import Operation
from bulkrunner.operations.fields import ACCOUNT, CAMPAIGN_ID
from bulkrunner.records.expected import encoded
from bulkrunner.records.undo import arrow_type

HEADER_KEY = b"bulkrunner.plan"
VERSION = 1
NUMBER, BEFORE, AFTER = "row", "before", "after"  # a plan's columns that are not the input's


@dataclass(frozen=True, slots=True)
class PlanHeader:
    """What a plan was made of and with: a run of it must match (``differences``)."""

    operation: str
    options: dict[str, Any]  # the options that shape what is sent, as the plan had them
    accounts: dict[str, str]  # account name ("": the one key) -> account_id; {}: --simulate
    simulate: bool
    input: str  # the input the plan read
    sha256: str  # of its content
    made: str  # UTC, ISO 8601
    version: int = VERSION
    extra: dict[str, Any] = field(default_factory=dict)  # a later version's, kept

    def differences(self, other: PlanHeader) -> list[str]:
        """How a run's header ``other`` differs from the plan's, in words: its options, the
        --simulate it reads, its accounts."""
        found = [
            f"{name.replace('_', '-')} {_said(value)} (this run: {_said(other.options.get(name))})"
            for name, value in self.options.items()
            if other.options.get(name) != value
        ]
        if other.simulate != self.simulate:
            found.append(f"--simulate {_said(self.simulate)}")
        for name, identity in self.accounts.items():
            theirs = other.accounts.get(name)
            whose = f"account {name}" if name else "SMARTLEAD_API_KEY"
            if theirs is None and not other.simulate:
                found.append(f"{whose} (this run has no such account)")
            elif theirs is not None and theirs != identity:
                found.append(f"{whose} opening another account (this run: another key or server)")
        return found


def _said(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def read_header(path: Path) -> PlanHeader:
    """The header of the plan at ``path``; a one-line UsageError when it is not a plan."""
    try:
        metadata = pq.read_schema(path).metadata or {}
    except FileNotFoundError:
        raise UsageError(f"{path}: plan not found") from None
    except (OSError, pa.ArrowException) as exc:
        raise UsageError(f"{path}: not a plan saved by `bulkrunner plan --out` ({exc})") from None
    raw = metadata.get(HEADER_KEY)
    if raw is None:
        raise UsageError(f"{path}: not a plan saved by `bulkrunner plan --out`")
    try:
        found = json.loads(raw)
        version = int(found.pop("version"))
        known = {name: found.pop(name) for name in PlanHeader.__dataclass_fields__ if name in found}
        header = PlanHeader(**known, version=version, extra=found)
    except (ValueError, TypeError, KeyError, AttributeError):
        raise UsageError(f"{path}: the plan's header is damaged") from None
    if not _well_formed(header):
        raise UsageError(f"{path}: the plan's header is damaged: make the plan again")
    if header.version > VERSION:
        raise UsageError(
            f"{path}: a plan saved by a later bulkrunner (version {header.version}): "
            "upgrade bulkrunner, or make the plan again"
        )
    return header


def _well_formed(header: PlanHeader) -> bool:
    """Whether each of the header's values is of its kind (a plan edited by hand may not be)."""
    texts = (header.input, header.sha256, header.made)
    return (
        header.operation in NAMES
        and isinstance(header.options, dict)
        and isinstance(header.accounts, dict)
        and all(isinstance(v, str) for v in (*header.accounts, *header.accounts.values()))
        and isinstance(header.simulate, bool)
        and all(isinstance(text, str) for text in texts)
    )


def check_columns(path: Path, columns: Sequence[str]) -> None:
    """Refuse a plan without one of the columns every plan has (edited by hand)."""
    for name in (NUMBER, CAMPAIGN_ID, BEFORE, AFTER):
        if name not in columns:
            raise UsageError(f"{path}: the plan has no {name} column: make the plan again")


def read_numbers(path: Path) -> list[int]:
    """Each row's number in the input the plan read, in the plan's order."""
    try:
        numbers: list[Any] = pq.read_table(path, columns=[NUMBER]).column(0).to_pylist()
    except (OSError, pa.ArrowException) as exc:
        said = " ".join(str(exc).split())
        raise UsageError(f"{path}: the plan's rows cannot be read ({said})") from None
    if not all(type(n) is int and n >= 1 for n in numbers):
        raise UsageError(f"{path}: the plan's row numbers are damaged: make the plan again")
    return [int(n) for n in numbers]


class PlanWriter:
    """The plan on its way to ``path``: rows added a batch at a time (``add``) to a temporary
    file, which ``commit`` moves into place; leaving the ``with`` block without committing
    removes it."""

    def __init__(
        self,
        path: Path,
        header: PlanHeader,
        operation: Operation,
        columns: Sequence[str],
        custom: Sequence[str] = (),
    ) -> None:
        """``columns``: the input's (the operation's it has, and ``account``); ``custom``: those
        it sends as custom fields (a lead's), kept as text."""
        own = {NUMBER, BEFORE, AFTER} & set(custom)
        if own:
            raise UsageError(
                f"{path}: the input's column {sorted(own)[0]!r} is one of a saved plan's own "
                "columns: rename it to save a plan of it"
            )
        self.fields = [each for each in operation.fields if each.name in columns]
        self.fields += [spec for name in custom if (spec := operation.field(name)) is not None]
        self.texts = frozenset(custom)
        accounts = ACCOUNT in columns
        columns = [pa.field(NUMBER, pa.int64()), pa.field(CAMPAIGN_ID, pa.int64())]
        if accounts:
            columns.append(pa.field(ACCOUNT, pa.string()))
        columns += [pa.field(f.name, arrow_type(f)) for f in self.fields]
        columns += [pa.field(BEFORE, pa.string()), pa.field(AFTER, pa.string())]
        fields = {name: value for name, value in asdict(header).items() if name != "extra"}
        metadata = {HEADER_KEY: json.dumps({**fields, **header.extra}).encode()}
        self.schema = pa.schema(columns, metadata)
        self.staged = Staged(path)
        self.rows = 0
        try:
            self.writer = pq.ParquetWriter(self.staged.tmp, self.schema)
        except (OSError, pa.ArrowException) as exc:
            self.staged.discard()
            raise UsageError(f"{path}: cannot write the plan ({exc})") from None

    def add(self, rows: Sequence[Row], changes: Mapping[int, Changes]) -> None:
        """The rows a batch would send, each with what it changes."""
        if not rows:
            return
        columns: dict[str, list[Any]] = {
            NUMBER: [row.number for row in rows],
            CAMPAIGN_ID: [row.campaign_id for row in rows],
        }
        if ACCOUNT in self.schema.names:
            columns[ACCOUNT] = [row.account or "" for row in rows]
        for spec in self.fields:
            cells = [_typed(row.payload.get(spec.name)) for row in rows]
            if spec.name in self.texts:  # text, or a number read from Parquet: as the text
                cells = [None if cell is None else str(cell) for cell in cells]
            columns[spec.name] = cells
        found = [changes.get(row.number, Changes()) for row in rows]
        columns[BEFORE] = [encoded({k: c.before for k, c in each.items()}) for each in found]
        columns[AFTER] = [encoded({k: c.after for k, c in each.items()}) for each in found]
        try:
            self.writer.write_table(pa.table(columns, schema=self.schema.remove_metadata()))
        except (OSError, pa.ArrowException) as exc:
            raise UsageError(f"{self.staged.target}: cannot write the plan ({exc})") from None
        self.rows += len(rows)

    def commit(self) -> Path:
        self.writer.close()
        return self.staged.commit()

    def __enter__(self) -> PlanWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.staged.committed:
            self.writer.close()
            self.staged.discard()


def _typed(value: Any) -> Any:
    """A payload's value as its column holds it: text redacted (never the key in a file)."""
    if isinstance(value, str):
        return redact(str(value))
    if isinstance(value, list | tuple):
        return [_typed(item) for item in value]
    return value

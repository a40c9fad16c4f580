"""Backups: the current values of exactly the fields a run is about to change, as an input file.

The backup is Parquet, because it must restore values a blank CSV cell cannot express: an empty
``unsubscribe_text`` is an empty string, an empty ``track_settings`` an empty list, while a
field the run does not change is null (left unchanged). ``bulkrunner rollback`` (or ``run`` on
the backup) puts the old values back.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from bulkrunner.current import Change, canonical
from bulkrunner.fields import CAMPAIGN_ID, FIELDS, Field
from bulkrunner.redaction import redact

_TYPES: dict[str, pa.DataType] = {
    "enum_list": pa.list_(pa.string()),
    "enum": pa.string(),
    "int": pa.int64(),
    "bool": pa.bool_(),
    "text": pa.string(),
}


def backup_path(report_path: Path) -> Path:
    return report_path.with_name(f"{report_path.stem}.backup.parquet")


def write_backup(path: Path, changes: Mapping[int, Mapping[str, Change]]) -> int:
    """Write the ``before`` of every change, one row per campaign; returns the rows written.

    Fields whose current value is unknown cannot be restored and are left null.
    """
    used = [f for f in FIELDS if any(f.name in fields for fields in changes.values())]
    columns: dict[str, list[object]] = {CAMPAIGN_ID: list(changes)}
    for field in used:
        columns[field.name] = [
            _before(field, fields[field.name]) if field.name in fields else None
            for fields in changes.values()
        ]
    schema = pa.schema(
        [pa.field(CAMPAIGN_ID, pa.int64()), *(pa.field(f.name, _TYPES[f.kind]) for f in used)]
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(pa.table(columns, schema=schema), tmp)
    os.replace(tmp, path)
    return len(changes)


def _before(field: Field, change: Change) -> object:
    """The current value in the column's type; None (cannot be restored) when the server gave
    something of another type ("abc" as a number). Text is redacted: never the key in a file."""
    value = change.before
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

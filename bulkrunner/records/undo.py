"""What undoes a campaign's change, as a row of the backup: each value it had before the run, in
its column's type, or why a rollback cannot put it back.

A change cannot be undone when the operation says so (``Undo.reason``: a campaign the run stops,
one that was a draft), when the field had no value before the run (no API call takes a value
away), when the value the server showed is not of the field's type (``"abc"`` as a number), or
when it holds the API key (as the server showed it, ``REDACTED``: answers are redacted as they
are read): no file holds the key, and a rollback must not put ``REDACTED`` in its place.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from bulkrunner.config.redaction import holds_secret
from bulkrunner.model import Change
from bulkrunner.operations.base import Operation
from bulkrunner.operations.cells import INT64
from bulkrunner.operations.fields import Field
from bulkrunner.operations.state import canonical
from bulkrunner.operations.syntax import list_items

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


def undo_row(operation: Operation, changes: Mapping[str, Change]) -> tuple[dict[str, Any], str]:
    """The values that undo ``changes``, each in its column's type, and why a rollback could
    not undo the rest ("" when it can): the operation's reason, fields that had no value before
    the run (sent with --allow-irreversible), values the column's type cannot hold."""
    undone = operation.undo(changes)
    values: dict[str, Any] = {}
    lost: list[str] = []
    odd: list[str] = []  # "abc" as a number
    keyed: list[str] = []  # a user's link holding the key
    for name, value in undone.values.items():
        spec = operation.field(name)
        if spec is None:
            continue
        if holds_secret(value):
            keyed.append(name)
            continue
        kept = _before(spec, value) if value is not None else None
        if kept is not None:
            values[name] = kept
        else:
            (lost if value is None else odd).append(name)
    reasons = [undone.reason] if undone.reason else []
    if lost:
        reasons.append(
            f"{', '.join(lost)} had no value before the run, and no API call takes a value away"
        )
    if odd:
        reasons.append(
            f"{', '.join(odd)}: the value before the run is not of the field's type, so the "
            "backup cannot hold it"
        )
    if keyed:
        reasons.append(
            f"{', '.join(keyed)}: the value before the run holds the API key (read as REDACTED), "
            "which no file holds, so the backup cannot hold it"
        )
    return values, "; ".join(reasons)


def arrow_type(field: Field) -> pa.DataType:
    """The column type of ``field`` in a backup (or an exported Parquet file)."""
    if field.kind == "custom":
        return _ARROW[field.arrow]
    return _TYPES[field.kind]


def _before(field: Field, value: Any) -> object:
    """The value in the column's type; None (cannot be restored) when the server gave
    something of another type ("abc" as a number)."""
    if field.kind == "custom":
        return _custom(field, value)
    if value is None:
        return None
    if field.kind == "enum_list":
        items = value if isinstance(value, list) else list_items(str(value))
        return [str(item) for item in items if str(item).strip()]
    if field.kind == "int":
        known = canonical(field.name, value)
        return known if _int64(known) else None
    if field.kind == "bool":
        known = canonical(field.name, value)
        return known if type(known) is bool else None
    return str(value)


def _int64(value: Any) -> bool:
    """Whether ``value`` is a whole number a backup's 64-bit column holds."""
    return type(value) is int and INT64[0] <= value <= INT64[1]


def _custom(field: Field, value: Any) -> object:
    """A custom field's value in its declared column type (None when it is not of it)."""
    if field.arrow == "int64":
        return value if _int64(value) else None
    if field.arrow == "list<int64>":
        items = list(value) if isinstance(value, list | tuple | set | frozenset) else None
        ok = items is not None and all(_int64(item) for item in items)
        return sorted(items) if ok and items is not None else None
    if field.arrow == "list<string>":
        items = list(value) if isinstance(value, list | tuple) else None
        return [str(item) for item in items] if items is not None else None
    return str(value)

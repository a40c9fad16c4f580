"""What a campaign is expected to be now, as a file records it: what a run set in it (its
backup's ``set_by_run`` column), or what a saved plan found before (the plan's ``before``).

Each is the JSON text of values by the keys of a row's changes (``Changes``: a field's name,
or for email accounts the attached ids), as a report's ``before`` and ``after`` columns hold
them, and is read back a batch of campaigns at a time: a run never holds a whole file's.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from bulkrunner.config.redaction import redact
from bulkrunner.operations.fields import CAMPAIGN_ID

_BATCH_ROWS = 65_536  # rows of a file read at a time


class UnreadableRecord(Exception):
    """The file's record cannot be read; the message names the file."""


def encoded(values: Mapping[str, Any]) -> str:
    """``values`` as JSON text, the key redacted (as a report's ``after``)."""
    return redact(json.dumps(dict(values), default=str, ensure_ascii=False))


def decoded(text: Any) -> dict[str, Any] | None:
    """The values of a JSON text that ``encoded`` wrote; None for anything else."""
    if not isinstance(text, str):
        return None
    try:
        found = json.loads(text)
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


def merged(recorded: Any, later: Mapping[str, Any]) -> str:
    """The JSON text ``recorded`` (or nothing) with the values of ``later`` added over it: what
    a job set, once a resumed run sets some fields again."""
    return encoded({**(decoded(recorded) or {}), **later})


def has_column(path: Path, column: str) -> bool:
    """Whether the Parquet file at ``path`` has ``column``."""
    try:
        return column in pq.read_schema(path).names
    except (OSError, pa.ArrowException) as exc:
        raise UnreadableRecord(f"{path}: cannot be read ({exc})") from None


def read_expected(path: Path, column: str, campaigns: Collection[int]) -> dict[int, dict[str, Any]]:
    """The values ``column`` of the Parquet file at ``path`` holds for ``campaigns`` (a
    campaign with none, or not in the file, is left out), reading a batch of rows at a time."""
    wanted = pa.array(list(campaigns), pa.int64())
    found: dict[int, dict[str, Any]] = {}
    for campaign, text in _cells(path, column, wanted):
        values = decoded(text)
        if values is None and text is not None:
            raise UnreadableRecord(f"{path}: campaign {campaign}'s {column} is not JSON values")
        if values is not None:
            found[campaign] = values
    return found


def _cells(path: Path, column: str, wanted: pa.Array) -> Iterator[tuple[int, Any]]:
    try:
        with pq.ParquetFile(path) as parquet:
            if column not in parquet.schema_arrow.names:
                return
            for batch in parquet.iter_batches(
                batch_size=_BATCH_ROWS, columns=[CAMPAIGN_ID, column]
            ):
                ids = batch.column(CAMPAIGN_ID)
                ids = ids if ids.type == pa.int64() else ids.cast(pa.int64())
                mine = pc.fill_null(pc.is_in(ids, value_set=wanted), False)
                chosen = batch.filter(mine)
                yield from zip(
                    (int(c) for c in chosen.column(0).to_pylist()),
                    chosen.column(1).to_pylist(),
                    strict=True,
                )
    except (OSError, pa.ArrowException, KeyError) as exc:
        raise UnreadableRecord(f"{path}: cannot be read ({exc})") from None

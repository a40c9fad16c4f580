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
from bulkrunner.operations.base import Target, campaign_of
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


def read_expected(
    path: Path, column: str, targets: Collection[Target], key: str | None = None
) -> dict[Target, dict[str, Any]]:
    """The values ``column`` of the Parquet file at ``path`` holds for ``targets`` (campaigns;
    with ``key``, campaigns and the ``key`` column's values: a lead's campaign and address); one
    with none, or not in the file, is left out. Read a batch of rows at a time."""
    wanted = pa.array(sorted({campaign_of(target) for target in targets}), pa.int64())
    found: dict[Target, dict[str, Any]] = {}
    for campaign, named, text in _cells(path, column, wanted, key):
        target: Target = campaign if key is None else (campaign, str(named))
        if key is not None and target not in targets:
            continue
        values = decoded(text)
        if values is None and text is not None:
            raise UnreadableRecord(f"{path}: campaign {campaign}'s {column} is not JSON values")
        if values is not None:
            found[target] = values
    return found


def _cells(
    path: Path, column: str, wanted: pa.Array, key: str | None
) -> Iterator[tuple[int, Any, Any]]:
    """Each wanted campaign's rows: its id, its ``key`` cell (None without one) and ``column``."""
    try:
        with pq.ParquetFile(path) as parquet:
            if column not in parquet.schema_arrow.names:
                return
            read = [CAMPAIGN_ID, *([key] if key is not None else []), column]
            for batch in parquet.iter_batches(batch_size=_BATCH_ROWS, columns=read):
                ids = batch.column(CAMPAIGN_ID)
                ids = ids if ids.type == pa.int64() else ids.cast(pa.int64())
                chosen = batch.filter(pc.fill_null(pc.is_in(ids, value_set=wanted), False))
                keys = chosen.column(1).to_pylist() if key is not None else [None] * len(chosen)
                yield from zip(
                    (int(c) for c in chosen.column(0).to_pylist()),
                    keys,
                    chosen.column(len(read) - 1).to_pylist(),
                    strict=True,
                )
    except (OSError, pa.ArrowException, KeyError) as exc:
        raise UnreadableRecord(f"{path}: cannot be read ({exc})") from None

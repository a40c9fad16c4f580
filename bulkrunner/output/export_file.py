"""An export's file: the campaigns' state as an input file of the operation, CSV or Parquet.

A CSV export spells its cells as every CSV file of bulkrunner does (``syntax.csv_cell``); a
Parquet one holds each column in the type a backup of the operation gives it. Either replaces
the file atomically, so that an export is never seen half written. An export to standard output
(``--output -``) is CSV, written and checked in a temporary file first (``piped``): what reaches
the output is the whole file, or nothing.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import pandas as pd

from bulkrunner.config.paths import replace_atomically
from bulkrunner.errors import Aborted
from bulkrunner.operations.base import Operation
from bulkrunner.operations.fields import CAMPAIGN_ID, NAME, Field
from bulkrunner.operations.syntax import EmptyText, csv_cell
from bulkrunner.output.events import to_nowhere
from bulkrunner.output.formats import write_csv
from bulkrunner.records.backup import OPERATION_KEY
from bulkrunner.records.undo import arrow_type


def write_export_file(frame: pd.DataFrame, operation: Operation, path: Path) -> Path:
    """``frame`` (``campaign_id``, the campaigns' ``name`` and the operation's columns) written
    to ``path``, CSV or Parquet by its extension, atomically; OSError when it cannot be."""

    def write(tmp: Path) -> None:
        if path.suffix.lower() == ".parquet":
            _write_parquet(frame, operation, tmp)
        else:
            with tmp.open("w", encoding="utf-8", newline="") as stream:
                write_csv(as_csv_cells(frame, operation), stream, header=True)

    return replace_atomically(path, write)


def as_csv_cells(frame: pd.DataFrame, operation: Operation) -> pd.DataFrame:
    """``frame`` as the CSV cells that read back as its values, written as reports write them
    (``syntax.csv_cell``); an empty text of a text column is the empty text, not a blank."""
    out = frame.copy()
    for name in frame.columns:
        spec = operation.field(str(name))
        cells = [csv_cell(_value(value, spec)) for value in frame[name].tolist()]
        out[name] = pd.Series(cells, index=frame.index, dtype=object)  # 7 stays 7, not 7.0
    return out


def _value(value: Any, spec: Field | None) -> Any:
    """The server's empty text is the empty text in a text column, else no value."""
    if not isinstance(value, str) or value:
        return value
    return EmptyText() if spec is not None and spec.kind == "text" else None


def _write_parquet(frame: pd.DataFrame, operation: Operation, target: Path) -> None:
    """Each column in its type (``undo.arrow_type``: the type a backup of the operation has),
    or as text where the server's values do not fit it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrays: dict[str, Any] = {CAMPAIGN_ID: pa.array(frame[CAMPAIGN_ID].tolist(), pa.int64())}
    if NAME in frame.columns:  # text for people, whatever the server gave
        names = frame[NAME].tolist()
        arrays[NAME] = pa.array([None if n is None else str(n) for n in names], pa.string())
    for name in frame.columns[1:]:
        if name == NAME:
            continue
        spec = operation.field(str(name))
        assert spec is not None
        values = frame[name].tolist()
        try:
            arrays[str(name)] = pa.array(values, type=arrow_type(spec))
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
            texts = [csv_cell(_value(value, spec)) for value in values]
            arrays[str(name)] = pa.array(
                [None if text is None else str(text) for text in texts], pa.string()
            )
    table = pa.table(arrays).replace_schema_metadata({OPERATION_KEY: operation.name.encode()})
    pq.write_table(table, target)


@contextlib.contextmanager
def piped(stream: TextIO) -> Iterator[Path]:
    """The temporary CSV file an export to ``stream`` (standard output) is written and checked
    in; copied to ``stream`` when the block ends without an error, and removed either way."""
    with tempfile.TemporaryDirectory(prefix="bulkrunner-export-") as folder:
        path = Path(folder) / "export.csv"
        yield path
        _copy_out(path, stream)


def _copy_out(path: Path, stream: TextIO) -> None:
    """The file's bytes (UTF-8) on ``stream``, through its binary buffer when it has one."""
    try:
        stream.flush()
        binary = getattr(stream, "buffer", None)
        with path.open("rb") as handle:
            if binary is not None:
                shutil.copyfileobj(handle, binary)
                binary.flush()
            else:
                stream.write(handle.read().decode("utf-8"))
                stream.flush()
    except BrokenPipeError:  # the reader went away (``| head``)
        to_nowhere(stream)
        raise Aborted("standard output was closed before the whole export was written") from None

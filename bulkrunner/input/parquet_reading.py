"""A Parquet input file read in its native types: a null is "leave unchanged", an empty string an
empty text (``EmptyText``); a column no setting can be (a struct, map or binary one) is refused,
and a damaged page is found before any row is used.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from bulkrunner.errors import InputFileError
from bulkrunner.input.files import Reader, canonical_names, reading
from bulkrunner.operations.fields import FIELDS
from bulkrunner.operations.syntax import EmptyText

if TYPE_CHECKING:
    import pyarrow as pa


def read_parquet(path: Path) -> pd.DataFrame:
    """The whole file, its headers read as the columns they mean."""
    import pyarrow.parquet as pq

    with _parquet_errors(path, reword=False):
        table = pq.read_table(path)
    if table.num_columns == 0:
        raise InputFileError(path, "file is empty")
    _check_parquet_types(path, table.schema)
    _check_text(path, table.schema.names, table.columns, 0)
    return _frame(table)


def explicit_empties(frame: pd.DataFrame) -> pd.DataFrame:
    """In Parquet an empty string is a value (null is "unchanged"): mark it so for text fields."""
    for spec in FIELDS:
        if spec.kind == "text" and spec.name in frame.columns:
            cells = [EmptyText() if isinstance(v, str) and v == "" else v for v in frame[spec.name]]
            frame[spec.name] = pd.Series(cells, index=frame.index, dtype=object)
    return frame


def scan_parquet(path: Path, size: int) -> tuple[list[str], int, Reader]:
    """Decode the whole file ``size`` rows at a time: its columns, its rows, and how to read it
    again a chunk at a time."""
    import pyarrow.parquet as pq

    with _parquet_errors(path), pq.ParquetFile(path) as file:
        schema = file.schema_arrow
        # Decode every page now, so that a damaged one is reported before any output.
        rows = 0
        for batch in file.iter_batches(batch_size=size):
            _check_text(path, schema.names, batch.columns, rows)
            rows += batch.num_rows
    if not schema.names:
        raise InputFileError(path, "file is empty")
    _check_parquet_types(path, schema)
    columns = canonical_names(_stripped(schema))
    stripped = [str(name).strip() for name in schema.names]
    fields = dict(zip(canonical_names(stripped), schema.names, strict=True))

    def read(size: int, chosen: Sequence[str] | None) -> Iterator[pd.DataFrame]:
        wanted = None if chosen is None else [fields[name] for name in chosen]
        with reading(path), _parquet_errors(path), pq.ParquetFile(path) as file:
            for batch in file.iter_batches(batch_size=size, columns=wanted):
                yield _frame(batch)

    return columns, rows, read


def parquet_header(path: Path) -> list[str]:
    """The column names as written (stripped), for the log of how they were read."""
    import pyarrow.parquet as pq

    with _parquet_errors(path):
        return _stripped(pq.read_schema(path))


def _stripped(schema: pa.Schema) -> list[str]:
    return [str(name).strip() for name in schema.empty_table().to_pandas().columns]


def _check_parquet_types(path: Path, schema: pa.Schema) -> None:
    """Reject a column of structs, maps or bytes: no setting is one, and their cells would
    reach the rows as Python objects no field can read."""
    for name, kind in zip(schema.names, schema.types, strict=True):
        odd = _odd_type(kind)
        if odd is not None:
            raise InputFileError(
                path,
                f"column {str(name).strip()!r} holds {odd} values (Parquet type {kind}); "
                "settings are numbers, text, true/false or lists of text",
            )


def _check_text(
    path: Path, names: Sequence[str], columns: Sequence[pa.Array | pa.ChunkedArray], start: int
) -> None:
    """Refuse text holding a NUL character (``columns``: rows ``start`` + 1 on), as a CSV file
    holding one is refused: no file of text holds it, and every report and export of it
    would be refused as an input in turn."""
    import pyarrow as pa

    for name, column in zip(names, columns, strict=True):
        chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
        first = start
        for chunk in chunks:
            at = _nul_at(chunk)
            if at is not None:
                raise InputFileError(
                    path,
                    f"column {str(name).strip()!r} row {first + at + 1} holds a NUL character, "
                    "which no text file holds: take it out",
                )
            first += len(chunk)


def _nul_at(cells: pa.Array) -> int | None:
    """The position of the first row of ``cells`` with a text holding a NUL character."""
    import pyarrow as pa
    import pyarrow.compute as pc

    rows = None  # of a list's items: the row each is in
    if pa.types.is_dictionary(cells.type):
        cells = cells.dictionary_decode()
    if pa.types.is_list(cells.type) or pa.types.is_large_list(cells.type):
        rows, cells = pc.list_parent_indices(cells), pc.list_flatten(cells)
        if pa.types.is_dictionary(cells.type):
            cells = cells.dictionary_decode()
    if not (pa.types.is_string(cells.type) or pa.types.is_large_string(cells.type)):
        return None
    found = pc.match_substring(cells, "\x00")
    if not pc.any(found).as_py():
        return None
    index = pc.index(found, True).as_py()
    return int(rows[index].as_py()) if rows is not None else int(index)


def _odd_type(kind: pa.DataType) -> str | None:
    """What makes ``kind`` unreadable as a setting ("struct", "map", "binary"), or None."""
    import pyarrow as pa

    if pa.types.is_dictionary(kind):
        return _odd_type(kind.value_type)
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        return _odd_type(kind.value_type)
    if pa.types.is_struct(kind):
        return "struct"
    if pa.types.is_map(kind):
        return "map"
    if pa.types.is_union(kind):
        return "union"
    if (
        pa.types.is_binary(kind)
        or pa.types.is_large_binary(kind)
        or pa.types.is_fixed_size_binary(kind)
    ):
        return "binary"
    return None


def _frame(data: pa.RecordBatch | pa.Table) -> pd.DataFrame:
    """``data`` (a chunk, or the whole file) as rows of cells, each whole number as it is
    written, the headers read as the columns they mean."""
    frame = _pandas(data)
    frame.columns = pd.Index(canonical_names([str(name).strip() for name in frame.columns]))
    return explicit_empties(frame.reset_index(drop=True).astype(object))


def read_parquet_frame(path: Path) -> pd.DataFrame:
    """The file at ``path`` as it is (an earlier report), each whole number as it is written."""
    import pyarrow.parquet as pq

    return _pandas(pq.read_table(path))


def _pandas(data: pa.RecordBatch | pa.Table) -> pd.DataFrame:
    """``data`` as a DataFrame, a whole number column holding a null as Python ints and None:
    pyarrow makes it floats by default, and a float rounds a number above 2**53 (campaign
    9007199254740993 would be sent as 9007199254740992)."""
    frame: pd.DataFrame = data.to_pandas(integer_object_nulls=True)
    return frame


@contextlib.contextmanager
def _parquet_errors(path: Path, *, reword: bool = True) -> Iterator[None]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    unreadable = (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError)
    try:
        yield
    except unreadable as exc:
        if isinstance(exc, FileNotFoundError | PermissionError):
            raise
        problem: BaseException = exc
        if reword:  # on this error path only: let read_table word it, as load_input does
            try:
                pq.read_table(path)
            except unreadable as again:
                problem = again
        detail = str(problem).strip().splitlines()[0] if str(problem).strip() else "unknown error"
        raise InputFileError(path, f"is not a readable Parquet file ({detail})") from None

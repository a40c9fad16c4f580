"""Read the input file (CSV or Parquet) and reject files that cannot be used.

Cells are kept as the user wrote them: CSV cells as strings (a blank cell is ``""``), Parquet cells
in their native types. A CSV is read as spreadsheets save it: its encoding (UTF-8, UTF-16 with a
byte-order mark, Windows-1252) and delimiter (comma, semicolon, tab) are found from the file,
headers are matched forgivingly (``Campaign ID`` is campaign_id), and entirely blank rows and
empty unnamed columns are left out and counted. Making sense of the values is validation's
job; this module only answers "is this a usable table of campaign settings?" and raises
:class:`InputFileError` when it is not.

Two ways in: ``load_input`` gives the whole file as one DataFrame (a real run sends every row, so
it holds them all anyway); ``open_input`` reads the whole file once to check it, keeps none of
it, and then hands it out a chunk at a time (a dry run or ``bulkrunner validate`` of a million
rows holds one chunk). Both raise the same errors, before the caller has seen a single row.
"""

from __future__ import annotations

import contextlib
import csv
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from bulkrunner.errors import InputFileError
from bulkrunner.input.files import (
    Ignored,
    accepted,
    canonical_names,
    check_path,
    check_unnamed,
    csv_header,
    input_columns,
    not_text,
    reading,
    report_ignored,
)
from bulkrunner.model import count, echoed, unechoed
from bulkrunner.operations.fields import CAMPAIGN_ID, FIELDS
from bulkrunner.operations.syntax import EmptyText, unescape_cell

if TYPE_CHECKING:
    import pyarrow as pa

    from bulkrunner.operations import Operation

CHUNK_ROWS = 50_000  # rows per chunk of a streamed file: a few tens of MB as DataFrames
# Every cell a string, as written: no type guessing, no "NA" turned into a missing value.
_CSV_OPTIONS: dict[str, Any] = {
    "dtype": object,
    "keep_default_na": False,
    "na_filter": False,
    "encoding": "utf-8-sig",
    "index_col": False,
}

Reader = Callable[[int, Sequence[str] | None], Iterator[pd.DataFrame]]
Watch = Callable[["pd.Series[Any]"], None]


@dataclass(frozen=True, slots=True)
class InputFile:
    """A table that passed every file-level check, to be read a chunk at a time."""

    path: Path
    columns: tuple[str, ...]
    rows: int
    read: Reader = field(repr=False)
    ignored: Ignored = field(default_factory=Ignored)
    watched: bool = False  # whether ``open_input`` gave its ``watch`` every campaign_id cell

    def chunks(
        self, rows: int | None = None, columns: Sequence[str] | None = None
    ) -> Iterator[pd.DataFrame]:
        """The rows as ``load_input`` gives them, at most ``rows`` (default ``CHUNK_ROWS``) at a
        time, each chunk indexed from 0. Given ``columns``, only those are converted (and, from
        Parquet, decoded): reading one column of a long file costs a fraction of reading it."""
        return self.read(rows or CHUNK_ROWS, columns)

    @classmethod
    def of(cls, path: Path, frame: pd.DataFrame) -> InputFile:
        """A table already in memory (an earlier report's rows, for ``retry``)."""

        def read(rows: int, columns: Sequence[str] | None) -> Iterator[pd.DataFrame]:
            chosen = frame if columns is None else frame[list(columns)]
            for start in range(0, len(chosen), rows):
                yield chosen.iloc[start : start + rows].reset_index(drop=True)

        return cls(path, tuple(str(c) for c in frame.columns), len(frame), read)


def load_input(path: Path) -> pd.DataFrame:
    """Load ``path`` and check its columns; raises :class:`InputFileError` for file problems.

    Headers are matched forgivingly (see :func:`canonical_names`); entirely blank rows and
    empty unnamed columns are left out, so row numbers count the rows that are not blank."""
    return read_input(path)[0]


def read_input(path: Path, operation: Operation | None = None) -> tuple[pd.DataFrame, Ignored]:
    """``load_input``, and what it left out; its columns are those of ``operation`` (by default,
    settings)."""
    suffix = check_path(path)
    with reading(path):
        if suffix == ".csv":
            frame, raw, ignored = _read_csv(path)
        else:
            frame, raw, ignored = _read_parquet(path), _parquet_header(path), Ignored()
    columns = [str(column) for column in frame.columns]
    kept = input_columns(path, columns)
    if kept != columns:  # a report: its result columns are not settings
        raw = [name for name, column in zip(raw, columns, strict=True) if column in kept]
        frame = frame[kept].rename(columns=unechoed)  # wanted_status: the input's status
        kept = [unechoed(name) for name in kept]
    accepted(path, raw, kept, len(frame), operation)
    if suffix == ".csv":  # the spreadsheet escape of the CSV files bulkrunner writes
        frame = unescape_cells(frame)
    report_ignored(path, ignored)
    return frame.reset_index(drop=True), ignored


def open_input(
    path: Path, watch: Watch | None = None, operation: Operation | None = None
) -> InputFile:
    """Check ``path`` as ``load_input`` does, reading it once from end to end but keeping none
    of it: a file that cannot be used fails here, before anything is reported.

    A CSV file is parsed whole to check it: ``watch``, if given, is handed its ``campaign_id``
    column a chunk at a time as ``chunks`` would give it (``watched`` then says so), so that
    repeated campaigns can be found without parsing the file once more."""
    suffix = check_path(path)
    watched = False
    with reading(path):
        if suffix == ".csv":
            raw, columns, rows, read, ignored = _scan_csv(path, watch)
            watched = watch is not None and CAMPAIGN_ID in columns
        else:
            (columns, rows, read), ignored = _scan_parquet(path), Ignored()
            raw = _parquet_header(path)
    kept = input_columns(path, columns)
    if kept != columns or suffix == ".csv":
        # a report: read only its input columns, as the user wrote them; a CSV file's cells
        # without the spreadsheet escape of the files bulkrunner writes (reports, exports)
        raw = [name for name, column in zip(raw, columns, strict=True) if column in kept]
        whole = read

        def read(size: int, chosen: Sequence[str] | None) -> Iterator[pd.DataFrame]:
            names = echo if chosen is None else [echoed(name) for name in chosen]
            for chunk in whole(size, names):
                chunk = chunk.rename(columns=unechoed)  # wanted_status: the input's status
                yield unescape_cells(chunk) if suffix == ".csv" else chunk

        echo = kept
        kept = [unechoed(name) for name in kept]

    accepted(path, raw, kept, rows, operation)
    report_ignored(path, ignored)
    return InputFile(path, tuple(kept), rows, read, ignored, watched)


def unescape_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` (cells read from a CSV file) with the spreadsheet escape undone: only the
    columns with a cell starting with a quote are looked at cell by cell."""
    out = frame.copy(deep=False)
    for column in out.columns:
        cells = out[column]
        if cells.dtype == object and _quoted(cells):
            out[column] = cells.map(unescape_cell)
    return out


def _quoted(cells: pd.Series[Any]) -> bool:
    """Whether a text cell of ``cells`` starts with a quote (looked for in bulk)."""
    try:
        return bool(cells.str.startswith("'", na=False).any())
    except AttributeError:  # no text at all in the column
        return False


# --- CSV ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Csv:
    """How a CSV file is written, and what its scan found: kept columns (canonical names and
    their positions in the file) and the positions of the entirely blank rows, ignored."""

    encoding: str
    sep: str
    header: list[str]  # every header cell as written, stripped
    names: list[str]  # the kept columns, canonical
    positions: list[int]  # their positions in the file
    blank: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))

    @property
    def options(self) -> dict[str, Any]:
        return {**_CSV_OPTIONS, "encoding": self.encoding, "sep": self.sep}


def _csv_form(path: Path) -> _Csv:
    """The file's encoding, delimiter and header, and the unnamed columns it may leave out."""
    found = csv_header(path)
    return _Csv(found.encoding, found.sep, found.header, found.names, found.positions)


def _read_csv(path: Path) -> tuple[pd.DataFrame, list[str], Ignored]:
    form = _csv_form(path)
    with _csv_errors(path, form):
        frame: pd.DataFrame = pd.read_csv(path, **form.options)
    # pandas renames a repeated header to "name.1"; judge the header as written instead.
    frame.columns = pd.RangeIndex(len(form.header))
    unnamed = [i for i in range(len(form.header)) if i not in form.positions]
    empty = [i for i in unnamed if _blank_cells(frame[i]).all()]
    blank = _blank_rows(frame)
    check_unnamed(path, form.header, [i for i in unnamed if i not in empty])
    frame = frame.loc[~blank, form.positions]
    frame.columns = pd.Index(form.names)
    raw = [form.header[i] for i in form.positions]
    return frame, raw, Ignored(int(blank.sum()), len(empty), _between(blank))


def _scan_csv(
    path: Path, watch: Watch | None = None
) -> tuple[list[str], list[str], int, Reader, Ignored]:
    form = _csv_form(path)
    unnamed = [i for i in range(len(form.header)) if i not in form.positions]
    if CAMPAIGN_ID not in form.names:
        watch = None  # the file is refused once scanned
    elif watch is not None:
        ids_at = form.positions[form.names.index(CAMPAIGN_ID)]
        seen = watch  # the cells unescaped, as ``open_input`` reads every CSV file's
        watch = lambda cells: seen(cells.map(unescape_cell) if _quoted(cells) else cells)  # noqa: E731
    filled: set[int] = set()
    blank: list[npt.NDArray[np.int64]] = []
    rows = last = 0  # last: the number of rows up to the last one with data
    for chunk in _parsed(path, form, CHUNK_ROWS):
        chunk.columns = pd.RangeIndex(len(form.header))
        filled.update(i for i in unnamed if not _blank_cells(chunk[i]).all())
        empty = _blank_rows(chunk)
        blank.append(np.flatnonzero(empty) + rows)
        if watch is not None:
            ids = chunk.loc[~empty, ids_at]
            if len(ids):
                watch(ids.rename(CAMPAIGN_ID).reset_index(drop=True))
        filled_rows = np.flatnonzero(~empty)
        last = rows + int(filled_rows[-1]) + 1 if len(filled_rows) else last
        rows += len(chunk)
    check_unnamed(path, form.header, sorted(filled))
    form = replace(form, blank=np.concatenate(blank) if blank else form.blank)
    between = int(np.searchsorted(form.blank, last))
    ignored = Ignored(len(form.blank), len(unnamed) - len(filled), between)

    def read(size: int, columns: Sequence[str] | None) -> Iterator[pd.DataFrame]:
        with reading(path):
            yield from _csv_chunks(path, form, size, columns)

    raw = [form.header[i] for i in form.positions]
    return raw, form.names, rows - ignored.rows, read, ignored


def _parsed(
    path: Path, form: _Csv, size: int, usecols: list[int] | None = None
) -> Iterator[pd.DataFrame]:
    """The file parsed ``size`` rows at a time, each parser error as one line naming it."""
    with _csv_errors(path, form):
        reader = pd.read_csv(path, chunksize=size, usecols=usecols, **form.options)
    with reader:
        while True:
            with _csv_errors(path, form):
                chunk = next(reader, None)
            if chunk is None:
                return
            yield chunk


def _csv_chunks(
    path: Path, form: _Csv, size: int, columns: Sequence[str] | None
) -> Iterator[pd.DataFrame]:
    names = form.names if columns is None else list(columns)
    # By position: the header as written, not as pandas renames or strips it.
    wanted = [form.positions[form.names.index(name)] for name in names]
    start = 0
    for chunk in _parsed(path, form, size, usecols=wanted):
        # usecols keeps the file's order: put the columns in the order asked for
        chunk.columns = pd.RangeIndex(len(chunk.columns))
        chunk = chunk[[sorted(wanted).index(position) for position in wanted]]
        end = start + len(chunk)
        lo, hi = np.searchsorted(form.blank, [start, end])
        if hi > lo:
            chunk = chunk.drop(index=chunk.index[form.blank[lo:hi] - start])
        start = end
        if chunk.empty:
            continue
        chunk.columns = pd.Index(names)
        chunk.index = pd.RangeIndex(len(chunk))
        yield chunk


def _blank_cells(cells: pd.Series[Any]) -> npt.NDArray[np.bool_]:
    return np.asarray(cells.astype(str).str.strip().eq("").to_numpy(), dtype=bool)


def _blank_rows(frame: pd.DataFrame) -> npt.NDArray[np.bool_]:
    """Which rows have nothing but blank cells: looked at a column at a time, and only at
    the rows still blank, so a normal file costs one pass over its first column."""
    blank = np.ones(len(frame), dtype=bool)
    for position in range(frame.shape[1]):
        at = np.flatnonzero(blank)
        if not len(at):
            break
        blank[at] = _blank_cells(frame.iloc[at, position])
    return blank


def _between(blank: npt.NDArray[np.bool_]) -> int:
    """How many of the blank rows come before the last row that is not blank."""
    filled = np.flatnonzero(~blank)
    return int(blank[: filled[-1]].sum()) if len(filled) else 0


@contextlib.contextmanager
def _csv_errors(path: Path, form: _Csv) -> Iterator[None]:
    """Turn what pandas says about a broken CSV into one line naming the file and the problem."""
    try:
        with warnings.catch_warnings():
            # Surplus cells in a row would be dropped with only a warning: make it an error.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            yield
    except pd.errors.ParserWarning:
        raise InputFileError(path, _surplus_cells(path, form) or "malformed CSV") from None
    except UnicodeError:
        raise InputFileError(path, not_text(form.encoding)) from None
    except (pd.errors.ParserError, csv.Error) as exc:
        detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else "malformed CSV"
        surplus = _surplus_cells(path, form)
        raise InputFileError(path, surplus or f"cannot parse as CSV: {detail}") from None


def _surplus_cells(path: Path, form: _Csv) -> str | None:
    """Which line has more cells than the header, if one does (only read on the error path)."""
    columns = len(form.header)
    try:
        with path.open(encoding=form.encoding, newline="") as handle:
            reader = csv.reader(handle, delimiter=form.sep)
            for cells in reader:
                if len(cells) > columns:
                    return (
                        f"line {reader.line_num} has {len(cells)} cells but the header has "
                        f"{count(columns, 'column')}"
                    )
    except (csv.Error, UnicodeError):
        return None
    return None


# --- Parquet ------------------------------------------------------------------------------------


def _read_parquet(path: Path) -> pd.DataFrame:
    import pyarrow.parquet as pq

    with _parquet_errors(path, reword=False):
        table = pq.read_table(path)
    if table.num_columns == 0:
        raise InputFileError(path, "file is empty")
    _check_parquet_types(path, table.schema)
    frame: pd.DataFrame = table.to_pandas()
    frame.columns = pd.Index(canonical_names([str(name).strip() for name in frame.columns]))
    return explicit_empties(frame.astype(object))


def explicit_empties(frame: pd.DataFrame) -> pd.DataFrame:
    """In Parquet an empty string is a value (null is "unchanged"): mark it so for text fields."""
    for spec in FIELDS:
        if spec.kind == "text" and spec.name in frame.columns:
            cells = [EmptyText() if isinstance(v, str) and v == "" else v for v in frame[spec.name]]
            frame[spec.name] = pd.Series(cells, index=frame.index, dtype=object)
    return frame


def _scan_parquet(path: Path) -> tuple[list[str], int, Reader]:
    import pyarrow.parquet as pq

    with _parquet_errors(path), pq.ParquetFile(path) as file:
        schema = file.schema_arrow
        # Decode every page now, so that a damaged one is reported before any output.
        rows = 0
        nulls = [0] * len(schema.names)
        for batch in file.iter_batches(batch_size=CHUNK_ROWS):
            rows += batch.num_rows
            nulls = [n + column.null_count for n, column in zip(nulls, batch.columns, strict=True)]
    if not schema.names:
        raise InputFileError(path, "file is empty")
    _check_parquet_types(path, schema)
    columns = canonical_names(_stripped(schema))
    nullable = {name for name, count in zip(schema.names, nulls, strict=True) if count}
    stripped = [str(name).strip() for name in schema.names]
    fields = dict(zip(canonical_names(stripped), schema.names, strict=True))

    def read(size: int, chosen: Sequence[str] | None) -> Iterator[pd.DataFrame]:
        wanted = None if chosen is None else [fields[name] for name in chosen]
        with reading(path), _parquet_errors(path), pq.ParquetFile(path) as file:
            for batch in file.iter_batches(batch_size=size, columns=wanted):
                yield _frame(batch, nullable)

    return columns, rows, read


def _parquet_header(path: Path) -> list[str]:
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


def _frame(batch: pa.RecordBatch, nullable: set[str]) -> pd.DataFrame:
    """``batch`` converted as the whole file is: pyarrow turns an integer column with a null
    into floats (and a boolean one into objects), so a chunk without the nulls the file has
    borrows a row of them for the conversion."""
    import pyarrow as pa

    names = batch.schema.names
    borrow = any(
        name in nullable
        and column.null_count == 0
        and (pa.types.is_integer(column.type) or pa.types.is_boolean(column.type))
        for name, column in zip(names, batch.columns, strict=True)
    )
    frame: pd.DataFrame
    if borrow:
        extra = pa.RecordBatch.from_arrays(
            [
                pa.nulls(1, column.type) if name in nullable else column.slice(0, 1)
                for name, column in zip(names, batch.columns, strict=True)
            ],
            schema=batch.schema,
        )
        frame = pa.Table.from_batches([batch, extra]).to_pandas().iloc[:-1]
    else:
        frame = batch.to_pandas()
    frame.columns = pd.Index(canonical_names([str(name).strip() for name in frame.columns]))
    return explicit_empties(frame.reset_index(drop=True).astype(object))


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

"""Read the input file (CSV or Parquet) and reject files that cannot be used.

Cells are kept as the user wrote them: CSV cells as strings (a blank cell is ``""``), Parquet cells
in their native types. Making sense of the values is validation's job; this module only answers
"is this a usable table of campaign settings?" and raises :class:`InputFileError` when it is not.

Two ways in: ``load_input`` gives the whole file as one DataFrame (a real run sends every row, so
it holds them all anyway); ``open_input`` reads the whole file once to check it, keeps none of
it, and then hands it out a chunk at a time (a dry run or ``bulkrunner validate`` of a million
rows holds one chunk). Both raise the same errors, before the caller has seen a single row.
"""

from __future__ import annotations

import contextlib
import csv
import difflib
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from bulkrunner.errors import InputFileError, UsageError
from bulkrunner.fields import CAMPAIGN_ID, FIELDS, SETTING_NAMES, EmptyText
from bulkrunner.outcomes import RESULT_COLUMNS

if TYPE_CHECKING:
    import pyarrow as pa

INPUT_FORMATS = (".csv", ".parquet")
KNOWN_COLUMNS = (CAMPAIGN_ID, *SETTING_NAMES)
CHUNK_ROWS = 50_000  # rows per chunk of a streamed file: a few tens of MB as DataFrames
_NOT_UTF8 = "is not UTF-8 text (save it as 'CSV UTF-8')"
# A CSV report writes a cell starting with one of these with a leading "'", so that a
# spreadsheet opening it cannot run a formula; reading a report takes the quote off again.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# Every cell a string, as written: no type guessing, no "NA" turned into a missing value.
_CSV_OPTIONS: dict[str, Any] = {
    "dtype": object,
    "keep_default_na": False,
    "na_filter": False,
    "encoding": "utf-8-sig",
    "index_col": False,
}

Reader = Callable[[int, Sequence[str] | None], Iterator[pd.DataFrame]]


@dataclass(frozen=True, slots=True)
class InputFile:
    """A table that passed every file-level check, to be read a chunk at a time."""

    path: Path
    columns: tuple[str, ...]
    rows: int
    read: Reader = field(repr=False)

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
    """Load ``path`` and check its columns; raises :class:`InputFileError` for file problems."""
    suffix = _check_path(path)
    with _reading(path):
        frame = _read_csv(path) if suffix == ".csv" else _read_parquet(path)
    columns = [str(column) for column in frame.columns]
    kept = _input_columns(path, columns)
    check_columns(path, kept)
    if frame.empty:
        raise InputFileError(path, "has a header but no data rows")
    if kept != columns:  # a report: its result columns are not settings
        frame = frame[kept]
        if suffix == ".csv":
            frame = unescape_cells(frame)
    return frame.reset_index(drop=True)


def open_input(path: Path) -> InputFile:
    """Check ``path`` as ``load_input`` does, reading it once from end to end but keeping none
    of it: a file that cannot be used fails here, before anything is reported."""
    suffix = _check_path(path)
    with _reading(path):
        columns, rows, read = _scan_csv(path) if suffix == ".csv" else _scan_parquet(path)
    kept = _input_columns(path, columns)
    check_columns(path, kept)
    if rows == 0:
        raise InputFileError(path, "has a header but no data rows")
    if kept != columns:  # a report: read only its input columns, as the user wrote them
        whole = read

        def read(size: int, chosen: Sequence[str] | None) -> Iterator[pd.DataFrame]:
            for chunk in whole(size, kept if chosen is None else chosen):
                yield unescape_cells(chunk) if suffix == ".csv" else chunk

    return InputFile(path, tuple(kept), rows, read)


def is_report(columns: Sequence[str]) -> bool:
    """Whether a file with these columns is a report bulkrunner wrote (it has the result
    columns ``row`` and ``status``)."""
    return "row" in columns and "status" in columns


def _input_columns(path: Path, columns: list[str]) -> list[str]:
    """The columns of ``path`` that are settings: all of them, or a report's own columns."""
    if not is_report(columns):
        return columns
    repeated = [name for name, count in Counter(columns).items() if count > 1]
    if repeated:
        raise InputFileError(path, f"column {repeated[0]!r} appears more than once")
    return [name for name in columns if name not in RESULT_COLUMNS]


def unescape_cell(value: Any) -> Any:
    """Undo the spreadsheet escape of a CSV report cell (``'=1+1`` was written for ``=1+1``)."""
    if isinstance(value, str) and value.startswith("'") and value[1:].startswith(FORMULA_START):
        return value[1:]
    return value


def unescape_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` (cells read from a CSV report) with the spreadsheet escape undone."""
    out = frame.copy()
    for column in out.columns:
        out[column] = out[column].map(unescape_cell)
    return out


def check_columns(path: Path, columns: list[str]) -> None:
    """Reject duplicate or unknown column names and a missing ``campaign_id`` column."""
    repeated = [name for name, count in Counter(columns).items() if count > 1]
    if repeated:
        raise InputFileError(path, f"column {repeated[0]!r} appears more than once")
    if CAMPAIGN_ID not in columns:
        raise InputFileError(
            path,
            f"no {CAMPAIGN_ID!r} column{_suggestion(columns, CAMPAIGN_ID)} "
            f"(columns found: {', '.join(columns) or 'none'})",
        )
    for name in columns:
        if name not in KNOWN_COLUMNS:
            close = difflib.get_close_matches(name, KNOWN_COLUMNS, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise InputFileError(
                path, f"unknown column {name!r}{hint}; known columns: {', '.join(KNOWN_COLUMNS)}"
            )


def _suggestion(columns: list[str], wanted: str) -> str:
    close = difflib.get_close_matches(wanted, columns, n=1, cutoff=0.6)
    return f" (is {close[0]!r} a typo?)" if close else ""


def _check_path(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in INPUT_FORMATS:
        raise UsageError(
            f"{path}: unsupported input format {path.suffix or '(no extension)'!r}; "
            "use a .csv or .parquet file"
        )
    if not path.exists():
        raise InputFileError(path, "file not found")
    if not path.is_file():
        raise InputFileError(path, "not a file")
    return suffix


@contextlib.contextmanager
def _reading(path: Path) -> Iterator[None]:
    try:
        yield
    except PermissionError:
        raise InputFileError(path, "permission denied") from None
    except OSError as exc:
        raise InputFileError(path, f"cannot read the file ({exc.strerror or exc})") from None


# --- CSV ----------------------------------------------------------------------------------------


def _read_csv(path: Path) -> pd.DataFrame:
    header = _csv_header(path)
    with _csv_errors(path, header):
        frame: pd.DataFrame = pd.read_csv(path, **_CSV_OPTIONS)
    # pandas renames a repeated header to "name.1"; judge the header as written instead.
    frame.columns = pd.Index(header)
    return frame


def _scan_csv(path: Path) -> tuple[list[str], int, Reader]:
    header = _csv_header(path)
    rows = sum(len(chunk) for chunk in _csv_chunks(path, header, CHUNK_ROWS, None))

    def read(size: int, columns: Sequence[str] | None) -> Iterator[pd.DataFrame]:
        with _reading(path):
            yield from _csv_chunks(path, header, size, columns)

    return header, rows, read


def _csv_chunks(
    path: Path, header: list[str], size: int, columns: Sequence[str] | None
) -> Iterator[pd.DataFrame]:
    names = header if columns is None else list(columns)
    # By position: the header as written, not as pandas renames or strips it.
    wanted = None if columns is None else [header.index(name) for name in columns]
    with _csv_errors(path, header):
        reader = pd.read_csv(path, chunksize=size, usecols=wanted, **_CSV_OPTIONS)
    with reader:
        while True:
            with _csv_errors(path, header):
                chunk = next(reader, None)
            if chunk is None:
                return
            chunk.columns = pd.Index(names)
            chunk.index = pd.RangeIndex(len(chunk))
            yield chunk


@contextlib.contextmanager
def _csv_errors(path: Path, header: list[str]) -> Iterator[None]:
    """Turn what pandas says about a broken CSV into one line naming the file and the problem."""
    try:
        with warnings.catch_warnings():
            # Surplus cells in a row would be dropped with only a warning: make it an error.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            yield
    except pd.errors.ParserWarning:
        raise InputFileError(path, _surplus_cells(path, len(header)) or "malformed CSV") from None
    except UnicodeDecodeError:
        raise InputFileError(path, _NOT_UTF8) from None
    except (pd.errors.ParserError, csv.Error) as exc:
        detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else "malformed CSV"
        surplus = _surplus_cells(path, len(header))
        raise InputFileError(path, surplus or f"cannot parse as CSV: {detail}") from None


def _csv_header(path: Path) -> list[str]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            header = next(csv.reader(handle), None)
    except UnicodeDecodeError:
        raise InputFileError(path, _NOT_UTF8) from None
    except csv.Error as exc:
        raise InputFileError(path, f"cannot parse as CSV: {exc}") from None
    if header is None or not any(cell.strip() for cell in header):
        raise InputFileError(path, "file is empty")
    return [cell.strip() for cell in header]


def _surplus_cells(path: Path, columns: int) -> str | None:
    """Which line has more cells than the header, if one does (only read on the error path)."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            for cells in reader:
                if len(cells) > columns:
                    return (
                        f"line {reader.line_num} has {len(cells)} cells but the header has "
                        f"{columns} columns"
                    )
    except csv.Error:
        return None
    return None


# --- Parquet ------------------------------------------------------------------------------------


def _read_parquet(path: Path) -> pd.DataFrame:
    import pyarrow.parquet as pq

    with _parquet_errors(path, reword=False):
        table = pq.read_table(path)
    if table.num_columns == 0:
        raise InputFileError(path, "file is empty")
    frame: pd.DataFrame = table.to_pandas()
    frame.columns = pd.Index([str(name).strip() for name in frame.columns])
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
    columns = [str(name).strip() for name in schema.empty_table().to_pandas().columns]
    nullable = {name for name, count in zip(schema.names, nulls, strict=True) if count}
    fields = {str(name).strip(): name for name in schema.names}

    def read(size: int, chosen: Sequence[str] | None) -> Iterator[pd.DataFrame]:
        wanted = None if chosen is None else [fields[name] for name in chosen]
        with _reading(path), _parquet_errors(path), pq.ParquetFile(path) as file:
            for batch in file.iter_batches(batch_size=size, columns=wanted):
                yield _frame(batch, nullable)

    return columns, rows, read


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
    frame.columns = pd.Index([str(name).strip() for name in frame.columns])
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

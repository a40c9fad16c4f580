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
it (but the parse of a small CSV file), and then hands it out a chunk at a time (a dry run or
``bulkrunner validate`` of a million rows holds one chunk). Both raise the same errors, before
the caller has seen a single row.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from bulkrunner.input.csv_reading import escaped_cells, read_csv, scan_csv
from bulkrunner.input.custom_fields import as_read
from bulkrunner.input.files import (
    Ignored,
    Reader,
    Watch,
    accepted,
    check_path,
    input_columns,
    reading,
    report_ignored,
)
from bulkrunner.input.parquet_reading import parquet_header, read_parquet, scan_parquet
from bulkrunner.model import echoed, unechoed
from bulkrunner.operations.fields import CAMPAIGN_ID
from bulkrunner.operations.syntax import unescape_cell

if TYPE_CHECKING:
    from bulkrunner.operations import Operation

CHUNK_ROWS = 50_000  # rows per chunk of a streamed file: a few tens of MB as DataFrames


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


def read_input(
    path: Path, operation: Operation | None = None, keep: Sequence[str] = ()
) -> tuple[pd.DataFrame, Ignored]:
    """``load_input``, and what it left out; its columns are those of ``operation`` (by default,
    settings), and the columns of the user's own ``keep`` names, carried unsent."""
    suffix = check_path(path)
    with reading(path):
        if suffix == ".csv":
            frame, raw, ignored = read_csv(path)
        else:
            frame, raw, ignored = read_parquet(path), parquet_header(path), Ignored()
    columns = [str(column) for column in frame.columns]
    kept = input_columns(path, columns)
    if kept != columns:  # a report: its result columns are not settings
        raw = [name for name, column in zip(raw, columns, strict=True) if column in kept]
        frame = frame[kept].rename(columns=unechoed)  # wanted_status: the input's status
        kept = [unechoed(name) for name in kept]
    read = as_read(raw, kept, operation)
    if read != kept:  # custom fields: under their headers as written
        frame.columns = pd.Index(read)
        kept = read
    accepted(path, raw, kept, len(frame), operation, keep)
    if suffix == ".csv":  # the spreadsheet escape of the CSV files bulkrunner writes
        frame = unescape_cells(frame)
    report_ignored(path, ignored)
    return frame.reset_index(drop=True), ignored


def open_input(
    path: Path,
    watch: Watch | None = None,
    operation: Operation | None = None,
    keep: Sequence[str] = (),
) -> InputFile:
    """Check ``path`` as ``read_input`` does, reading it once from end to end but keeping none
    of it: a file that cannot be used fails here, before anything is reported.

    A CSV file is parsed whole to check it: ``watch``, if given, is handed its ``campaign_id``
    column a chunk at a time as ``chunks`` would give it (``watched`` then says so), so that
    repeated campaigns can be found without parsing the file once more."""
    suffix = check_path(path)
    watched = False
    with reading(path):
        if suffix == ".csv":
            raw, columns, rows, read, ignored = scan_csv(path, CHUNK_ROWS, watch)
            watched = watch is not None and CAMPAIGN_ID in columns
        else:
            (columns, rows, read), ignored = scan_parquet(path, CHUNK_ROWS), Ignored()
            raw = parquet_header(path)
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

    written = as_read(raw, kept, operation)
    if written != kept:  # custom fields: under their headers as written
        read = _renamed(read, dict(zip(written, kept, strict=True)))
        kept = written
    accepted(path, raw, kept, rows, operation, keep)
    report_ignored(path, ignored)
    return InputFile(path, tuple(kept), rows, read, ignored, watched)


def _renamed(read: Reader, names: dict[str, str]) -> Reader:
    """``read`` giving its columns the names of ``names`` (new name -> the name ``read``
    knows), asked for by those names."""
    back = {old: new for new, old in names.items()}

    def renamed(size: int, chosen: Sequence[str] | None) -> Iterator[pd.DataFrame]:
        asked = None if chosen is None else [names.get(name, name) for name in chosen]
        for chunk in read(size, asked):
            yield chunk.rename(columns=back)

    return renamed


def unescape_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` (cells read from a CSV file) with the spreadsheet escape undone: only the
    columns with a cell starting with a quote are looked at cell by cell."""
    out = frame.copy(deep=False)
    for column in out.columns:
        cells = out[column]
        if cells.dtype == object and escaped_cells(cells):
            out[column] = cells.map(unescape_cell)
    return out

"""A CSV input file read as spreadsheets save it: its encoding and delimiter found from the file
(``bulkrunner.input.files``), every cell a string as written, entirely blank rows and empty
unnamed columns left out and counted, and what pandas says of a broken file made one line.
"""

from __future__ import annotations

import contextlib
import csv
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from bulkrunner.errors import InputFileError
from bulkrunner.input.files import (
    Ignored,
    Reader,
    Watch,
    check_unnamed,
    csv_header,
    not_text,
    reading,
)
from bulkrunner.model import count
from bulkrunner.operations.fields import CAMPAIGN_ID
from bulkrunner.operations.syntax import unescape_cell

KEPT_BYTES = 256 * 1024  # a file this small is parsed once, and read again from memory

# Every cell a string, as written: no type guessing, no "NA" turned into a missing value.
_CSV_OPTIONS: dict[str, Any] = {
    "dtype": object,
    "keep_default_na": False,
    "na_filter": False,
    "encoding": "utf-8-sig",
    "index_col": False,
}


def escaped_cells(cells: pd.Series[Any]) -> bool:
    """Whether a text cell of ``cells`` starts with a quote. (pandas looks at the cells of a
    column of objects one by one too, after work that costs more than a small file's cells.)"""
    return any(isinstance(cell, str) and cell.startswith("'") for cell in cells.tolist())


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


def read_csv(path: Path) -> tuple[pd.DataFrame, list[str], Ignored]:
    """The whole file (its kept columns, named as they mean), its header as written, and what
    it left out."""
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
    return frame, raw, Ignored(int(blank.sum()), len(empty), blank_between(blank))


def scan_csv(
    path: Path, size: int, watch: Watch | None = None
) -> tuple[list[str], list[str], int, Reader, Ignored]:
    """Check the whole file ``size`` rows at a time, keeping none of it but a small file's
    parse: its header as written, its kept columns, its rows, how to read it again a chunk at a
    time, and what it left out. ``watch`` is handed its ``campaign_id`` cells as they are read."""
    form = _csv_form(path)
    unnamed = [i for i in range(len(form.header)) if i not in form.positions]
    if CAMPAIGN_ID not in form.names:
        watch = None  # the file is refused once scanned
    elif watch is not None:
        ids_at = form.positions[form.names.index(CAMPAIGN_ID)]
        seen = watch  # the cells unescaped, as ``open_input`` reads every CSV file's
        watch = lambda cells: seen(cells.map(unescape_cell) if escaped_cells(cells) else cells)  # noqa: E731
    filled: set[int] = set()
    blank: list[npt.NDArray[np.int64]] = []
    first: pd.DataFrame | None = None  # the parse of a file of one chunk, while it may be one
    rows = last = 0  # last: the number of rows up to the last one with data
    for chunk in _parsed(path, form, size):
        first = chunk if not rows else None
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

    # A small file is read again from its parse: most of a few rows' reading is pandas's own.
    kept = first if first is not None and _kept(path) else None

    def read(size: int, columns: Sequence[str] | None) -> Iterator[pd.DataFrame]:
        with reading(path):
            yield from _csv_chunks(path, form, size, columns, kept)

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


def _kept(path: Path) -> bool:
    """Whether a file is small enough to keep its parse (a few MB at most as a DataFrame)."""
    try:
        return path.stat().st_size <= KEPT_BYTES
    except OSError:
        return False


def _csv_chunks(
    path: Path,
    form: _Csv,
    size: int,
    columns: Sequence[str] | None,
    kept: pd.DataFrame | None = None,
) -> Iterator[pd.DataFrame]:
    """The file's kept columns (or ``columns``) ``size`` rows at a time, its blank rows left
    out: parsed again, or sliced from ``kept``, the whole file's parse (columns by position)."""
    names = form.names if columns is None else list(columns)
    # By position: the header as written, not as pandas renames or strips it.
    wanted = [form.positions[form.names.index(name)] for name in names]
    in_file = sorted(wanted)  # usecols keeps the file's order: put them in the order asked for
    order = [in_file.index(position) for position in wanted]
    reordered = order != sorted(order)
    chunks = (
        _parsed(path, form, size, usecols=wanted)
        if kept is None
        else (
            kept.iloc[start : start + size].take(in_file, axis=1)
            for start in range(0, len(kept), size)
        )
    )
    start = 0
    for chunk in chunks:
        if reordered:
            chunk = chunk.take(order, axis=1)
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
    # cell by cell, as pandas's string methods do it too, without their cost on a few rows
    return np.fromiter((not str(cell).strip() for cell in cells.tolist()), bool, len(cells))


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


def blank_between(blank: npt.NDArray[np.bool_]) -> int:
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

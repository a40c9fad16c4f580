"""A report's cells in each format, and CSV written fast.

A CSV report spells every input cell as the files bulkrunner writes spell it
(``bulkrunner.operations.syntax``), so that it reads back as it was; JSON and Parquet hold the
values themselves, where null is "leave unchanged". CSV rows are written by pyarrow when no cell
needs quoting (several times faster), else by pandas, byte for byte alike.
"""

from __future__ import annotations

import io
import re
from typing import Any, TextIO

import numpy as np
import pandas as pd

from bulkrunner.operations.fields import FIELDS
from bulkrunner.operations.syntax import (
    FORMULA_PATTERN,
    EmptyText,
    bool_cell,
    csv_cell,
    escaped,
    list_cell,
)

_TEXT_FIELDS = frozenset(field.name for field in FIELDS if field.kind == "text")


def write_csv(frame: pd.DataFrame, stream: TextIO, header: bool) -> None:
    """``frame`` as CSV rows ending in LF, every cell holding a CR or an LF quoted.

    The rows are written to a buffer with CRLF ends (the csv module quotes a cell holding any
    character of the line terminator); when every CRLF in it ends a row, they all become LF at
    once. Else (a cell holds a CRLF) each row gets its LF back as it is written (``_RowEnds``).
    """
    plain = _plain_csv(frame, header) if len(frame) >= _ARROW_ROWS else None
    if plain is not None:
        stream.write(plain)
        return
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, header=header, lineterminator="\r\n")
    text = buffer.getvalue()
    if text.count("\r\n") == len(frame) + (1 if header else 0):
        stream.write(text.replace("\r\n", "\n"))
        return
    frame.to_csv(_RowEnds(stream), index=False, header=header, lineterminator="\r\n")


def _plain_csv(frame: pd.DataFrame, header: bool) -> str | None:
    """``frame`` as ``to_csv`` above would write it, by pyarrow's CSV writer (several times
    faster on many rows, which is most of a large dry run's time), when no cell needs quoting;
    else None.

    Only columns of text, whole numbers, booleans and nulls qualify, and no text (nor column
    name) may hold a comma, a quote, a CR or an LF. pyarrow quotes every text cell; with no
    quote in any cell, every quote it writes is one of those, and dropping them all leaves what
    the csv module writes (an empty text and a null both become an empty cell). Booleans are
    spelled as ``to_csv`` spells them (a report's have been spelled out before: ``csv_cell``).
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pa_csv

    names = [str(name) for name in frame.columns]
    if len(names) < 2 or any(_NEEDS_QUOTES.search(name) for name in names):
        return None  # (a row of one empty cell is written "" by the csv module)
    try:
        table = pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        return None
    columns: list[pa.ChunkedArray] = []
    for column in table.columns:
        kind = column.type
        if pa.types.is_boolean(kind):
            column = pc.if_else(column, "True", "False")
        elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
            if pc.any(pc.match_substring_regex(column, _NEEDS_QUOTES.pattern)).as_py():
                return None
        elif not (pa.types.is_integer(kind) or pa.types.is_null(kind)):
            return None
        columns.append(column)
    buffer = io.BytesIO()
    options = pa_csv.WriteOptions(include_header=header)
    pa_csv.write_csv(pa.table(columns, names=names), buffer, write_options=options)
    return buffer.getvalue().decode("utf-8").replace('"', "")


_NEEDS_QUOTES = re.compile('[,"\r\n]')
_ARROW_ROWS = 300  # below this many rows, converting the frame for pyarrow costs more than it saves


class _RowEnds(io.TextIOBase):
    """Lets ``to_csv`` quote every cell holding a CR as well as an LF, while lines still end
    in LF: the csv module quotes a cell holding any character of the line terminator, so it
    is given CRLF, and each row it writes (one ``write`` per row) gets its LF back here. A CR
    left bare would end the row in most CSV readers and spreadsheets."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if text.endswith("\r\n"):
            text = text[:-2] + "\n"
        return self._stream.write(text)


def for_spreadsheets(report: pd.DataFrame, input_columns: list[str]) -> pd.DataFrame:
    """The input cells and the error as CSV cells that read back as they are
    (``syntax.csv_cell``): lists spelled out, true and false, ``""`` for an explicitly empty text
    (not a blank: "leave unchanged"), text a spreadsheet would run as a formula escaped; numbers
    stay numbers. Plain columns are looked at in bulk (``_formula_like``)."""
    out = report.copy(deep=False)
    for column in [*input_columns, "error"]:
        cells = report[column]
        empty_text = column in _TEXT_FIELDS and any(type(v) is EmptyText for v in cells.tolist())
        flagged = None if empty_text else _formula_like(cells)
        if flagged is None:
            out[column] = _objects([csv_cell(value) for value in cells.tolist()], out.index)
        elif flagged:  # only text can change, and only text starting as a formula does
            values = cells.tolist()
            for index in flagged:
                values[index] = escaped(values[index])
            out[column] = _objects(values, out.index)
    return out


def _objects(values: list[Any], index: pd.Index) -> pd.Series[Any]:
    """``values`` as a column of objects: a list assigned as it is would be typed by pandas,
    whole numbers and a null made floats (2 written 2.0, and a number above 2**53 rounded)."""
    return pd.Series(values, index=index, dtype=object)


def _formula_like(column: pd.Series[Any]) -> list[int] | None:
    """Where ``column`` holds text starting with a formula character, looked for in bulk; None
    when the cells must be looked at one by one (lists, booleans, text mixed with other types)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        cells = pa.array(column, from_pandas=True)  # None and NaN: null
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        return None
    kind = cells.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        flags = pc.match_substring_regex(cells, FORMULA_PATTERN).fill_null(False)
        return np.flatnonzero(flags.to_numpy(zero_copy_only=False)).tolist()
    plain = (pa.types.is_null, pa.types.is_integer, pa.types.is_floating)
    return [] if any(is_kind(kind) for is_kind in plain) else None


_AS_IS = frozenset({str, int, bool, type(None)})  # cells that _plain leaves alone


def for_json(report: pd.DataFrame, input_columns: list[str]) -> pd.DataFrame:
    """Cells JSON and Parquet can hold, where null is "leave unchanged": a blank CSV cell
    becomes null, and an explicitly empty text the empty string."""
    out = report.copy()
    for column in input_columns:
        out[column] = _objects(_without_blanks(_plain_cells(out[column].tolist())), out.index)
    return out


def _without_blanks(values: list[Any]) -> list[Any]:
    return [
        None if type(value) is str and not value.strip() else value
        for value in values  # only plain text: EmptyText is a value
    ]


def _plain_cells(values: list[Any]) -> list[Any]:
    return values if set(map(type, values)) <= _AS_IS else [_plain(value) for value in values]


def for_parquet(
    report: pd.DataFrame, input_columns: list[str], examples: pd.DataFrame | None = None
) -> pd.DataFrame:
    """``examples``: rows with a cell of every type each column holds in the whole report
    (``cell_types``), typed along with ``report`` and dropped again, so that a chunk's columns
    get the types the whole report's would."""
    if examples is None or examples.empty:
        return _echo_for_parquet(report, input_columns)
    both = pd.concat([report[input_columns], examples[input_columns]], ignore_index=True)
    typed = _echo_for_parquet(both, input_columns).iloc[: len(report)]
    results = report.drop(columns=input_columns).reset_index(drop=True)
    return pd.concat([typed, results], axis=1)[list(report.columns)]


def _echo_for_parquet(report: pd.DataFrame, input_columns: list[str]) -> pd.DataFrame:
    out = for_json(report, input_columns)
    for column in input_columns:
        cells = [None if _missing(v) else v for v in out[column].tolist()]
        kinds = {str if isinstance(v, str) else type(v) for v in cells} - {type(None)}
        if len(kinds) > 1:  # Parquet columns hold one type; echo mixed cells as text
            cells = [None if v is None else _as_text(v) for v in cells]
        out[column] = pd.Series(cells, index=out.index, dtype=object)
    return out


def _as_text(value: Any) -> str:
    if isinstance(value, list | tuple | np.ndarray):
        return list_cell(value)
    return bool_cell(bool(value)) if isinstance(value, bool | np.bool_) else str(value)


def _missing(value: Any) -> bool:
    """A null cell however pandas spells it (None, NaN, pd.NA): null in Parquet, not "nan"."""
    if value is None or value is pd.NA:
        return True
    return isinstance(value, float) and np.isnan(value)


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return [_plain(item) for item in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and np.isnan(value):
        return None
    return value

"""Read the input file (CSV or Parquet) into a DataFrame and reject files that cannot be used.

Cells are kept as the user wrote them: CSV cells as strings (a blank cell is ``""``), Parquet cells
in their native types. Making sense of the values is validation's job; this module only answers
"is this a usable table of campaign settings?" and raises :class:`InputFileError` when it is not.
"""

from __future__ import annotations

import csv
import difflib
import warnings
from collections import Counter
from pathlib import Path

import pandas as pd

from bulkrunner.errors import InputFileError, UsageError
from bulkrunner.fields import CAMPAIGN_ID, SETTING_NAMES

INPUT_FORMATS = (".csv", ".parquet")
KNOWN_COLUMNS = (CAMPAIGN_ID, *SETTING_NAMES)
_NOT_UTF8 = "is not UTF-8 text (save it as 'CSV UTF-8')"


def load_input(path: Path) -> pd.DataFrame:
    """Load ``path`` and check its columns; raises :class:`InputFileError` for file problems."""
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
    try:
        frame = _read_csv(path) if suffix == ".csv" else _read_parquet(path)
    except PermissionError:
        raise InputFileError(path, "permission denied") from None
    except OSError as exc:
        raise InputFileError(path, f"cannot read the file ({exc.strerror or exc})") from None
    check_columns(path, [str(column) for column in frame.columns])
    if frame.empty:
        raise InputFileError(path, "has a header but no data rows")
    return frame.reset_index(drop=True)


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


def _read_csv(path: Path) -> pd.DataFrame:
    header = _csv_header(path)
    try:
        with warnings.catch_warnings():
            # Surplus cells in a row would be dropped with only a warning: make it an error.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(
                path,
                dtype=str,
                keep_default_na=False,
                na_filter=False,
                encoding="utf-8-sig",
                index_col=False,
            )
    except pd.errors.ParserWarning:
        raise InputFileError(path, _surplus_cells(path, len(header)) or "malformed CSV") from None
    except UnicodeDecodeError:
        raise InputFileError(path, _NOT_UTF8) from None
    except (pd.errors.ParserError, csv.Error) as exc:
        detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else "malformed CSV"
        surplus = _surplus_cells(path, len(header))
        raise InputFileError(path, surplus or f"cannot parse as CSV: {detail}") from None
    # pandas renames a repeated header to "name.1"; judge the header as written instead.
    frame.columns = pd.Index(header)
    return frame.astype(object)


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


def _read_parquet(path: Path) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as exc:
        if isinstance(exc, FileNotFoundError | PermissionError):
            raise
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else "unknown error"
        raise InputFileError(path, f"is not a readable Parquet file ({detail})") from None
    if table.num_columns == 0:
        raise InputFileError(path, "file is empty")
    frame: pd.DataFrame = table.to_pandas()
    frame.columns = pd.Index([str(name).strip() for name in frame.columns])
    return frame.astype(object)

"""A DataFrame given to the Python API, as an input file: judged as a file is.

Its entirely blank rows (every cell null or blank text) are left out, as reading a file leaves
them out, and it is written as Parquet to ``frame-<hash of its content>.parquet``
(``paths.frame_input_path``), so that the same DataFrame given again is the same job. What is
said of it names it ``THE_DATAFRAME``, not that file.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bulkrunner.config.paths import frame_input_path, replace_atomically
from bulkrunner.errors import UsageError
from bulkrunner.input.files import Ignored
from bulkrunner.operations.syntax import bool_cell, list_cell, lists

if TYPE_CHECKING:
    import pandas as pd

THE_DATAFRAME = "the DataFrame"


def without_blank_rows(frame: pd.DataFrame) -> tuple[pd.DataFrame, Ignored]:
    """``frame`` without its entirely blank rows (every cell null or blank text), as reading a
    file leaves them out, and what was left out."""
    import numpy as np

    from bulkrunner.input.csv_reading import blank_between

    blank = np.ones(len(frame), dtype=bool)
    for position in range(frame.shape[1]):  # a column at a time, the rows still blank only
        at = np.flatnonzero(blank)
        if not len(at):
            break
        blank[at] = frame.iloc[at, position].map(_blank).to_numpy(dtype=bool)
    if not blank.any():
        return frame, Ignored()
    return frame.loc[~blank].reset_index(drop=True), Ignored(
        int(blank.sum()), 0, blank_between(blank)
    )


def _blank(cell: Any) -> bool:
    import pandas as pd

    if isinstance(cell, str):
        return not cell.strip()
    return not hasattr(cell, "__len__") and bool(pd.isna(cell))


def frame_file(frame: pd.DataFrame, folder: Path) -> Path:
    """``frame`` written as Parquet to ``folder/frame-<hash of the file>.parquet`` (kept as it
    is if that file exists: the same content), replaced at once (``replace_atomically``). A
    column Parquet cannot hold as one type (text mixed with numbers) is written as text, its
    lists and booleans spelled as a file's cells (``operations.syntax``)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns: dict[str, Any] = {}
    for name in frame.columns:
        cells = frame[name]
        try:
            if _zones_mixed(cells.tolist()):  # pyarrow would take a time without one as UTC
                raise TypeError("date-times with and without a UTC offset")
            columns[str(name)] = pa.array(cells, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
            columns[str(name)] = pa.array([_text(cell) for cell in cells.tolist()], pa.string())
    if len(set(columns)) != len(frame.columns):
        raise UsageError(f"{THE_DATAFRAME} has two columns of the same name")
    written = pa.BufferOutputStream()
    pq.write_table(pa.table(columns), written)
    content = written.getvalue().to_pybytes()
    path = frame_input_path(folder, hashlib.sha256(content).hexdigest()[:16])
    try:
        if not path.exists():
            replace_atomically(path, lambda tmp: tmp.write_bytes(content))
    except OSError as exc:
        raise UsageError(
            f"{folder}: cannot write {THE_DATAFRAME} there ({exc.strerror or exc}); "
            "nothing was sent"
        ) from None
    return path


def _zones_mixed(cells: list[Any]) -> bool:
    """Whether ``cells`` hold date-times with a UTC offset and date-times without one: written
    as text, each is then read as a file's cell is, the one without refused."""
    return len({cell.tzinfo is None for cell in cells if isinstance(cell, datetime)}) > 1


def _text(cell: Any) -> str | None:
    """A cell of a column written as text, as a file spells it."""
    import pandas as pd

    if isinstance(cell, bool):
        return bool_cell(cell)
    if isinstance(cell, lists()):
        return list_cell(cell)
    if cell is None or (not hasattr(cell, "__len__") and pd.isna(cell)):
        return None
    return str(cell)

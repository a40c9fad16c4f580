"""The per-row results report: built, delivered, read back.

One report line per input row, in input order: the input's own columns as the user wrote them
(so the report minus the result columns is itself a valid input file), then the result columns.
A report is built and written a chunk at a time (``report_writer``), and never lost: where it
cannot be written it goes to a fallback file, or at last to the output.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pandas as pd

from bulkrunner.config.paths import REPORT_FORMATS, or_list
from bulkrunner.config.redaction import redact
from bulkrunner.errors import UsageError
from bulkrunner.input.parquet_reading import explicit_empties, read_parquet_frame
from bulkrunner.model import RESULT_COLUMNS, Change, Outcome, echoed
from bulkrunner.operations.syntax import unescape_cell
from bulkrunner.output.formats import for_spreadsheets, write_csv
from bulkrunner.output.report_writer import ReportWriter
from bulkrunner.records.expected import encoded

log = logging.getLogger("bulkrunner")


def build_report(
    frame: pd.DataFrame,
    outcomes: Mapping[int, Outcome],
    numbers: Sequence[int] | None = None,
    changes: Mapping[int, Mapping[str, Change]] | None = None,
) -> pd.DataFrame:
    """The input rows with their outcomes; ``outcomes`` must hold every row number.

    ``numbers`` are the ``row`` values to show, when they are not 1..n (a retry shows each
    row's number in the original file). ``changes`` (by row) fill ``before`` and ``after``.
    """
    changed = changes or {}
    held = range(1, len(frame) + 1)
    try:
        ordered = [outcomes[n] for n in held]
    except KeyError:
        missing = [n for n in held if n not in outcomes]
        raise ValueError(f"no outcome for rows {missing[:5]}") from None
    nothing: list[str | None] = [None] * len(frame)
    return _with_results(
        frame,
        numbers or held,
        status=[o.status.value for o in ordered],
        http_status=[o.http_status for o in ordered],
        attempts=[o.attempts for o in ordered],
        error=[redact(o.error) if o.error else "" for o in ordered],  # a server's: never the key
        duration_ms=[o.duration_ms for o in ordered],
        finished_at=[
            o.finished_at.isoformat(timespec="milliseconds") if o.finished_at else None
            for o in ordered
        ],
        before=[_side(changed.get(n), "before") for n in held] if changed else nothing,
        after=[_side(changed.get(n), "after") for n in held] if changed else nothing,
    )


def _side(found: Mapping[str, Change] | None, side: str) -> str | None:
    if not found:
        return None
    return encoded({name: getattr(change, side) for name, change in found.items()})


def _with_results(
    frame: pd.DataFrame,
    numbers: Sequence[int],
    *,
    status: list[str],
    http_status: list[int | None],
    attempts: list[int],
    error: list[str],
    duration_ms: list[int | None],
    finished_at: list[str | None],
    before: list[str | None],
    after: list[str | None],
) -> pd.DataFrame:
    results = pd.DataFrame(
        {
            "row": pd.array(numbers, dtype="Int64"),
            "status": status,
            "http_status": pd.array(http_status, dtype="Int64"),
            "attempts": pd.array(attempts, dtype="Int64"),
            "error": error,
            "duration_ms": pd.array(duration_ms, dtype="Int64"),
            "finished_at": finished_at,
            "before": pd.array(before, dtype=object),
            "after": pd.array(after, dtype=object),
        }
    )
    echo = frame.rename(columns=lambda column: echoed(str(column)))  # no name twice
    return pd.concat([echo.reset_index(drop=True), results], axis=1)


def print_report(
    report: pd.DataFrame, out: TextIO, input_columns: list[str], header: bool = True
) -> None:
    """``report`` as a CSV report, on ``out`` (when no file can be written)."""
    columns = [echoed(column) for column in input_columns]
    write_csv(for_spreadsheets(report, columns), out, header=header)


Parts = Callable[[], Iterator[pd.DataFrame]]
"""A report a chunk at a time (``build_report`` frames), from its first row at every call."""


def deliver_report(
    parts: Parts,
    path: Path,
    input_columns: Sequence[str],
    *,
    fallback: Callable[[], Path],
    out: TextIO | None = None,
    lock: Callable[[], AbstractContextManager[object]] = nullcontext,
    examples: Callable[[], pd.DataFrame | None] = lambda: None,
) -> Path | None:
    """Write the report of any kind of run (real, dry, plan, retry) and say where it went.

    ``parts()`` is staged (``stage_report``) in a temporary file of this process's own, then
    moved into place under ``lock()`` (a run that holds its report's lock throughout passes none),
    so that the report is never seen half written. If ``path`` cannot be written, the report
    goes to ``fallback()``; if that cannot be written either, it is printed on ``out`` as a last
    resort (with no ``out``, the error is raised), so that no row's outcome is lost. ``examples``
    (for a Parquet report) types its columns as the whole report would be typed."""
    columns = list(input_columns)
    trouble: OSError | None = None
    writer: ReportWriter | None = None
    try:
        writer = stage_report(parts, path, columns, examples)
    except OSError as exc:
        trouble = exc
    try:
        with lock():
            if writer is not None:
                try:
                    return writer.commit()
                except OSError as exc:
                    trouble, writer = exc, None
            other = fallback()
            log.error("cannot write the report to %s (%s); writing %s", path, trouble, other)
            try:
                writer = stage_report(parts, other, columns)
                return writer.commit()
            except OSError as again:
                if out is None:
                    raise
                log.error(
                    "cannot write the report to %s either (%s); printing it here instead",
                    other,
                    again.strerror or again,
                )
            for index, part in enumerate(parts()):
                print_report(part, out, columns, header=index == 0)
            return None
    finally:
        if writer is not None:
            writer.discard()  # nothing left to discard once committed


def stage_report(
    parts: Parts,
    path: Path,
    input_columns: list[str],
    examples: Callable[[], pd.DataFrame | None] = lambda: None,
) -> ReportWriter:
    """``parts()`` written to a temporary file of this process's own beside ``path``, ready to
    ``commit``; on failure nothing is left behind."""
    typed = examples() if path.suffix.lower() == ".parquet" else None
    writer = ReportWriter(path, input_columns, str(os.getpid()), typed)
    try:
        for part in parts():
            writer.write(part)
    except BaseException:
        writer.discard()
        raise
    return writer


def read_report(path: Path) -> pd.DataFrame:
    """An earlier report, with the input columns as the user wrote them (for ``retry``)."""
    suffix = path.suffix.lower()
    if suffix not in REPORT_FORMATS:
        raise UsageError(f"{path}: not a report (use a {or_list(REPORT_FORMATS)} report)")
    try:
        if suffix == ".csv":
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
            for column in frame.columns:
                if column not in RESULT_COLUMNS:
                    frame[column] = frame[column].map(unescape_cell)
        elif suffix == ".parquet":
            frame = explicit_empties(read_parquet_frame(path).astype(object))
        else:
            frame = pd.read_json(path, orient="records", lines=suffix == ".jsonl", dtype=False)
            frame = explicit_empties(frame.astype(object))
    except FileNotFoundError:
        raise UsageError(f"{path}: report not found") from None
    except (OSError, ValueError) as exc:
        said = " ".join(str(exc).split())  # pandas's message may take several lines
        raise UsageError(f"{path}: cannot read the report ({said})") from None
    missing = [c for c in ("row", "status", "campaign_id") if c not in frame.columns]
    if missing:
        raise UsageError(f"{path}: not a bulkrunner report (no {', '.join(missing)} column)")
    return frame.astype(object)


def cell_types(chunks: Iterable[pd.DataFrame], input_columns: list[str]) -> pd.DataFrame:
    """One cell of each type found in each input column of the whole of ``chunks`` (a column
    with fewer types repeats its first): what a Parquet report written a chunk at a time needs
    to type its columns as the whole report would be typed."""
    found: dict[str, dict[type, Any]] = {column: {} for column in input_columns}
    for chunk in chunks:
        for column in input_columns:
            values = chunk[column].tolist()
            examples = found[column]
            for kind in set(map(type, values)) - examples.keys():
                examples[kind] = next(v for v in values if type(v) is kind)
    rows = max((len(examples) for examples in found.values()), default=0)
    columns: dict[str, Any] = {}
    for column, examples in found.items():
        cells = list(examples.values())
        columns[column] = np.empty(rows, dtype=object)
        for index in range(rows):  # one by one: a list cell must stay one cell
            columns[column][index] = cells[min(index, len(cells) - 1)] if cells else None
    return pd.DataFrame(columns)

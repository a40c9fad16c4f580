"""How every command that judges rows ends: its report, its summary, its exit code.

Every kind of run (real, ``plan``, dry, retry, rollback) writes its report one way
(``write_report``): the input a chunk at a time, each chunk's outcomes and changes by row number,
``build_report`` of them appended to the report, so that neither the input nor the report need
stand whole in memory.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any, TextIO, TypeVar

import pandas as pd

from bulkrunner.commands.recording import current
from bulkrunner.config.paths import fallback_report_path
from bulkrunner.errors import ExitCode
from bulkrunner.input.files import Ignored
from bulkrunner.input.loading import InputFile
from bulkrunner.model import FINE, Change, Clock, Numbering, Outcome, Status, count
from bulkrunner.output.events import show
from bulkrunner.output.problems import SHOWN_INVALID
from bulkrunner.output.report import build_report, cell_types, deliver_report
from bulkrunner.output.summary import FailedRows, Summary

log = logging.getLogger("bulkrunner")

REPORT_ROWS = 5_000  # rows of the report built at a time: ~2 MB at the peak (10,000: ~8)
Results = Callable[
    [int, pd.DataFrame], tuple[Mapping[int, Outcome], Mapping[int, Mapping[str, Change]]]
]
"""A chunk's outcomes and changes by row number, given the rows before it and the chunk."""
_V = TypeVar("_V")


def exit_code(counts: Mapping[Status, int], aborted: bool) -> ExitCode:
    """The exit code of a run that ended with ``counts`` rows of each status."""
    if aborted:
        return ExitCode.ABORTED
    failed = any(n for status, n in counts.items() if status not in FINE)
    return ExitCode.ROWS_FAILED if failed else ExitCode.OK


def write_report(
    source: InputFile,
    numbering: Numbering,
    results: Results,
    path: Path,
    clock: Clock,
    *,
    out: TextIO | None = None,
    lock: Callable[[], AbstractContextManager[object]] = nullcontext,
    rows: int | None = None,
    examples: Callable[[], pd.DataFrame | None] = lambda: None,
    finished: Callable[[], None] = lambda: None,
) -> Path | None:
    """The one way every command writes its report, whatever kind of run it was: ``source`` is
    read a chunk (of ``rows``) at a time, ``results(offset, chunk)`` gives that chunk's outcomes
    and changes, and ``build_report`` of them is appended to the report; ``finished()`` is
    called at the end of the first complete pass. Where the report went: ``path``, else the
    fallback path, else (with ``out``, when the disk is full) printed on ``out`` as a last
    resort, so that no row's outcome is lost. The report is moved into place under ``lock()``."""
    done: list[bool] = []

    def parts() -> Iterator[pd.DataFrame]:
        offset = 0
        for chunk in source.chunks(rows):
            outcomes, changes = results(offset, chunk)
            numbers = numbering.span(offset, len(chunk))
            yield build_report(
                chunk, _Positions(outcomes, numbers), numbers, _Positions(changes, numbers)
            )
            offset += len(chunk)
        if not offset:  # an empty report still has its header (and schema)
            empty = pd.DataFrame({column: [] for column in source.columns}, dtype=object)
            yield build_report(empty, {}, [], {})
        if not done:
            done.append(True)
            finished()

    return deliver_report(
        parts,
        path,
        source.columns,
        fallback=lambda: fallback_report_path(clock.wall()),
        out=out,
        lock=lock,
        examples=examples,
    )


class _Positions(Mapping[int, _V]):
    """A chunk's values by row number, seen by the rows' positions in the chunk (from 1), as
    ``build_report`` takes them."""

    def __init__(self, by_number: Mapping[int, _V], numbers: Sequence[int]) -> None:
        self._by_number = by_number
        self._numbers = numbers

    def __getitem__(self, position: int) -> _V:
        if not 1 <= position <= len(self._numbers):
            raise KeyError(position)
        return self._by_number[self._numbers[position - 1]]

    def __iter__(self) -> Iterator[int]:
        numbers = self._numbers
        return (at for at in range(1, len(numbers) + 1) if numbers[at - 1] in self._by_number)

    def __len__(self) -> int:
        return sum(1 for _ in self)


def typed(source: InputFile) -> pd.DataFrame | None:
    """What types the report's columns take (``cell_types``), for the rows of ``source``."""
    if source.path.suffix.lower() == ".csv":
        return None  # CSV cells are all text: each chunk is typed as the whole would be
    # Other inputs (a Parquet file, an earlier report's rows) may hold several types in a
    # column, which a Parquet report types as a whole: look at them all before writing any.
    return cell_types(source.chunks(), list(source.columns))


def warn_invalid(path: Path, shown: Sequence[tuple[int, str]], invalid: int) -> None:
    """Log the first invalid rows (``shown``: number and error) and how many more there are."""
    for number, error in shown[:SHOWN_INVALID]:
        log.warning("%s row %d is invalid and will not be sent: %s", path, number, error)
    hidden = invalid - SHOWN_INVALID
    if hidden > 0:
        log.warning("... and %s more invalid (see the report)", count(hidden, "row"))


def show_failed(out: TextIO, failed: FailedRows, report: Path | None) -> None:
    """The first rows that failed or were invalid, with their reasons (before the summary)."""
    lines = failed.lines(report)
    if lines:
        show(out, "failed_rows", lines, **failed.fields())


def show_summary(
    out: TextIO, summary: Summary, ignored: Ignored | None, per_account: Sequence[str] = ()
) -> None:
    """The summary's lines (with a line per account after the first, for a run of an accounts
    file; after the count of rows, what the input file's reading left out); in json mode one
    ``summary`` object with the counts."""
    current().summarised(summary.counts, summary.report_path)
    lines = summary.lines()
    lines[1:1] = per_account
    if ignored and (ignored.rows or ignored.columns):
        lines[1:1] = [f"ignored: {ignored}"]
    show(out, "summary", lines, **figures(summary))


def figures(summary: Summary) -> dict[str, Any]:
    """What the summary and the ``run_end`` event say as fields, for machines."""
    s = summary.stats
    return {
        "counts": {status.value: n for status, n in summary.counts.items()},
        "requests": s.requests,
        "retries": s.retries,
        "throttled": s.throttled,
        "seconds": round(s.sending_seconds, 3),
        "aborted": s.aborted,
        "report": str(summary.report_path) if summary.report_path else None,
    }

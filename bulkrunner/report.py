"""The per-row results report and the end-of-run summary.

One report line per input row, in input order: the input's own columns as the user wrote them
(so the report minus the result columns is itself a valid input file), then the result columns.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bulkrunner.engine import RunStats
from bulkrunner.errors import UsageError
from bulkrunner.outcomes import Outcome, Status
from bulkrunner.rates import Rate, ideal_seconds

RESULT_COLUMNS = ("row", "status", "http_status", "attempts", "error", "duration_ms", "finished_at")
REPORT_FORMATS = (".csv", ".parquet", ".json", ".jsonl")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def default_report_path(input_path: Path, now: datetime) -> Path:
    return Path("reports") / f"{input_path.stem}-{now:%Y%m%dT%H%M%SZ}.csv"


def check_report_path(path: Path) -> None:
    """Refuse, before anything is sent, a report that could not be written."""
    if path.suffix.lower() not in REPORT_FORMATS:
        raise UsageError(
            f"{path}: unsupported report format {path.suffix or '(no extension)'!r}; "
            f"use one of {', '.join(REPORT_FORMATS)}"
        )
    if path.is_dir():
        raise UsageError(f"{path}: report path is a directory")
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not os.access(parent, os.W_OK):
        raise UsageError(f"{path}: cannot write the report there (permission denied)")


def build_report(
    frame: pd.DataFrame, outcomes: Mapping[int, Outcome], numbers: Sequence[int] | None = None
) -> pd.DataFrame:
    """The input rows with their outcomes; ``outcomes`` must hold every row number.

    ``numbers`` are the ``row`` values to show, when they are not 1..n (a retry shows each
    row's number in the original file).
    """
    missing = [n for n in range(1, len(frame) + 1) if n not in outcomes]
    if missing:
        raise ValueError(f"no outcome for rows {missing[:5]}")
    ordered = [outcomes[n] for n in range(1, len(frame) + 1)]
    results = pd.DataFrame(
        {
            "row": pd.array(numbers or range(1, len(frame) + 1), dtype="Int64"),
            "status": [o.status.value for o in ordered],
            "http_status": pd.array([o.http_status for o in ordered], dtype="Int64"),
            "attempts": pd.array([o.attempts for o in ordered], dtype="Int64"),
            "error": [o.error for o in ordered],
            "duration_ms": pd.array([o.duration_ms for o in ordered], dtype="Int64"),
            "finished_at": [
                o.finished_at.isoformat(timespec="milliseconds") if o.finished_at else None
                for o in ordered
            ],
        }
    )
    return pd.concat([frame.reset_index(drop=True), results], axis=1)


def write_report(report: pd.DataFrame, path: Path, input_columns: list[str]) -> None:
    """Write ``report`` to ``path`` (format by extension), atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        _for_spreadsheets(report, input_columns).to_csv(tmp, index=False)
    elif suffix == ".parquet":
        _for_parquet(report, input_columns).to_parquet(tmp, index=False)
    else:
        plain = _for_json(report, input_columns)
        plain.to_json(tmp, orient="records", lines=suffix == ".jsonl", force_ascii=False)
    os.replace(tmp, path)


def read_report(path: Path) -> pd.DataFrame:
    """An earlier report, with the input columns as the user wrote them (for ``retry``)."""
    suffix = path.suffix.lower()
    if suffix not in REPORT_FORMATS:
        raise UsageError(f"{path}: not a report (use a .csv, .parquet, .json or .jsonl report)")
    try:
        if suffix == ".csv":
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
            for column in frame.columns:
                if column not in RESULT_COLUMNS:
                    frame[column] = frame[column].map(_restore)
        elif suffix == ".parquet":
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_json(path, orient="records", lines=suffix == ".jsonl", dtype=False)
    except FileNotFoundError:
        raise UsageError(f"{path}: report not found") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: cannot read the report ({exc})") from None
    missing = [c for c in ("row", "status", "campaign_id") if c not in frame.columns]
    if missing:
        raise UsageError(f"{path}: not a bulkrunner report (no {', '.join(missing)} column)")
    return frame.astype(object)


def _restore(value: str) -> str:
    """Undo ``_neutralise`` on a cell read back from a CSV report."""
    if value.startswith("'") and value[1:].startswith(_FORMULA_START):
        return value[1:]
    return value


def _for_spreadsheets(report: pd.DataFrame, input_columns: list[str]) -> pd.DataFrame:
    """CSV cells a spreadsheet would run as a formula get a leading quote; numbers stay numbers."""
    out = report.copy()
    for column in [*input_columns, "error"]:
        out[column] = [_neutralise(_csv_cell(value)) for value in out[column].tolist()]
    return out


def _csv_cell(value: Any) -> Any:
    if isinstance(value, list | tuple | np.ndarray):
        items = [str(item) for item in value]
        return ";".join(items) if items else "[]"
    return value


def _neutralise(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def _for_json(report: pd.DataFrame, input_columns: list[str]) -> pd.DataFrame:
    out = report.copy()
    for column in input_columns:
        out[column] = [_plain(value) for value in out[column].tolist()]
    return out


def _for_parquet(report: pd.DataFrame, input_columns: list[str]) -> pd.DataFrame:
    out = _for_json(report, input_columns)
    for column in input_columns:
        kinds = {type(v) for v in out[column].tolist() if v is not None}
        if len(kinds) > 1:  # Parquet columns hold one type; echo mixed cells as text
            out[column] = [None if v is None else _csv_cell(v) for v in out[column].tolist()]
            out[column] = out[column].map(lambda v: None if v is None else str(v))
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return [_plain(item) for item in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and np.isnan(value):
        return None
    return value


@dataclass(frozen=True, slots=True)
class Summary:
    counts: Mapping[Status, int]
    stats: RunStats
    rates: Sequence[Rate]  # the configured limits, to compare the achieved rate with
    report_path: Path | None

    @classmethod
    def of(
        cls,
        outcomes: Mapping[int, Outcome],
        stats: RunStats,
        rates: Sequence[Rate],
        report_path: Path | None,
    ) -> Summary:
        counts = Counter(o.status for o in outcomes.values())
        held = stats.limits or tuple(rates)  # with a lower limit the server announced, if any
        return cls({s: counts[s] for s in Status if counts[s]}, stats, held, report_path)

    def lines(self) -> list[str]:
        total = sum(self.counts.values())
        parts = ", ".join(f"{n} {status.value}" for status, n in self.counts.items())
        lines = [f"rows: {total} ({parts or 'none'})"]
        s = self.stats
        if s.requests:
            lines.append(
                f"requests: {s.requests} sent, {s.retries} retries, {s.throttled} answered 429, "
                f"in {s.sending_seconds:.1f}s ({s.requests_per_second:.2f} requests/s)"
            )
            ideal = ideal_seconds(s.requests, self.rates)
            if ideal > 0 and s.sending_seconds > 0:
                lines.append(
                    f"rate: {min(1.0, ideal / s.sending_seconds):.0%} of the ceiling "
                    f"(the limits {', '.join(map(str, self.rates))} allow "
                    f"{s.requests} requests in {ideal:.1f}s at best)"
                )
        if s.aborted:
            lines.append(s.aborted)
        if self.report_path is not None:
            lines.append(f"report: {self.report_path}")
        return lines

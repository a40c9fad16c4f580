"""The per-row results report and the end-of-run summary.

One report line per input row, in input order: the input's own columns as the user wrote them
(so the report minus the result columns is itself a valid input file), then the result columns.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np
import pandas as pd

from bulkrunner.config.paths import REPORT_FORMATS, Staged, or_list, temporary
from bulkrunner.config.redaction import redact
from bulkrunner.errors import UsageError
from bulkrunner.input.loading import explicit_empties
from bulkrunner.limits.rates import ideal_seconds
from bulkrunner.model import RESULT_COLUMNS, Change, Outcome, Rate, Status, count, echoed
from bulkrunner.operations.fields import FIELDS
from bulkrunner.operations.syntax import (
    FORMULA_PATTERN,
    EmptyText,
    bool_cell,
    csv_cell,
    escaped,
    list_cell,
    unescape_cell,
)

if TYPE_CHECKING:  # a type only: the engine (anyio) is not for `bulkrunner validate` to load
    from bulkrunner.model import RunStats

log = logging.getLogger("bulkrunner")

_TEXT_FIELDS = frozenset(field.name for field in FIELDS if field.kind == "text")


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
    values = {name: getattr(change, side) for name, change in found.items()}
    return redact(json.dumps(values, default=str, ensure_ascii=False))


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
    _write_csv(_for_spreadsheets(report, columns), out, header=header)


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


class ReportWriter:
    """Writes a report a chunk at a time, in the format its extension names, to a temporary
    file beside ``path`` (``bulkrunner.config.paths.Staged``, told apart by ``tag``); ``commit``
    moves it into place, so a report is never seen half written. Leaving the ``with`` block
    without committing removes the temporary file.

    The chunks make the file their concatenation would make written at once: one CSV header,
    one JSON array, one Parquet schema (a column whose type shows only in a later chunk, say
    one blank at first, is rewritten once at the end with the type of the whole column).
    """

    def __init__(
        self,
        path: Path,
        input_columns: Sequence[str],
        tag: str = "",
        examples: pd.DataFrame | None = None,
    ) -> None:
        """``examples`` (Parquet): ``cell_types`` of all the chunks to come; without them each
        chunk is typed on its own, which is right when it is the whole report."""
        self._staged = Staged(path, tag)
        self.path = path
        self.tmp = self._staged.tmp
        self._format = path.suffix.lower()
        self._columns = [echoed(column) for column in input_columns]
        self._examples = (
            examples.rename(columns=lambda column: echoed(str(column)))
            if examples is not None
            else None
        )
        self._first = True
        self._records = False  # JSON: whether the array has a record yet
        self._text: TextIO | None = None
        self._parquet: _ParquetParts | None = None
        if self._format == ".parquet":
            self._parquet = _ParquetParts(self.tmp)
        else:
            self._text = self.tmp.open("w", encoding="utf-8", newline="")

    def write(self, report: pd.DataFrame) -> None:
        first, self._first = self._first, False
        if self._parquet is not None:
            self._parquet.write(_for_parquet(report, self._columns, self._examples))
            return
        assert self._text is not None, "written after commit or discard"
        if self._format == ".csv":
            _write_csv(_for_spreadsheets(report, self._columns), self._text, header=first)
            return
        plain = _for_json(report, self._columns)
        text = plain.to_json(orient="records", lines=self._format == ".jsonl", force_ascii=False)
        if self._format == ".json":  # one array: "[", the chunks' records, "]" at commit
            records = text[1:-1]
            text = ("[" if first else "") + ("," if records and self._records else "") + records
            self._records = self._records or bool(records)
        self._text.write(text)

    def commit(self) -> Path:
        """Finish the file and move it to ``path``; on failure the temporary file is removed."""
        try:
            if self._text is not None:
                if self._format == ".json":
                    self._text.write("[]" if self._first else "]")
                self._text.close()
            if self._parquet is not None:
                self._parquet.close()
        except BaseException:
            self.discard()
            raise
        self._text = self._parquet = None
        return self._staged.commit()

    def discard(self) -> None:
        if self._text is not None:
            self._text.close()
        if self._parquet is not None:
            self._parquet.discard()
        self._text = self._parquet = None
        self._staged.discard()

    def __enter__(self) -> ReportWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._text is not None or self._parquet is not None:
            self.discard()


class _ParquetParts:
    """One Parquet file from chunks whose inferred schemas may differ: chunks go to one writer
    while their schema holds; a change starts another part, and ``close`` merges the parts
    under pyarrow's unification of their schemas (a column of nulls takes the type found
    later; types that cannot be unified become text)."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.parts: list[Path] = []
        self._writer: Any = None
        self._schema: Any = None

    def write(self, frame: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self._writer is None or not table.schema.equals(self._schema):
            self._close_writer()
            part = temporary(self.tmp, str(len(self.parts))) if self.parts else self.tmp
            self.parts.append(part)
            self._schema = table.schema
            self._writer = pq.ParquetWriter(part, table.schema, compression="snappy")
        self._writer.write_table(table)

    def close(self) -> None:
        self._close_writer()
        if len(self.parts) > 1:
            merged = temporary(self.tmp, "merged")
            try:
                _merge_parts(self.parts, merged)
            except BaseException:
                merged.unlink(missing_ok=True)
                raise
            os.replace(merged, self.tmp)
            for part in self.parts[1:]:
                part.unlink()

    def discard(self) -> None:
        with contextlib.suppress(Exception):
            self._close_writer()
        for part in self.parts:
            part.unlink(missing_ok=True)

    def _close_writer(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()


def _merge_parts(parts: list[Path], target: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schemas = [pq.read_schema(part) for part in parts]
    try:
        unified = pa.unify_schemas(schemas, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        as_text = [
            field.name
            for field in schemas[0]
            if any(schema.field(field.name).type != field.type for schema in schemas)
        ]
        schemas = [
            pa.schema(
                [f.with_type(pa.large_string()) if f.name in as_text else f for f in s],
                metadata=s.metadata,
            )
            for s in schemas
        ]
        unified = pa.unify_schemas(schemas, promote_options="permissive")
    unified = unified.with_metadata(_pandas_metadata(schemas, unified))
    with pq.ParquetWriter(target, unified, compression="snappy") as writer:
        for part in parts:
            with pq.ParquetFile(part) as file:
                for index in range(file.num_row_groups):
                    writer.write_table(file.read_row_group(index).cast(unified))


def _pandas_metadata(schemas: list[Any], unified: Any) -> dict[bytes, bytes]:
    """The first part's pandas metadata, each column described as in the first part where it
    has its final type (so that a column blank at first is not described as empty)."""
    metadata = json.loads(schemas[0].metadata[b"pandas"])
    for index, column in enumerate(metadata["columns"]):
        name = column["field_name"]
        if name in unified.names:
            for schema in schemas:
                if schema.field(name).type == unified.field(name).type:
                    found = json.loads(schema.metadata[b"pandas"])["columns"]
                    metadata["columns"][index] = next(c for c in found if c["field_name"] == name)
                    break
    return {**schemas[0].metadata, b"pandas": json.dumps(metadata).encode()}


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
            frame = explicit_empties(pd.read_parquet(path).astype(object))
        else:
            frame = pd.read_json(path, orient="records", lines=suffix == ".jsonl", dtype=False)
            frame = explicit_empties(frame.astype(object))
    except FileNotFoundError:
        raise UsageError(f"{path}: report not found") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: cannot read the report ({exc})") from None
    missing = [c for c in ("row", "status", "campaign_id") if c not in frame.columns]
    if missing:
        raise UsageError(f"{path}: not a bulkrunner report (no {', '.join(missing)} column)")
    return frame.astype(object)


def _write_csv(frame: pd.DataFrame, stream: TextIO, header: bool) -> None:
    """``frame`` as CSV rows ending in LF, every cell holding a CR or an LF quoted.

    The rows are written to a buffer with CRLF ends (the csv module quotes a cell holding any
    character of the line terminator); when every CRLF in it ends a row, they all become LF at
    once. Else (a cell holds a CRLF) each row gets its LF back as it is written (``_RowEnds``).
    """
    plain = _plain_csv(frame, header)
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
    faster, which is most of a large dry run's time), when no cell needs quoting; else None.

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


def _for_spreadsheets(report: pd.DataFrame, input_columns: list[str]) -> pd.DataFrame:
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
            out[column] = [csv_cell(value) for value in cells.tolist()]
        elif flagged:  # only text can change, and only text starting as a formula does
            values = cells.tolist()
            for index in flagged:
                values[index] = escaped(values[index])
            out[column] = values
    return out


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


def _for_json(report: pd.DataFrame, input_columns: list[str]) -> pd.DataFrame:
    """Cells JSON and Parquet can hold, where null is "leave unchanged": a blank CSV cell
    becomes null, and an explicitly empty text the empty string."""
    out = report.copy()
    for column in input_columns:
        out[column] = _without_blanks(_plain_cells(out[column].tolist()))
    return out


def _without_blanks(values: list[Any]) -> list[Any]:
    return [
        None if type(value) is str and not value.strip() else value
        for value in values  # only plain text: EmptyText is a value
    ]


def _plain_cells(values: list[Any]) -> list[Any]:
    return values if set(map(type, values)) <= _AS_IS else [_plain(value) for value in values]


def _for_parquet(
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
    out = _for_json(report, input_columns)
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
        return cls.counted(Counter(o.status for o in outcomes.values()), stats, rates, report_path)

    @classmethod
    def counted(
        cls,
        counts: Counter[Status],
        stats: RunStats,
        rates: Sequence[Rate],
        report_path: Path | None,
    ) -> Summary:
        """From the number of rows of each status (a dry run counts, it keeps no outcomes)."""
        held = stats.limits or tuple(rates)  # with a lower limit the server announced, if any
        return cls({s: counts[s] for s in Status if counts[s]}, stats, held, report_path)

    def lines(self) -> list[str]:
        total = sum(self.counts.values())
        parts = ", ".join(f"{n} {status.value}" for status, n in self.counts.items())
        lines = [f"rows: {total} ({parts or 'none'})"]
        s = self.stats
        if s.requests:
            reads = f" ({count(s.requests - s.reads, 'write')}, {count(s.reads, 'read')})"
            lines.append(
                f"requests: {s.requests} sent{reads if s.reads else ''}, "
                f"{count(s.retries, 'retry', 'retries')}, "
                f"{s.throttled} answered 429, "
                f"in {s.sending_seconds:.1f}s ({s.requests_per_second:.2f} requests/s)"
            )
            ideal = ideal_seconds(s.requests, self.rates)
            if ideal > 0 and s.sending_seconds > 0:
                lines.append(
                    f"rate: {min(1.0, ideal / s.sending_seconds):.0%} of the ceiling "
                    f"(the limits {', '.join(map(str, self.rates))} allow "
                    f"{count(s.requests, 'request')} in {ideal:.1f}s at best)"
                )
        if s.aborted:
            lines.append(s.aborted)
        if self.report_path is not None:
            lines.append(f"report: {self.report_path}")
        return lines

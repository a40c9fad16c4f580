"""Writing a report a chunk at a time, in the format its extension names, never seen half written.

A chunk's cells are put in the format's forms (``bulkrunner.output.formats``) and appended to a
temporary file beside the report (``bulkrunner.config.paths.Staged``), which ``commit`` moves
into place. The chunks make the file their concatenation would make written at once: one CSV
header, one JSON array, one Parquet schema.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import pandas as pd

from bulkrunner.config.paths import Staged, temporary
from bulkrunner.model import echoed
from bulkrunner.output.formats import for_json, for_parquet, for_spreadsheets, write_csv


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
            self._parquet.write(for_parquet(report, self._columns, self._examples))
            return
        assert self._text is not None, "written after commit or discard"
        if self._format == ".csv":
            write_csv(for_spreadsheets(report, self._columns), self._text, header=first)
            return
        plain = for_json(report, self._columns)
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

"""The checks of an input file that need no pandas: its path, a CSV file's encoding, delimiter
and header, and the columns it may have.

``bulkrunner.input.loading`` reads every file with pandas and these checks;
``bulkrunner.commands.validate`` checks a small CSV file with the csv module and the same checks,
so that ``bulkrunner validate`` of a few rows does not wait for pandas to import.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import difflib
import functools
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bulkrunner.config.paths import INPUT_FORMATS, or_list
from bulkrunner.errors import InputFileError, UsageError
from bulkrunner.input.custom_fields import say_custom
from bulkrunner.model import RESULT_COLUMNS, count
from bulkrunner.operations.fields import (
    ACCOUNT,
    CAMPAIGN_ID,
    NAME,
    SET_BY_RUN,
    SETTING_NAMES,
    column_key,
)

if TYPE_CHECKING:
    import pandas as pd

    from bulkrunner.operations import Operation

# How a checked file is read a chunk at a time: (rows at most, the columns or all) -> chunks
Reader = Callable[[int, Sequence[str] | None], Iterator["pd.DataFrame"]]
Watch = Callable[["pd.Series[Any]"], None]  # handed a file's campaign_id cells as they are read

KNOWN_COLUMNS = (CAMPAIGN_ID, ACCOUNT, NAME, *SETTING_NAMES)
_NOT_TEXT = (
    "is not text in a known encoding (UTF-8, UTF-16 with a byte-order mark, or Windows-1252): "
    "save it as 'CSV UTF-8'"
)
_DELIMITERS = (",", ";", "\t")
_UNNAMED = re.compile(r"Unnamed: \d+")  # what pandas writes for a column without a name
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
log = logging.getLogger("bulkrunner")


@dataclass(frozen=True, slots=True)
class Ignored:
    """What a spreadsheet leaves behind and loading skips: entirely blank rows, and columns
    without a name and without a value."""

    rows: int = 0
    columns: int = 0
    between: int = 0  # of the blank rows, those before the last row with data

    def __str__(self) -> str:
        parts = [(self.rows, "blank row"), (self.columns, "empty unnamed column")]
        said = " and ".join(count(n, noun) for n, noun in parts if n)
        if self.between:
            said += (
                f"; row numbers do not count the {count(self.between, 'blank row')} "
                "between rows of data"
            )
        return said


def canonical_names(columns: Sequence[str]) -> list[str]:
    """Each header as the column it means: case, surrounding spaces and spaces, underscores
    or hyphens between words do not matter (``Campaign ID``, ``campaign-id`` are campaign_id).
    A name that means no known column is kept as written, for ``check_columns`` to refuse."""
    known = _canonical()
    return [known.get(column_key(name), name) for name in columns]


@functools.cache
def _canonical() -> dict[str, str]:
    from bulkrunner.operations import every_column

    return {column_key(name): name for name in (CAMPAIGN_ID, ACCOUNT, NAME, *every_column())}


def accepted(
    path: Path,
    raw: Sequence[str],
    names: Sequence[str],
    rows: int,
    operation: Operation | None = None,
    keep: Sequence[str] = (),
) -> None:
    """Check the columns as they will be read (``names``, from the header ``raw``; ``keep``:
    the columns of the user's own it may carry), then log in one line how the header was
    read."""
    meant: dict[str, str] = {}
    for name, canonical in zip(raw, names, strict=True):
        if canonical in meant and meant[canonical] != name:
            raise InputFileError(
                path, f"columns {meant[canonical]!r} and {name!r} both mean {canonical!r}"
            )
        meant.setdefault(canonical, name)
    check_columns(path, list(names), operation, keep)
    if rows == 0:
        raise InputFileError(path, "has a header but no data rows")
    renamed = [
        f"{name!r} as {canonical}"
        for name, canonical in zip(raw, names, strict=True)
        if name != canonical
    ]
    if renamed:
        plural = "s" if len(renamed) > 1 else ""
        log.info("%s: reading column%s %s", path, plural, ", ".join(renamed))
    if operation is not None and operation.custom_fields:
        say_custom(path, names, operation, keep)


def report_ignored(path: Path, ignored: Ignored) -> None:
    if ignored.rows or ignored.columns:
        log.info("%s: ignored %s", path, ignored)


def is_report(columns: Sequence[str]) -> bool:
    """Whether a file with these columns is a report bulkrunner wrote (it has the result
    columns ``row`` and ``status``)."""
    return "row" in columns and "status" in columns


def input_columns(path: Path, columns: list[str]) -> list[str]:
    """The columns of ``path`` that are settings: all of them, or a report's own columns."""
    if not is_report(columns):
        return columns
    repeated = [name for name, count in Counter(columns).items() if count > 1]
    if repeated:
        raise InputFileError(path, f"column {repeated[0]!r} appears more than once")
    return [name for name in columns if name not in RESULT_COLUMNS]


def known_columns(operation: Operation | None = None) -> tuple[str, ...]:
    """The columns an input of ``operation`` (by default, settings) may have."""
    return KNOWN_COLUMNS if operation is None else (CAMPAIGN_ID, ACCOUNT, NAME, *operation.columns)


def check_columns(
    path: Path,
    columns: list[str],
    operation: Operation | None = None,
    keep: Sequence[str] = (),
) -> None:
    """Reject duplicate column names, a missing ``campaign_id`` column and every column that is
    neither known nor carried (``keep``), all named in one error: a column of another operation
    as such, any other with the known column it most likely means."""
    known = known_columns(operation)
    repeated = [name for name, count in Counter(columns).items() if count > 1]
    if repeated:
        raise InputFileError(path, f"column {repeated[0]!r} appears more than once")
    needed = [CAMPAIGN_ID, *([operation.identity] if operation and operation.identity else [])]
    for wanted in needed:
        if wanted not in columns:
            raise InputFileError(
                path,
                f"no {wanted!r} column{_suggestion(columns, wanted)} "
                f"(columns found: {', '.join(columns) or 'none'})",
            )
    if operation is not None and operation.custom_fields:
        return  # every other column is a custom field, or kept
    carried = {column_key(name) for name in (*keep, SET_BY_RUN)}  # (a backup's is carried)
    strange = [name for name in columns if name not in known and column_key(name) not in carried]
    if not strange:
        return
    from bulkrunner.operations import owner

    this = operation.name if operation is not None else "settings"
    problems: list[str] = []
    unknown: list[str] = []
    own: list[str] = []  # unknown, and like no known column: most likely the user's own
    others: dict[str, list[str]] = {}  # another operation's columns, by operation
    for name in strange:
        other = owner(name)
        if other is not None:
            others.setdefault(other, []).append(repr(name))
            continue
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        unknown.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        if not close:
            own.append(name)
    for other, names in others.items():
        several = len(names) > 1
        problems.append(
            f"column{'s' if several else ''} {', '.join(names)} belong{'' if several else 's'} "
            f"to the {other} operation, not {this} (run with --operation {other}, or remove "
            f"{'them' if several else 'the column'})"
        )
    if unknown:
        problems.append(f"unknown column{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}")
    carry = f"; to carry columns of your own into the report unsent: --keep-columns {','.join(own)}"
    raise InputFileError(
        path, f"{'; '.join(problems)}; known columns: {', '.join(known)}{carry if own else ''}"
    )


def _suggestion(columns: list[str], wanted: str) -> str:
    close = difflib.get_close_matches(wanted, columns, n=1, cutoff=0.6)
    return f" (is {close[0]!r} a typo?)" if close else ""


def check_path(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in INPUT_FORMATS:
        raise UsageError(
            f"{path}: unsupported input format {path.suffix or '(no extension)'!r}; "
            f"use a {or_list(INPUT_FORMATS)} file"
        )
    if not path.exists():
        raise InputFileError(path, "file not found")
    if not path.is_file():
        raise InputFileError(path, "not a file")
    return suffix


@contextlib.contextmanager
def reading(path: Path) -> Iterator[None]:
    try:
        yield
    except PermissionError:
        raise InputFileError(path, "permission denied") from None
    except OSError as exc:
        raise InputFileError(path, f"cannot read the file ({exc.strerror or exc})") from None


def is_unnamed(name: str) -> bool:
    """A header cell spreadsheets leave over a column nobody named."""
    return name == "" or _UNNAMED.fullmatch(name) is not None


def check_unnamed(path: Path, header: Sequence[str], filled: Sequence[int]) -> None:
    """Refuse a column without a name (at ``filled``, positions in ``header``) that has data."""
    if filled:
        position = filled[0]
        name = header[position]
        raise InputFileError(
            path,
            f"column {position + 1} has data but "
            + (f"its header {name!r} names no column" if name else "no header")
            + f"; name it (known columns: {', '.join(KNOWN_COLUMNS)}) or delete it",
        )


def encoding_of(path: Path) -> str:
    """UTF-16 with a byte-order mark; UTF-8 (with or without one) when every byte of the file
    is valid UTF-8; else Windows-1252 when every byte decodes as it, no control character
    results and no character is written in UTF-8 (a mostly-UTF-8 file with a stray byte would
    be read as mojibake: refused, naming the byte). A NUL byte (binary data, UTF-16 without its
    mark) is never text: refused."""
    with path.open("rb") as handle:
        if handle.read(2) in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
            return "utf-16"
        # (a UTF-8 file is checked as "utf-8", its mark a character: an error's offset is then
        # the file's; it is read as "utf-8-sig", without the mark)
        for encoding, read_as in (("utf-8", "utf-8-sig"), ("cp1252", "cp1252")):
            handle.seek(0)
            decoder = codecs.getincrementaldecoder(encoding)()
            read = start = 0  # start: where in the file the bytes the decoder holds begin
            try:
                while block := handle.read(1 << 20):
                    start = read - len(decoder.getstate()[0])  # (a character cut by a block)
                    read += len(block)
                    text = decoder.decode(block)
                    if "\x00" in text or (encoding == "cp1252" and _CONTROL.search(text)):
                        break
                else:
                    start = read - len(decoder.getstate()[0])
                    decoder.decode(b"", final=True)
                    return read_as
            except UnicodeDecodeError as exc:
                if encoding == "utf-8":
                    _refuse_a_stray_byte(path, start + exc.start)
                continue
    raise InputFileError(path, _NOT_TEXT)


# A character written in UTF-8 on more than one byte (RFC 3629's well-formed sequences)
_UTF8_CHARACTER = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|\xe0[\xa0-\xbf][\x80-\xbf]|[\xe1-\xec\xee\xef][\x80-\xbf]{2}"
    rb"|\xed[\x80-\x9f][\x80-\xbf]|\xf0[\x90-\xbf][\x80-\xbf]{2}|[\xf1-\xf3][\x80-\xbf]{3}"
    rb"|\xf4[\x80-\x8f][\x80-\xbf]{2}"
)


def _refuse_a_stray_byte(path: Path, offset: int) -> None:
    """Refuse a file that is not UTF-8 at ``offset`` but writes some character in UTF-8: read
    as Windows-1252, each of those would become two or three other letters (``é`` as ``Ã©``)
    and be sent so. A file with no such character is left to be read as Windows-1252."""
    with path.open("rb") as handle:
        seen = b""  # the end of the block before, for a character cut between two blocks
        while block := handle.read(1 << 20):
            found = _UTF8_CHARACTER.search(seen + block)
            if found is not None:
                break
            seen = block[-3:]
        else:
            return
        handle.seek(0)
        line, line_start = 1, 0  # the stray byte's line, and where in the file that line starts
        while handle.tell() < offset:
            block = handle.read(min(1 << 20, offset - handle.tell()))
            line += block.count(b"\n")
            if b"\n" in block:
                line_start = handle.tell() - len(block) + block.rfind(b"\n") + 1
        stray = handle.read(1)[0]
    column = offset - line_start + 1
    try:
        meant = f" ({bytes([stray]).decode('cp1252')!r} in Windows-1252)"
    except UnicodeDecodeError:  # a byte Windows-1252 leaves undefined
        meant = ""
    utf8 = found.group()
    elsewhere = "its byte-order mark" if utf8 == codecs.BOM_UTF8 else repr(utf8.decode())
    raise InputFileError(
        path,
        f"line {line}, byte {column}: 0x{stray:02X}{meant} is not UTF-8, "
        f"though the file is UTF-8 elsewhere ({elsewhere}), so either way some text would be "
        "sent garbled: retype that character, or save the file as 'CSV UTF-8'",
    )


def sniff(path: Path, encoding: str) -> tuple[str, list[str]]:
    """The delimiter (comma, semicolon or tab) that splits the header into the most known
    columns, then the most columns; a comma when none splits it."""
    best: tuple[int, int] = (-1, -1)
    sep, header = ",", []
    for candidate in _DELIMITERS:
        try:
            with path.open(encoding=encoding, newline="") as handle:
                cells = next(csv.reader(handle, delimiter=candidate), None)
        except UnicodeDecodeError:
            raise InputFileError(path, not_text(encoding)) from None
        except csv.Error as exc:
            raise InputFileError(path, f"cannot parse as CSV: {exc}") from None
        if cells is None:
            break
        cells = [cell.strip() for cell in cells]
        known = sum(name in _canonical().values() for name in canonical_names(cells))
        if (known, len(cells)) > best:
            best, sep, header = (known, len(cells)), candidate, cells
    if not any(header):
        raise InputFileError(path, "file is empty")
    return sep, header


def not_text(encoding: str) -> str:
    return _NOT_TEXT if encoding != "utf-16" else "is not valid UTF-16 text"


@dataclass(frozen=True, slots=True)
class CsvHeader:
    """How a CSV file is written: its encoding and delimiter, its header cells (as written,
    stripped), and the columns kept (the named ones: their positions, and canonical names)."""

    encoding: str
    sep: str
    header: list[str]
    positions: list[int]
    names: list[str]


def csv_header(path: Path) -> CsvHeader:
    """The file's encoding, delimiter and header, and the unnamed columns it may leave out."""
    encoding = encoding_of(path)
    sep, header = sniff(path, encoding)
    kept = [i for i, name in enumerate(header) if not is_unnamed(name)]
    return CsvHeader(encoding, sep, header, kept, canonical_names([header[i] for i in kept]))

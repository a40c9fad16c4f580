"""``bulkrunner validate``: what it prints, and a small CSV file checked without pandas.

Importing pandas (with numpy and pyarrow) takes longer than validating a few hundred rows, so a CSV
file of at most ``SMALL_CSV_BYTES`` is read here with the csv module and judged cell by cell.
Nothing here is a rule of its own: the file checks are ``bulkrunner.input.files``', the cell rules
``bulkrunner.operations.cells``', the rules across a row its operation's ``check``, the account rule
``bulkrunner.config.accounts``'; what is here is only the order ``open_input``, ``judge_rows`` and
``validate_job`` apply them in, without DataFrames. A file the csv module could read otherwise than
pandas does (a row longer than the header, a line of only spaces, quotes the csv module finds
malformed...) is left to the pandas path, which words those problems: both paths give the same lines
and exit code for every file (``tests/unit/commands/test_validate.py`` holds them to it).
"""

from __future__ import annotations

import csv
import functools
import io
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from bulkrunner.config.accounts import Accounts, account_error, check_column
from bulkrunner.config.run_config import RunConfig, for_config
from bulkrunner.errors import ExitCode
from bulkrunner.input.custom_fields import as_read
from bulkrunner.input.files import (
    CsvHeader,
    Ignored,
    accepted,
    check_path,
    check_unnamed,
    csv_header,
    input_columns,
    reading,
    report_ignored,
)
from bulkrunner.model import count, unechoed
from bulkrunner.operations import Operation, Wire, sent_columns
from bulkrunner.operations.cells import (
    BLANK,
    ID_FIELD,
    PROBLEMS_APART,
    field_of,
    parser,
    repeated,
    row_error,
)
from bulkrunner.operations.fields import ACCOUNT, CAMPAIGN_ID, Vocabulary
from bulkrunner.operations.syntax import unescape_cell
from bulkrunner.output.problems import SHOWN_INVALID, Problems

SMALL_CSV_BYTES = 1 << 20  # about 10,000 rows: past that, pandas' parsing pays for its import
# For tests only: "pandas" or "quick" chooses the path whatever the file's size.
PATH_ENV = "BULKRUNNER_VALIDATE_PATH"


def validate_command(config: RunConfig, out: TextIO) -> ExitCode:
    """``bulkrunner validate``: a small CSV file checked here, any other by ``validate_job``."""
    if _quick(config.input):
        try:
            return quick_validate(config, out)
        except _Unusual:
            pass  # nothing was printed: the pandas path reads it and words its problems
    return pandas_validate(config, out)


def _quick(path: Path) -> bool:
    """Whether ``path`` is a CSV file small enough to check without pandas (or a test says)."""
    chosen = os.environ.get(PATH_ENV)
    if chosen == "pandas" or path.suffix.lower() != ".csv":
        return False
    try:
        return chosen == "quick" or path.stat().st_size <= SMALL_CSV_BYTES
    except OSError:
        return False  # the pandas path says why it cannot be read


def pandas_validate(config: RunConfig, out: TextIO) -> ExitCode:
    return validate_job(config, out)


def print_validation(
    path: Path, rows: int, ignored: Ignored, errors: Iterable[tuple[int, str]], out: TextIO
) -> ExitCode:
    """Print the invalid rows (each row's number and error, ``""`` for a valid row), or, when
    there are many, how many rows have each kind of problem and the first few of them; then
    the count of rows. ROWS_FAILED if a row is invalid."""
    invalid: list[tuple[int, str]] = []  # the first rows, printed one by one if few
    problems = Problems()
    bad = 0
    for number, error in errors:
        if error:
            bad += 1
            problems.add(number, error)
            if len(invalid) < SHOWN_INVALID:
                invalid.append((number, error))
    if bad > SHOWN_INVALID:
        print(
            f"{path}: {count(bad, 'invalid row')}, by kind of problem (every row's "
            f"error is in the report of: bulkrunner run {path} --dry-run):",
            file=out,
        )
        for line in problems.lines():
            print(line, file=out)
    else:
        for number, error in invalid:
            print(f"{path} row {number}: {error}", file=out)
    left_out = f"; ignored {ignored}" if ignored.rows or ignored.columns else ""
    print(f"{path}: {count(rows, 'row')}, {rows - bad} valid, {bad} invalid{left_out}", file=out)
    return ExitCode.ROWS_FAILED if bad else ExitCode.OK


def quick_validate(config: RunConfig, out: TextIO) -> ExitCode:
    """``validate_job`` of a CSV file without pandas; ``_Unusual`` (before printing anything)
    for a file it leaves to pandas."""
    operation, wire = for_config(config)
    table = _read(config.input, operation, config.keep_columns)
    accounts = Accounts.load(config, None)  # its account names, when it has an accounts file
    if accounts is not None:
        check_column(config.input, table.columns, accounts)
    errors = _errors(table, config.vocabulary, operation, wire, accounts)
    numbered = ((number, error) for number, error in enumerate(errors, start=1))
    return print_validation(config.input, len(table.rows), table.ignored, numbered, out)


class _Unusual(Exception):
    """The file has something only the pandas path reads as pandas does, or words."""


@dataclass(frozen=True, slots=True)
class _Table:
    """A CSV file's rows as ``open_input`` gives them: blank rows left out, only its input
    columns (canonical names), cells unescaped."""

    columns: list[str]
    rows: list[list[str]]
    ignored: Ignored


def _read(path: Path, operation: Operation, keep: tuple[str, ...]) -> _Table:
    """``open_input`` of a CSV file: the same checks, in the same order."""
    check_path(path)
    with reading(path):
        form = csv_header(path)
        lines = _lines(path, form)
    width = len(form.header)
    blank = [not any(cell.strip() for cell in line) for line in lines]
    unnamed = [i for i in range(width) if i not in form.positions]
    filled = [i for i in unnamed if any(line[i].strip() for line in lines)]
    check_unnamed(path, form.header, filled)
    last = max((i + 1 for i, empty in enumerate(blank) if not empty), default=0)
    ignored = Ignored(sum(blank), len(unnamed) - len(filled), sum(blank[:last]))
    kept = input_columns(path, form.names)  # a report: its own columns, not its results
    raw = [form.header[at] for at, name in zip(form.positions, form.names, strict=True)]
    raw = [name for name, column in zip(raw, form.names, strict=True) if column in kept]
    names = as_read(raw, [unechoed(name) for name in kept], operation)
    rows = [line for line, empty in zip(lines, blank, strict=True) if not empty]
    accepted(path, raw, names, len(rows), operation, keep)
    report_ignored(path, ignored)
    at = [form.positions[form.names.index(name)] for name in kept]  # (in the order of names)
    return _Table(names, [[unescape_cell(row[i]) for i in at] for row in rows], ignored)


def _lines(path: Path, form: CsvHeader) -> list[list[str]]:
    """Every line after the header as pandas reads it: an empty line left out, a short one
    filled with blank cells; ``_Unusual`` where pandas might read it otherwise, or refuse it."""
    width = len(form.header)
    lines: list[list[str]] = []
    try:
        with path.open(encoding=form.encoding, newline="") as handle:
            text = handle.read()
        if "\r" in text.replace("\r\n", ""):
            # where lines end in a bare CR, pandas drops the empty first cell of a line after
            # an empty line (",5" reads as "5,"): only pandas can read such a file as it does
            raise _Unusual
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=form.sep, strict=True)
        next(reader)  # the header, read by ``csv_header``
        for cells in reader:
            if not cells:
                continue  # an empty line: pandas skips it, and does not count it
            if len(cells) > width:  # pandas refuses it, or drops an empty last cell
                raise _Unusual
            if len(cells) == 1 and cells[0] and not cells[0].strip():
                raise _Unusual  # pandas skips a line of spaces, but not "  " in quotes
            lines.append(cells + [""] * (width - len(cells)))
    except (csv.Error, UnicodeError):
        raise _Unusual from None
    return lines


def _errors(
    table: _Table,
    vocabulary: Vocabulary,
    operation: Operation,
    wire: Wire,
    accounts: Accounts | None,
) -> list[str]:
    """Each row's error, ``""`` for a valid row: what ``judge_rows`` and the account rule of
    ``validate_job`` find, cell by cell."""
    ids_at = table.columns.index(CAMPAIGN_ID)
    sent = sent_columns(table.columns, operation, wire)
    settings = [
        (at, name, functools.cache(parser(field_of(operation, name), vocabulary)))
        for at, name in enumerate(table.columns)
        if name in sent
    ]
    read_id = functools.cache(parser(ID_FIELD, vocabulary))
    ids = [read_id(row[ids_at]) for row in table.rows]
    targets = _targets(table, ids, operation, vocabulary)
    on_rows: dict[object, list[int]] = {}
    for number, target in enumerate(targets, start=1):
        if target is not None:
            on_rows.setdefault(target, []).append(number)
    account_at = table.columns.index(ACCOUNT) if ACCOUNT in table.columns else None
    checks = type(operation).check is not Operation.check  # rules across a row's columns
    errors: list[str] = []
    for row, (campaign_id, id_error), target in zip(table.rows, ids, targets, strict=True):
        numbers = on_rows.get(target, ()) if target is not None else ()
        if id_error is not None:
            id_error = f"{CAMPAIGN_ID}: {id_error}"
        elif campaign_id is BLANK:
            id_error = f"{CAMPAIGN_ID}: missing"
        elif len(numbers) > 1 and operation.one_row_per_campaign:
            id_error = repeated(campaign_id, numbers, operation.key)
        cells = [(name, *parse(row[at])) for at, name, parse in settings]
        blank = [not error and value is BLANK for _, value, error in cells]
        cell_errors = [f"{name}: {error}" if error else None for name, _, error in cells]
        error = row_error([id_error, *cell_errors], all(blank))
        if checks:
            payload = {name: value for name, value, bad in cells if value is not BLANK and not bad}
            if not error:
                error = operation.check(payload, wire)
            elif also := operation.also_invalid(payload, wire):
                error = f"{error}{PROBLEMS_APART}{also}"
        if accounts is not None and account_at is not None:
            wrong = account_error(row[account_at].strip(), accounts.accounts, accounts.path)
            if wrong:
                error = f"{error}; {wrong}" if error else wrong
        errors.append(error)
    return errors


def _targets(
    table: _Table, ids: list[tuple[Any, str | None]], operation: Operation, vocabulary: Vocabulary
) -> list[object]:
    """What each row changes (its campaign, or for an operation with a key its campaign and
    key), None where its cells do not say: rows with the same one repeat it."""
    key = operation.key
    if key is None:
        return [i if error is None and i is not BLANK else None for i, error in ids]
    if key not in table.columns:
        return [None] * len(ids)
    at = table.columns.index(key)
    read = functools.cache(parser(field_of(operation, key), vocabulary))
    found: list[object] = []
    for row, (campaign_id, error) in zip(table.rows, ids, strict=True):
        value, wrong = read(row[at])
        ok = error is None and campaign_id is not BLANK and wrong is None and value is not BLANK
        found.append((campaign_id, value) if ok else None)
    return found


def validate_job(config: RunConfig, out: TextIO) -> ExitCode:
    """Load and validate only; print the invalid rows, or, when there are many, how many rows
    have each kind of problem and the first few of them. Sends nothing. (``bulkrunner
    validate`` checks a small CSV file without pandas: ``quick_validate``.)"""
    from bulkrunner.commands.dry_run import judged, opened  # pandas: only for this path

    source, ids = opened(config)
    accounts = Accounts.load(config, None)  # its account names, when it has an accounts file
    if accounts is not None:
        check_column(config.input, source.columns, accounts)
    errors = (
        (offset + index + 1, error)
        for offset, _, judged in judged(source, config, ids, accounts)
        for index, error in enumerate(judged.errors)
    )
    return print_validation(config.input, source.rows, source.ignored, errors, out)

"""``run --dry-run`` (and ``validate``'s reading of a large file): every row judged, nothing read
from the account or sent.

A dry run sends nothing and so needs no row twice: it checks the whole file first, then reads it
a chunk at a time (its campaign_id column first, for repeated campaigns, unless the check read
it on the way), judging each chunk as its report is written. Memory stays flat however long the
file.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TextIO

import numpy as np
import numpy.typing as npt
import pandas as pd

from bulkrunner.commands.reporting import exit_code, show_summary, typed, warn_invalid, write_report
from bulkrunner.commands.resumption import check_paths, check_preview_path
from bulkrunner.config.accounts import Accounts, account_error, check_column
from bulkrunner.config.paths import lock_path
from bulkrunner.config.run_config import RunConfig, for_config
from bulkrunner.errors import ExitCode
from bulkrunner.input.duplicates import repeated_leads, same_lead
from bulkrunner.input.loading import InputFile, open_input
from bulkrunner.input.suppression import Suppression, suppression_of
from bulkrunner.input.validation import (
    Repeats,
    RowJudgement,
    campaign_ids,
    judge_rows,
    repeated_among,
    target_ids,
    validate,
)
from bulkrunner.model import Changes, Clock, Numbering, Outcome, Row, RunStats, Status, count
from bulkrunner.operations.base import Operation
from bulkrunner.operations.cells import is_blank
from bulkrunner.operations.fields import ACCOUNT, CAMPAIGN_ID
from bulkrunner.output.problems import SHOWN_INVALID
from bulkrunner.output.summary import Summary
from bulkrunner.records.locks import RunLock
from bulkrunner.sending.interrupts import Interrupts

log = logging.getLogger("bulkrunner")

PREVIEWED = 3  # valid rows whose request body a dry run prints
Ids = npt.NDArray[Any]  # each row's campaign id (``campaign_ids``)
_DRY_RUN = Outcome(Status.DRY_RUN)  # every valid row's outcome in a dry run: one value for all


def opened(config: RunConfig) -> tuple[InputFile, Ids | None]:
    """``open_input`` of the run's input, and its rows' campaign ids when its check (a CSV
    file's, which parses it whole) could read them on the way: then the file is parsed once
    more only, to judge its rows, instead of twice."""
    ids: list[Ids] = []
    operation = for_config(config)[0]
    # what repeats of an operation with a key is a campaign's key, which the ids do not show
    keyless = operation.key is None
    source = open_input(
        config.input,
        watch=(lambda cells: ids.append(campaign_ids(cells))) if keyless else None,
        operation=operation,
        keep=config.keep_columns,
    )
    return source, _joined(ids) if source.watched else None


def judged(
    source: InputFile,
    config: RunConfig,
    ids: Ids | None = None,
    accounts: Accounts | None = None,
) -> Iterator[tuple[int, pd.DataFrame, RowJudgement]]:
    """Each chunk of ``source``, the number of rows before it, and its rows' judgement (errors,
    "" for a valid row). A campaign on two rows is found first (``repeats``, else from the
    campaign_id column alone). With ``accounts``, a row must name one of them."""
    repeats = _repeats(source, ids, Numbering(), for_config(config)[0])
    offset = 0
    for chunk in source.chunks():
        yield offset, chunk, _judge(chunk, offset, config, repeats, accounts)
        offset += len(chunk)


def _joined(ids: Sequence[Ids]) -> Ids:
    return np.concatenate(ids) if ids else np.zeros(0, np.int64)


def _repeats(
    source: InputFile, ids: Ids | None, numbering: Numbering, operation: Operation
) -> Repeats:
    """The campaigns on several rows of ``source`` (its campaign ids: ``ids``, if read, else
    from its campaign_id column alone), with the numbers of those rows; for an ``operation``
    with a key, the campaign and key pairs (``target_ids``: from those two columns)."""
    if ids is None:
        key = operation.key if operation.key in source.columns else None
        columns = source.chunks(columns=[CAMPAIGN_ID, *([key] if key else [])])
        ids = _joined([target_ids(chunk, operation) for chunk in columns])
    found = repeated_among([ids])
    if numbering.numbers is None:
        return found
    return {cid: [numbering(p) for p in rows] for cid, rows in found.items()}


def _judge(
    chunk: pd.DataFrame,
    offset: int,
    config: RunConfig,
    repeats: Repeats,
    accounts: Accounts | None,
) -> RowJudgement:
    """The judgement of one chunk's rows, ``offset`` rows into the file."""
    operation, wire = for_config(config)
    judged = judge_rows(
        chunk,
        config.vocabulary,
        offset=offset,
        repeats=repeats,
        operation=operation,
        wire=wire,
    )
    errors = judged.errors
    if accounts is not None and ACCOUNT in chunk.columns:
        for index, cell in enumerate(chunk[ACCOUNT].tolist()):
            name = "" if pd.isna(cell) else str(cell).strip()
            wrong = account_error(name, accounts.accounts, accounts.path)
            if wrong and not errors[index]:  # a valid row no more: its fields do not count
                for name in judged.fields:
                    judged.fields[name] -= not is_blank(chunk[name].iloc[index])
            if wrong:
                errors[index] = f"{errors[index]}; {wrong}" if errors[index] else wrong
    return judged


@dataclass(frozen=True, slots=True)
class _Unsent:
    """What keeps a valid lead unsent in a dry run as in a run: its lead suppressed, or the
    same as an earlier row's."""

    identity: str
    suppression: Suppression | None
    same_lead: Mapping[int, int]

    @classmethod
    def of(
        cls,
        config: RunConfig,
        source: InputFile,
        numbering: Numbering,
        suppression: Suppression | None,
    ) -> _Unsent:
        identity = for_config(config)[0].identity
        assert identity is not None
        return cls(identity, suppression, repeated_leads(source, identity, numbering)[0])

    def outcomes(
        self, chunk: pd.DataFrame, numbers: Sequence[int], errors: Sequence[str]
    ) -> dict[int, Outcome]:
        found: dict[int, Outcome] = {}
        cells = chunk[self.identity].tolist()
        for number, error, cell in zip(numbers, errors, cells, strict=True):
            if error:
                continue
            why = self.suppression.match(str(cell)) if self.suppression is not None else None
            if why is not None:
                found[number] = Outcome(Status.SUPPRESSED, error=why)
            elif (first := self.same_lead.get(number)) is not None:
                found[number] = Outcome(Status.UNCHANGED, error=same_lead(first))
        return found


@dataclass(slots=True)
class _Tally:
    """What the log and the summary say of a dry run, counted as its report is written."""

    counts: Counter[Status] = field(default_factory=Counter)
    shown: list[tuple[int, str]] = field(default_factory=list)  # the first invalid rows
    examples: list[Row] = field(default_factory=list)  # the first valid rows, as they'd be sent
    fields: Counter[str] = field(default_factory=Counter)  # valid rows that set each field

    def reset(self) -> None:
        for counted in (self.counts, self.shown, self.examples, self.fields):
            counted.clear()


def dry_run(
    config: RunConfig,
    source: InputFile,
    out: TextIO,
    clock: Clock,
    ids: Ids | None = None,
    numbering: Numbering | None = None,
) -> ExitCode:
    """Report every row as ``dry_run`` or ``invalid`` without sending or reading anything.

    The file is judged a chunk at a time as its report is written, before the report's lock
    is taken, as a real run validates before it (so the log reads the same); only moving the
    report into place happens under the lock. SIGTERM too stops it cleanly (no temporary file,
    no lock)."""
    assert config.report is not None
    check_paths(config)
    check_preview_path(config.report, "dry run")
    report_path, numbering = config.report, numbering or Numbering()
    accounts = Accounts.load(config, None)
    check_column(config.input, source.columns, accounts)
    tally = _Tally()
    operation, _ = for_config(config)
    suppression = suppression_of(config.suppress, operation)
    with Interrupts():
        unsent = _Unsent.of(config, source, numbering, suppression) if operation.identity else None
        repeats = _repeats(source, ids, numbering, operation) if unsent is None else {}

        def results(
            offset: int, chunk: pd.DataFrame
        ) -> tuple[dict[int, Outcome], dict[int, Changes]]:
            if not offset:  # the report is written again (to the fallback path): count again
                tally.reset()
            judged = _judge(chunk, offset, config, repeats, accounts)
            numbers = numbering.span(offset, len(chunk))
            errors = judged.errors
            invalid = [index for index, error in enumerate(errors) if error]
            tally.counts[Status.INVALID] += len(invalid)
            for index in invalid[: SHOWN_INVALID - len(tally.shown)]:
                tally.shown.append((numbers[index], errors[index]))
            skipped = unsent.outcomes(chunk, numbers, errors) if unsent is not None else {}
            _preview(tally, chunk, judged, numbers, config, skipped)
            outcomes = {
                number: Outcome(Status.INVALID, error=error) if error else _DRY_RUN
                for number, error in zip(numbers, errors, strict=True)
            }
            outcomes.update(skipped)
            tally.counts.update(
                o.status for o in outcomes.values() if o.status is not Status.INVALID
            )
            return outcomes, {}

        written = write_report(
            source,
            numbering,
            results,
            report_path,
            clock,
            out=out,
            lock=lambda: RunLock(lock_path(report_path), clock.wall()),
            examples=lambda: typed(source),
            finished=lambda: warn_invalid(config.input, tally.shown, tally.counts[Status.INVALID]),
        )
    if not config.quiet:
        _print_preview(tally, out, config)
    summary = Summary.counted(tally.counts, RunStats(), config.rates, written)
    show_summary(out, summary, source.ignored)
    return exit_code(tally.counts, aborted=False)


def _preview(
    tally: _Tally,
    chunk: pd.DataFrame,
    judged: RowJudgement,
    numbers: Sequence[int],
    config: RunConfig,
    skipped: Collection[int] = (),
) -> None:
    """Count the fields valid rows set (validation found the blanks), and keep the first few
    valid rows' bodies (of rows to send: not those ``skipped``, by number)."""
    errors = judged.errors
    operation, wire = for_config(config)
    tally.fields.update(judged.fields)
    sent = [i for i, error in enumerate(errors) if not error and numbers[i] not in skipped]
    for index in sent[: PREVIEWED - len(tally.examples)]:
        one = chunk.iloc[[index]].reset_index(drop=True)
        (row,) = validate(one, config.vocabulary, operation=operation, wire=wire).rows
        tally.examples.append(replace(row, number=numbers[index]))


def _print_preview(tally: _Tally, out: TextIO, config: RunConfig) -> None:
    operation, wire = for_config(config)
    valid = tally.counts[Status.DRY_RUN]
    if tally.examples:
        print(
            f"preview: the first {len(tally.examples)} of {count(valid, 'valid row')}, "
            "as they would be sent:",
            file=out,
        )
        for row in tally.examples:
            requests = operation.requests(row.campaign_id, row.payload, wire)
            print(f"  row {row.number}: {operation.describe(requests)}", file=out)
    print(f"rows valid: {valid}, invalid: {tally.counts[Status.INVALID]}", file=out)
    if tally.fields:
        counts = ", ".join(f"{name} {n}" for name, n in tally.fields.items() if n)
        print(f"rows setting each field: {counts or 'none'}", file=out)

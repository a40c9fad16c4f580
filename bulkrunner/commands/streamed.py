"""What run, retry, rollback and plan share: a run's rows surveyed, sent a batch at a time
through the session, and reported.

    survey (one pass) ─▶ the accounts the rows use, their keys and locks ─▶ the session, a batch
         at a time (each batch's outcomes to the spill) ─▶ the report (the input and the spill)
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

from bulkrunner.commands.recording import current
from bulkrunner.commands.reporting import REPORT_ROWS, Results, warn_invalid
from bulkrunner.config.accounts import Account, Accounts, check_column, sending_with, summary_lines
from bulkrunner.config.environment import key_not_set, read_key
from bulkrunner.config.run_config import RunConfig, for_config
from bulkrunner.errors import UsageError
from bulkrunner.input.loading import InputFile
from bulkrunner.input.suppression import suppression_of
from bulkrunner.model import Changes, Clock, Numbering, Outcome, Rate, Row, Status, count
from bulkrunner.operations.fields import ACCOUNT, CAMPAIGN_ID
from bulkrunner.output.summary import LISTED, FailedRows
from bulkrunner.records.journal import Journal, row_key
from bulkrunner.records.locks import lock_accounts
from bulkrunner.records.store import StateStore
from bulkrunner.sending.batches import RunRows, Survey
from bulkrunner.sending.interrupts import INTERRUPTED, Interrupts
from bulkrunner.sending.pipeline import Pipeline
from bulkrunner.sending.plan import Drift
from bulkrunner.sending.session import Session

log = logging.getLogger("bulkrunner")


def api_key(config: RunConfig, environ: Mapping[str, str]) -> str:
    """The key of a run without an accounts file (SMARTLEAD_API_KEY); UsageError when it is
    needed and not set."""
    key = read_key(environ)
    if not (key or config.dry_run or config.simulate or config.accounts):
        raise UsageError(
            f"{key_not_set()} (or use --dry-run, or --simulate to try the embedded simulator)"
        )
    return key


@dataclass
class Stream:
    """A run's rows, from the input to the report: ``rows`` (``RunRows``), what the survey found
    of them, and the accounts they are sent with."""

    config: RunConfig
    source: InputFile
    rows: RunRows
    accounts: Accounts | None  # the accounts file, if the run has one
    key: str  # the key of a run without one
    clock: Clock
    survey: Survey = field(default_factory=Survey)
    drift: Drift | None = None  # a rollback's or a saved plan's: writes only over what it expects
    sending: dict[str, Account] = field(default_factory=dict)  # the accounts it sends with
    store: StateStore | None = None  # the state store, while the run holds its locks
    report_rows: int = REPORT_ROWS

    @property
    def numbering(self) -> Numbering:
        return self.rows.numbering

    @classmethod
    def of(
        cls,
        config: RunConfig,
        source: InputFile,
        environ: Mapping[str, str],
        key: str,
        clock: Clock,
        *,
        ids: Any = None,
        numbering: Numbering | None = None,
    ) -> Stream:
        """The stream of ``source`` (its campaign ids ``ids``, if read already) for ``config``."""
        accounts = Accounts.load(config, environ)
        check_column(config.input, list(source.columns), accounts)
        operation, wire = for_config(config)
        report = config.report
        types = (
            report is not None
            and report.suffix.lower() == ".parquet"
            and source.path.suffix.lower() != ".csv"
        )
        rows = RunRows(
            source,
            config.vocabulary,
            operation,
            wire,
            accounts,
            numbering or Numbering(),
            ids=ids,
            types=types,
            suppression=suppression_of(config.suppress, operation),
            verify=config.verify,
        )
        return cls(config, source, rows, accounts, key, clock)

    def survey_and_lock(self, held: ExitStack, started: datetime) -> None:
        """Survey the input (one pass), read the keys of the accounts its rows use (one not set
        is an error before anything is sent), say which rows are invalid, open the state store
        and hold the lock of each account the run sends with in ``held``: two runs never share
        one account's limits unknowingly (runs with the store share them knowingly)."""
        self.survey = self.rows.surveyed()
        self.sending = sending_with(self.config, self.accounts, self.key, self.survey.accounts)
        warn_invalid(self.config.input, self.survey.shown, self.survey.invalid)
        self.store = current().shared(self.config, held)
        if not self.config.simulate:  # each run has its own embedded simulator
            keys = {name: account.key for name, account in self.sending.items()}
            shared = self.store is not None
            lock_accounts(held, list(self.sending.values()), keys, started, shared=shared)

    def limits(self) -> str:
        """The limits the run sends within: each account's (named, when it has a name)."""
        each = [
            f"{name} {', '.join(map(str, account.rates))}".strip()
            for name, account in self.sending.items()
        ]
        return "; ".join(each) or ", ".join(map(str, self.config.rates))

    def ceiling(self) -> tuple[Rate, ...]:
        """The limits to compare the achieved rate with: of the one account it sent with."""
        accounts = list(self.sending.values())
        return accounts[0].rates if len(accounts) == 1 else ()

    def results(
        self,
        counts: Counter[Status],
        by_account: dict[str, Counter[Status]],
        failed: FailedRows | None = None,
    ) -> Results:
        """The report's results of each chunk, counted by status (and by account) on the way,
        the first failed and invalid rows kept (``failed``)."""

        def results(
            offset: int, chunk: pd.DataFrame
        ) -> tuple[dict[int, Outcome], dict[int, Changes]]:
            if not offset:  # the report is written again (to the fallback path): count again
                counts.clear()
                by_account.clear()
                if failed is not None:
                    failed.clear()
            outcomes, changes = self.rows.results(offset, chunk)
            counts.update(outcome.status for outcome in outcomes.values())
            if failed is not None:
                self._failed(failed, offset, chunk, outcomes)
            if self.accounts is not None and ACCOUNT in chunk.columns:
                numbers = self.numbering.span(offset, len(chunk))
                for number, cell in zip(numbers, chunk[ACCOUNT].tolist(), strict=True):
                    name = "" if pd.isna(cell) else str(cell).strip()
                    by_account.setdefault(name, Counter())[outcomes[number].status] += 1
            return outcomes, changes

        return results

    def _failed(
        self, failed: FailedRows, offset: int, chunk: pd.DataFrame, outcomes: Mapping[int, Outcome]
    ) -> None:
        numbers = self.numbering.span(offset, len(chunk))
        campaigns = chunk[CAMPAIGN_ID].tolist() if CAMPAIGN_ID in chunk.columns else None
        for position, number in enumerate(numbers):
            if outcomes[number].status in LISTED:  # (the cell is read of those rows only)
                cell = campaigns[position] if campaigns is not None else None
                failed.add(number, _campaign(cell), outcomes[number])

    def per_account(
        self, by_account: Mapping[str, Counter[Status]], session: Session | None
    ) -> list[str]:
        """The summary's line of each account of an accounts file."""
        if self.accounts is None:
            return []
        stats = session.by_account if session is not None else {}
        return summary_lines(self.accounts.accounts, by_account, stats)


def _campaign(cell: Any) -> str:
    """A campaign cell as a person wrote it: ``123``, not ``123.0`` (a column with blanks)."""
    if cell is None or (not isinstance(cell, str) and pd.isna(cell)):
        return ""
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    return str(cell).strip()


class Journaling:
    """Journals each finished row. A row that finished but is not in the journal would be lost
    to --resume: once the journal cannot be written (a full disk), nothing more is sent."""

    def __init__(self, journal: Journal) -> None:
        self.journal = journal
        self.broken: str | None = None  # why the journal cannot be written, once it cannot
        self.stop: Callable[[str], None] = lambda reason: None

    def row(self, row: Row, outcome: Outcome, changes: Changes | None) -> None:
        # the key is made as each row finishes, not held for every row from the start
        key = row_key(row.campaign_id, row.payload)
        self._write(key, row.number, row.campaign_id, outcome, changes, row.account)

    def invalid(self, number: int, outcome: Outcome) -> None:
        self._write("", number, None, outcome, None, None)

    def _write(
        self,
        key: str,
        number: int,
        campaign_id: int | None,
        outcome: Outcome,
        changes: Changes | None,
        account: str | None,
    ) -> None:
        if self.broken is not None:
            return
        try:
            self.journal.record(key, number, campaign_id, outcome, changes, account)
        except OSError as exc:
            path = self.journal.path
            self.broken = f"run aborted: cannot write the journal {path} ({exc.strerror or exc})"
            log.error("%s; sending nothing more", self.broken)
            self.stop(self.broken)


def send(
    stream: Stream,
    interrupts: Interrupts,
    journal: Journal | None = None,
    *,
    planning: bool = False,
    planned: Callable[[Pipeline], None] | None = None,
    hand_over: Callable[[Mapping[int, Outcome], Mapping[int, Changes]], None] | None = None,
) -> Session:
    """The stream's rows through the session a batch at a time (``planning``: read and
    planned only), each batch's outcomes to the spill (and to ``hand_over``), each finished
    row to the ``journal``; signals are held once this returns."""
    import anyio

    config, rows, survey = stream.config, stream.rows, stream.survey
    journaling = Journaling(journal) if journal is not None else None
    recording = current()
    recording.sending(stream.sending, config.report)
    history = None if planning else recording.change_log(stream.sending)

    def finished(outcomes: Mapping[int, Outcome], changes: Mapping[int, Changes]) -> None:
        if history is not None:
            history.flush()
        if hand_over is not None:
            hand_over(outcomes, changes)
        rows.finished(outcomes, changes)

    def record(row: Row, outcome: Outcome, changes: Changes | None) -> None:
        if journaling is not None:  # the journal first: the crash-safe record of the row
            journaling.row(row, outcome, changes)
        if history is not None:
            history.row(row, outcome, changes)

    session = Session(
        config,
        stream.sending,
        rows,
        stream.clock,
        rows.operation,
        rows.wire,
        planning=planning,
        planned=planned,
        drift=stream.drift,
        record=record if journaling is not None or history is not None else None,
        on_batch=finished,
        totals=survey.accounts,
        wanted=survey.campaigns,
        store=stream.store,
    )
    rows.stop = session.stop
    if journaling is not None:
        journaling.stop = session.stop
        rows.record = journaling.invalid
    if not planning:
        log.info(
            "sending %s (%d invalid, not sent) with %s within %s",
            count(survey.rows, "row"),
            survey.invalid,
            count(config.concurrency, "worker"),
            stream.limits(),
        )
    try:
        anyio.run(session.run, backend="asyncio")  # aiohttp runs on asyncio only
    except KeyboardInterrupt:  # a signal before the loop could take it over, or after
        if not planning:
            log.error("interrupted")
        session.signals += 1
    interrupts.hold()
    if rows.pending:  # the batch the run was cancelled in
        finished(session.outcomes(), session.changes())
    if history is not None:
        history.flush()
    if session.signals and session.stats.aborted is None:
        session.aborted = "plan interrupted" if planning else INTERRUPTED
    if journaling is not None and journaling.broken and session.stats.aborted is None:
        session.aborted = journaling.broken
    return session

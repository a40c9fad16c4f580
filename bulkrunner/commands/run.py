"""What ``bulkrunner run``, ``retry``, ``validate`` and ``plan`` do, from a RunConfig to an
exit code.

lock the input ─▶ choose the report (--resume: the unfinished run of this input) ─▶ check the
     file ─▶ survey it (count, name the invalid rows) ─▶ lock the report ─▶ match the rows the
     journal has as succeeded (--resume) ─▶ send a batch at a time (journaling each finished
     row) ─▶ report ─▶ summary ─▶ exit code

Retry and rollback are such runs too, of an earlier report's rows and of a backup. ``plan`` is
a run that stops once it has read the account's state and planned (``Session(planning=True)``).

Every kind of run writes its report one way (``_report``): the input a chunk at a time, each chunk's
outcomes and changes, ``build_report`` of them appended to the report. A real run is streamed
(``bulkrunner.sending.batches``): its rows are sent a batch at a time and their outcomes kept on
disk until the report. A dry run and ``validate`` send nothing and so need no row twice: they check
the whole file first, then read it a chunk at a time (its campaign_id column first, for repeated
campaigns), judging each chunk as its report is written. Either way memory stays flat however long
the file; only ``plan`` holds every row.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack, closing, nullcontext
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np
import numpy.typing as npt
import pandas as pd

from bulkrunner.commands.resumption import (
    check_paths,
    choose_report,
    input_lock,
    run_identity,
    unfinished,
    unused,
)
from bulkrunner.config.accounts import (
    Account,
    Accounts,
    account_error,
    assign,
    check_column,
    summary_lines,
)
from bulkrunner.config.environment import API_KEY_ENV, return_freed_memory
from bulkrunner.config.paths import default_report_path, journal_path, lock_path
from bulkrunner.config.redaction import remember
from bulkrunner.config.run_config import RunConfig, for_config
from bulkrunner.errors import ExitCode, UsageError
from bulkrunner.input.files import Ignored
from bulkrunner.input.loading import InputFile, open_input, read_input
from bulkrunner.input.validation import (
    Repeats,
    RowJudgement,
    campaign_ids,
    judge_rows,
    repeated_among,
    validate,
)
from bulkrunner.model import (
    FINE,
    RESULT_COLUMNS,
    Change,
    Changes,
    Outcome,
    Row,
    Status,
    Validation,
    count,
    unechoed,
)
from bulkrunner.operations import fitting
from bulkrunner.operations.cells import is_blank
from bulkrunner.operations.fields import ACCOUNT, CAMPAIGN_ID
from bulkrunner.output.events import emit, show
from bulkrunner.output.hints import resume_command
from bulkrunner.output.planning import Duration, Forecast, Requests
from bulkrunner.output.problems import SHOWN_INVALID as _SHOWN_INVALID
from bulkrunner.output.report import build_report, cell_types, deliver_report, read_report
from bulkrunner.output.summary import Summary
from bulkrunner.records.journal import (
    Journal,
    RunIdentity,
    Success,
    read_header,
    read_successes,
    remove,
    row_key,
)
from bulkrunner.records.locks import RunLock, lock_accounts
from bulkrunner.sending.batches import CampaignSet, RunRows, Survey, stamp
from bulkrunner.sending.interrupts import INTERRUPTED, Interrupts

if TYPE_CHECKING:  # imported when sending: it pulls in aiohttp and rich, which validate needs not
    from bulkrunner.model import RunStats
    from bulkrunner.sending.session import Session

log = logging.getLogger("bulkrunner")

_PREVIEWED = 3  # valid rows whose request body a dry run prints
_RETRIED = frozenset({Status.FAILED.value, Status.NOT_ATTEMPTED.value})
Now = Callable[[], datetime]
Ids = npt.NDArray[Any]  # each row's campaign id (``campaign_ids``)


def exit_code(outcomes: Mapping[int, Outcome], aborted: bool) -> ExitCode:
    return counted_exit_code(Counter(o.status for o in outcomes.values()), aborted)


def counted_exit_code(counts: Mapping[Status, int], aborted: bool) -> ExitCode:
    """The exit code of a run that ended with ``counts`` rows of each status."""
    if aborted:
        return ExitCode.ABORTED
    failed = any(n for status, n in counts.items() if status not in FINE)
    return ExitCode.ROWS_FAILED if failed else ExitCode.OK


def run_job(
    config: RunConfig,
    out: TextIO,
    environ: Mapping[str, str] = os.environ,
    now: Now = lambda: datetime.now(UTC),
) -> ExitCode:
    """Run one job end to end; raises UsageError before anything is sent."""
    if not config.dry_run:  # before the input is read: see return_freed_memory
        return_freed_memory()
    api_key = _api_key(config, environ)
    accounts = Accounts.load(config, environ)
    started = now()
    default = unused(default_report_path(config.input, started))
    if config.dry_run:
        source, ids = opened(config)
        config = replace(config, report=config.report or default)
        check_paths(config)
        with Interrupts():  # SIGTERM too stops a dry run cleanly (no temporary file, no lock)
            return _dry_run(config, source, None, out, now, ids)
    with input_lock(config, started):
        source, ids = opened(config)
        identity = run_identity(config)
        config = choose_report(config, identity, default)
        return _execute(config, identity, source, ids, None, api_key, out, now, accounts)


def retry_job(
    config: RunConfig,
    out: TextIO,
    environ: Mapping[str, str] = os.environ,
    now: Now = lambda: datetime.now(UTC),
) -> ExitCode:
    """Re-run the failed and not-attempted rows of the report ``config.input``."""
    if not config.dry_run:
        return_freed_memory()
    api_key = _api_key(config, environ)
    accounts = Accounts.load(config, environ)
    earlier = read_report(config.input)
    status = earlier["status"].astype(str)
    for _, line in earlier[status == Status.INVALID.value].iterrows():
        print(f"row {line['row']} is invalid, not retried: {line['error']}", file=out)
    chosen = earlier[status.isin(_RETRIED)]
    if chosen.empty:
        print(f"{config.input}: no failed or not-attempted rows to retry", file=out)
        return ExitCode.OK
    numbers = [int(n) for n in chosen["row"]]
    frame = chosen.drop(columns=[c for c in chosen.columns if c in RESULT_COLUMNS])
    frame = frame.rename(columns=lambda column: unechoed(str(column)))  # wanted_status: status
    kind = fitting([str(c) for c in frame.columns], config.operation)
    if kind != config.operation:
        log.info("%s: its columns are those of the %s operation", config.input, kind)
        config = replace(config, operation=kind)
    started = now()
    default = unused(Path("reports") / f"{config.input.stem}-retry-{started:%Y%m%dT%H%M%SZ}.csv")
    frame = frame.reset_index(drop=True)
    retrying = ("retrying %s of %s", count(len(frame), "row"), config.input)  # once checked
    if config.dry_run:
        config = replace(config, report=config.report or default)
        check_paths(config)
        log.info(*retrying)
        with Interrupts():
            return _dry_run(config, InputFile.of(config.input, frame), numbers, out, now)
    with input_lock(config, started):
        identity = run_identity(config)
        config = choose_report(config, identity, default)
        log.info(*retrying)
        source = InputFile.of(config.input, frame)
        return _execute(config, identity, source, None, numbers, api_key, out, now, accounts)


def plan_job(
    config: RunConfig,
    out: TextIO,
    environ: Mapping[str, str] = os.environ,
    now: Now = lambda: datetime.now(UTC),
) -> ExitCode:
    """``bulkrunner plan``: read the account's current state as a real run would (the same
    preflight, through the limiter, with its retries and --max-wait), then say what each row
    would change, how many rows would change, and how long the run would take; write nothing
    to the account. The report has each row as the run would leave it, but ``dry_run`` for a
    row it would send, with ``before`` and ``after``.

    With no key to read with (no SMARTLEAD_API_KEY, --accounts or --simulate) it is the offline
    dry run, and says so."""
    api_key = environ.get(API_KEY_ENV, "")
    remember(api_key)
    if not (api_key or config.simulate or config.accounts):
        show(
            out,
            "plan_offline",
            [
                f"plan: {API_KEY_ENV} is not set, so nothing is read from the account: "
                "checking the file only, as run --dry-run does (set the key, or use --simulate, "
                "to see what would change)"
            ],
        )
        return run_job(replace(config, dry_run=True), out, environ, now)
    accounts = Accounts.load(config, environ)
    started = now()
    default = unused(default_report_path(config.input, started))
    config = replace(config, report=config.report or default)
    assert config.report is not None
    report_path = config.report
    check_paths(config)
    operation, _ = for_config(config)
    frame, ignored = read_input(config.input, operation, config.keep_columns)
    validation = _validated(config, frame, accounts)
    if accounts is not None:
        accounts = accounts.with_keys({row.account for row in validation.rows if row.account})
    shown = [(r.number, r.error) for r in validation.rejections[:_SHOWN_INVALID]]
    _warn_invalid(config.input, shown, len(validation.rejections))
    outcomes: dict[int, Outcome] = {
        r.number: Outcome(Status.INVALID, error=r.error) for r in validation.rejections
    }
    from bulkrunner.sending.session import AccountSessions, Session

    rows = list(validation.rows)
    reading: Session | AccountSessions
    with Interrupts() as interrupts, ExitStack() as held:
        _lock_accounts(held, config, api_key, accounts, {row.account for row in rows}, started)
        if accounts is not None:
            reading = AccountSessions(config, accounts.accounts, accounts.keys, rows, planning=True)
        else:
            reading = Session(config, api_key, rows, planning=True)
        if rows:
            try:
                import anyio

                anyio.run(reading.run, backend="asyncio")  # aiohttp runs on asyncio only
            except KeyboardInterrupt:  # a signal before the loop could take it over
                reading.signals += 1
        interrupts.hold()
    sessions: list[Session] = (
        list(reading.sessions.values()) if isinstance(reading, AccountSessions) else [reading]
    )
    stats = reading.stats
    interrupted = "plan interrupted" if reading.signals and stats.aborted is None else None
    if interrupted is not None:
        stats.aborted = interrupted
    forecast = _forecast(sessions, interrupted, outcomes, config)
    # shown unless nothing was read: an account whose key was rejected stops only its own rows
    if interrupted is None and not (sessions and all(s.stats.aborted for s in sessions)):
        show(out, "plan", forecast.lines(each_row=not config.quiet), **forecast.fields())
    written = _write_report(
        frame,
        outcomes,
        None,
        report_path,
        now,
        forecast.changes,
        out,
        lock=lambda: RunLock(lock_path(report_path), now()),
    )
    summary = Summary.of(outcomes, stats, () if accounts else config.rates, written)
    _show_summary(out, summary, ignored)
    return exit_code(outcomes, stats.aborted is not None)


def _forecast(
    sessions: Sequence[Session],
    aborted: str | None,
    outcomes: dict[int, Outcome],
    config: RunConfig,
) -> Forecast:
    """What the sessions' plans say a run would do; each row's outcome, as the run would leave
    it (but ``dry_run`` for a row it would send), goes to ``outcomes``. A session that stopped
    (``aborted``: the whole plan; else its own account's key rejected, or a wait too long) has
    no plan: its rows are ``not_attempted``, with the reason, and the other accounts' rows are
    planned as a run would send them."""
    operation, wire = for_config(config)
    send: list[Row] = []
    changes: dict[int, Mapping[str, Change]] = {}
    irreversible: dict[int, Sequence[str]] = {}
    durations: list[Duration] = []
    missing = 0
    for session in sessions:
        planned = session.plan
        stopped = aborted or session.stats.aborted
        if stopped is not None or planned is None:
            unread = Outcome(Status.NOT_ATTEMPTED, error=stopped or "not read")
            outcomes.update({row.number: unread for row in session.rows})
            continue
        outcomes.update(planned.unchanged)
        outcomes.update(planned.refused)
        outcomes.update({row.number: _DRY_RUN for row in planned.send})
        changes.update({row.number: planned.changes[row.number] for row in planned.send})
        irreversible.update(planned.irreversible)
        send += planned.send
        missing += len(planned.missing)
        # a run reads first unless it needs nothing read (--no-skip-unchanged --no-backup)
        reads = session.stats.reads if config.skip_unchanged or not config.no_backup else 0
        needed = Requests.of(planned.send, reads, operation, wire, config.verify)
        durations.append(Duration(needed, tuple(session.config.rates), session.account))
    counted = Counter(outcome.status for outcome in outcomes.values())
    return Forecast(
        send=sorted(send, key=lambda row: row.number),
        changes=changes,
        irreversible=irreversible,
        unchanged=counted[Status.UNCHANGED],
        invalid=counted[Status.INVALID],
        missing=missing,
        refused=counted[Status.FAILED] - missing,
        durations=durations,
    )


def _api_key(config: RunConfig, environ: Mapping[str, str]) -> str:
    api_key = environ.get(API_KEY_ENV, "")
    remember(api_key)  # whatever a server echoes back, the key is redacted from every output
    if not (api_key or config.dry_run or config.simulate or config.accounts):
        raise UsageError(
            f"{API_KEY_ENV} is not set: export your SmartLead API key in it "
            "(or use --dry-run, or --simulate to try the embedded simulator)"
        )
    return api_key


def _execute(
    config: RunConfig,
    identity: RunIdentity,
    source: InputFile,
    ids: Ids | None,
    numbers: Sequence[int] | None,
    api_key: str,
    out: TextIO,
    now: Now,
    accounts: Accounts | None = None,
) -> ExitCode:
    """A real run of ``source``, streamed a batch at a time (``bulkrunner.sending.batches``)."""
    assert config.report is not None
    report_path = config.report
    check_column(config.input, list(source.columns), accounts)
    operation, wire = for_config(config)
    journal_file = journal_path(report_path)
    ids = _campaigns(source, ids)
    run = RunRows(source, config.vocabulary, operation, wire, repeated_among([ids]), accounts)
    if numbers is None:  # the file is read again, a batch at a time: it must not change
        run.stamp = stamp(source.path)
    survey = run.surveyed()
    if accounts is not None:
        accounts = accounts.with_keys(survey.accounts)
        run.accounts = accounts
    _warn_invalid(config.input, survey.shown, survey.invalid)
    started = now()
    tally = _Tally()
    with (
        Interrupts() as interrupts,
        RunLock(lock_path(report_path), started),
        ExitStack() as held,
        closing(run),
    ):
        _lock_accounts(held, config, api_key, accounts, survey.accounts, started)
        successes = _earlier_successes(config, identity, journal_file)
        if successes is not None:  # the rows it applied are matched to this file's
            run.successes = successes
            survey = run.surveyed()
            log.info(
                "resuming: %s already succeeded and will not be sent again",
                count(survey.done, "row"),
            )
        try:
            journal = Journal.open(
                journal_file, input_path=config.input, started=started, identity=identity
            )
        except OSError as exc:
            raise UsageError(
                f"{journal_file}: cannot write the journal ({exc.strerror or exc}); "
                "nothing was sent"
            ) from None
        stats, account_stats = _send(
            config, run, survey, CampaignSet(ids), api_key, journal, interrupts, accounts
        )
        run.unreached = stats.aborted or INTERRUPTED
        # From here on a signal is only noted: see ``interrupts``.
        if run.stamp is not None and stamp(source.path) != run.stamp:
            log.warning(
                "%s changed during the run: the report's input columns are as the file is now",
                source.path,
            )
        by_account: dict[str, Counter[Status]] = {}

        def results(offset: int, chunk: pd.DataFrame) -> Results:
            if not offset:  # the report is written again (to the fallback path): count again
                tally.reset()
                by_account.clear()
            outcomes, changes = run.results(offset, chunk)
            tally.counts.update(outcome.status for outcome in outcomes.values())
            if accounts is not None:
                cells = _account_cells(chunk, None)
                for index, outcome in outcomes.items():
                    by_account.setdefault(cells[index], Counter())[outcome.status] += 1
            return outcomes, changes

        written = _report(
            source,
            numbers,
            results,
            report_path,
            now,
            out=out,
            rows=_REPORT_ROWS,
            examples=lambda: _typed(source),
        )
        finished = stats.aborted is None
        if finished:
            remove(journal_file)
        # Several accounts have several limits: no one ceiling to compare the rate with.
        summary = Summary.counted(tally.counts, stats, () if accounts else config.rates, written)
        per_account = (
            summary_lines(accounts.accounts, by_account, account_stats)
            if accounts is not None
            else []
        )
        # the reason a run stopped may quote a server: show() redacts
        _show_summary(out, summary, source.ignored, per_account)
        emit("run_end", **_figures(summary))
        if not finished:
            command = resume_command(config, report_path)
            show(
                out,
                "resume_hint",
                [f"to resume: {command}  (the journal {journal_file} records what is done)"],
                command=command,
                journal=str(journal_file),
            )
    if interrupts.received:
        log.warning(
            "interrupted while the report was being written: it was finished first%s",
            "" if not finished else "; the run had already ended, with nothing left to send",
        )
    return counted_exit_code(tally.counts, not finished)


def _earlier_successes(
    config: RunConfig, identity: RunIdentity, journal_file: Path
) -> dict[str, Success] | None:
    """With --resume, the rows the unfinished run's journal records as succeeded, by row key
    (``row_key``), or None when there is none to continue; raises UsageError when there is an
    unfinished run and neither --resume nor --fresh says what to do with it."""
    if not journal_file.exists():
        if config.resume:
            log.warning("%s: no journal to resume from; sending every row", journal_file)
        return None
    header = read_header(journal_file)
    other = identity.differs(header)
    if other is not None and not (config.fresh and identity.same_input(header)):
        # Another input's: never adopted, discarded or overwritten. (--fresh may discard a run
        # of this same file made with other options.)
        raise UsageError(
            f"{journal_file}: the unfinished run with this report is not a run of this job "
            f"({other}); it is left as it is: choose another --report"
        )
    assert config.report is not None
    if config.fresh:
        remove(journal_file)
        return None
    if not config.resume:
        raise unfinished(config, config.report, "an earlier run with this report")
    if not identity.matches(header) and "input_sha256" in header:
        log.warning(
            "%s has changed since the interrupted run: rows whose content changed are sent again",
            config.input,
        )
    return read_successes(journal_file)


def _send(
    config: RunConfig,
    run: RunRows,
    survey: Survey,
    wanted: Collection[int],
    api_key: str,
    journal: Journal,
    interrupts: Interrupts,
    accounts: Accounts | None = None,
) -> tuple[RunStats, dict[str, RunStats]]:
    """Send the rows of ``run`` a batch at a time, journaling each finished row (and each
    invalid one); signals are held once this returns. With ``accounts``, each account's rows
    go with its own key and limits. The run's requests, and each account's."""
    import anyio

    from bulkrunner.sending.session import AccountSessions, Session

    sending: Session | AccountSessions | None = None
    broken: list[str] = []  # why the journal cannot be written, once it cannot

    def record(
        key: str,
        number: int,
        campaign_id: int | None,
        outcome: Outcome,
        changes: Changes | None = None,
    ) -> None:
        """A row that finished but is not in the journal would be lost to --resume: when the
        journal cannot be written (a full disk), send nothing more."""
        if broken:
            return
        try:
            journal.record(key, number, campaign_id, outcome, changes)
        except OSError as exc:
            broken.append(
                f"run aborted: cannot write the journal {journal.path} ({exc.strerror or exc})"
            )
            log.error("%s; sending nothing more", broken[0])
            if sending is not None:
                sending.stop(broken[0])

    with journal:
        run.record = record
        run.stop = lambda reason: sending.stop(reason) if sending is not None else None
        log.info(
            "sending %s (%d invalid, not sent) with %s within %s",
            count(survey.rows, "row"),
            survey.invalid,
            count(config.concurrency, "worker"),
            ", ".join(map(str, config.rates))
            if accounts is None
            else "the limits of each account: "
            + "; ".join(
                f"{name} {', '.join(map(str, account.rates))}"
                for name, account in accounts.accounts.items()
                if name in accounts.keys
            ),
        )

        def on_outcome(row: Row, outcome: Outcome, changes: Changes | None) -> None:
            # the key is made as each row finishes, not held for every row from the start
            key = row_key(row.campaign_id, row.payload)
            record(key, row.number, row.campaign_id, outcome, changes)

        if accounts is not None:
            sending = AccountSessions(
                config,
                accounts.accounts,
                accounts.keys,
                (),
                on_outcome=on_outcome,
                batches=run,
                on_batch=run.finished,
                totals=survey.accounts,
                wanted=wanted,
            )
        else:
            sending = Session(
                config,
                api_key,
                (),
                on_outcome=on_outcome,
                batches=run,
                on_batch=run.finished,
                total=survey.rows,
                wanted=wanted,
            )
        try:
            anyio.run(sending.run, backend="asyncio")  # aiohttp runs on asyncio only
        except KeyboardInterrupt:  # a signal before the loop could take it over, or after
            log.error("interrupted")
            sending.signals += 1
        interrupts.hold()
        if run.pending:  # the batch the run was cancelled in
            run.finished(sending.outcomes(), sending.changes())
        stats = sending.stats
        if sending.signals and stats.aborted is None:
            stats.aborted = "run interrupted"
        if broken and stats.aborted is None:
            stats.aborted = broken[0]
    return stats, sending.by_account if isinstance(sending, AccountSessions) else {}


def _validated(config: RunConfig, frame: pd.DataFrame, accounts: Accounts | None) -> Validation:
    """The rows of ``frame`` judged; with accounts, also whether each names one of them."""
    check_column(config.input, [str(c) for c in frame.columns], accounts)
    operation, wire = for_config(config)
    validation = validate(frame, config.vocabulary, operation=operation, wire=wire)
    if accounts is None:
        return validation
    return assign(validation, accounts.accounts, accounts.path)


def _lock_accounts(
    held: ExitStack,
    config: RunConfig,
    api_key: str,
    accounts: Accounts | None,
    used: Collection[str | None],
    started: datetime,
) -> None:
    """Hold the lock of every account this run sends with (``used``: the accounts its rows
    name; the one key of a run without an accounts file is an account too): two runs never
    share one account's limits unknowingly."""
    if config.simulate:  # each run has its own embedded simulator
        return
    if accounts is None:
        single = Account("", API_KEY_ENV, config.rates, config.base_url)
        lock_accounts(held, [single], {"": api_key}, started)
        return
    chosen = [account for name, account in accounts.accounts.items() if name in used]
    lock_accounts(held, chosen, accounts.keys, started)


def _account_cells(frame: pd.DataFrame, numbers: Sequence[int] | None) -> dict[int, str]:
    """Each row's ``account`` cell (stripped), by row number."""
    cells = frame[ACCOUNT].tolist() if ACCOUNT in frame.columns else []
    rows = numbers or range(1, len(cells) + 1)
    return {
        number: "" if pd.isna(cell) else str(cell).strip()
        for number, cell in zip(rows, cells, strict=False)
    }


def _write_report(
    frame: pd.DataFrame,
    outcomes: Mapping[int, Outcome],
    numbers: Sequence[int] | None,
    path: Path,
    now: Now,
    changes: Mapping[int, Mapping[str, Change]] | None = None,
    out: TextIO | None = None,
    lock: Callable[[], AbstractContextManager[object]] = nullcontext,
) -> Path | None:
    """The report of a run whose rows are all in ``frame`` (and ended as ``outcomes`` say, the
    fields they change in ``changes``, by row number): see ``_report``."""
    changed = changes or {}

    def results(offset: int, chunk: pd.DataFrame) -> Results:
        held = range(offset + 1, offset + len(chunk) + 1)  # the rows' numbers in ``frame``
        return (
            {n - offset: outcomes[n] for n in held if n in outcomes},
            {n - offset: changed[n] for n in held if n in changed},
        )

    columns = [str(c) for c in frame.columns]
    return _report(
        InputFile.of(path, frame),
        numbers,
        results,
        path,
        now,
        out=out,
        lock=lock,
        rows=_REPORT_ROWS,
        examples=lambda: cell_types([frame], columns),
    )


_REPORT_ROWS = 5_000  # rows of the report built at a time: ~2 MB at the peak (10,000: ~8)
Results = tuple[Mapping[int, Outcome], Mapping[int, Mapping[str, Change]]]
"""One chunk's outcomes and changes, by the row's number in the chunk (from 1)."""


def _report(
    source: InputFile,
    numbers: Sequence[int] | None,
    results: Callable[[int, pd.DataFrame], Results],
    path: Path,
    now: Now,
    *,
    out: TextIO | None = None,
    lock: Callable[[], AbstractContextManager[object]] = nullcontext,
    rows: int | None = None,
    examples: Callable[[], pd.DataFrame | None] = lambda: None,
    finished: Callable[[], None] = lambda: None,
) -> Path | None:
    """The one way every command writes its report, whatever kind of run it was: ``source`` is
    read a chunk (of ``rows``) at a time, ``results(offset, chunk)`` gives that chunk's outcomes
    and changes, and ``build_report`` of them is appended to the report, so that neither the
    input nor the report need stand whole in memory; ``finished()`` is called at the end of the
    first complete pass. Where the report went: ``path``, else the fallback path, else (with
    ``out``, when the disk is full) printed on ``out`` as a last resort, so that no row's
    outcome is lost. ``numbers`` are the rows' numbers in the original file (a retry's); the
    report is moved into place under ``lock()``."""
    done: list[bool] = []

    def parts() -> Iterator[pd.DataFrame]:
        offset = 0
        for chunk in source.chunks(rows):
            outcomes, changes = results(offset, chunk)
            held = range(offset + 1, offset + len(chunk) + 1)
            shown = numbers[offset : offset + len(chunk)] if numbers else held
            yield build_report(chunk, outcomes, shown, changes)
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
        fallback=lambda: _fallback_report(now),
        out=out,
        lock=lock,
        examples=examples,
    )


def _fallback_report(now: Now) -> Path:
    return Path.cwd() / f"bulkrunner-report-{now():%Y%m%dT%H%M%SZ}.csv"


def _with_ignored(lines: list[str], ignored: Ignored | None) -> list[str]:
    """The summary with, after its count of rows, what the input file's reading left out."""
    if ignored and (ignored.rows or ignored.columns):
        return [lines[0], f"ignored: {ignored}", *lines[1:]]
    return lines


def _show_summary(
    out: TextIO, summary: Summary, ignored: Ignored | None, per_account: Sequence[str] = ()
) -> None:
    """The summary's lines (with a line per account after the first, when a run has several);
    in json mode one ``summary`` object with the counts."""
    lines = summary.lines()
    lines[1:1] = per_account
    show(out, "summary", _with_ignored(lines, ignored), **_figures(summary))


def _figures(summary: Summary) -> dict[str, Any]:
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


def _warn_invalid(path: Path, shown: Sequence[tuple[int, str]], invalid: int) -> None:
    """Log the first invalid rows (``shown``: number and error) and how many more there are."""
    for number, error in shown[:_SHOWN_INVALID]:
        log.warning("%s row %d is invalid and will not be sent: %s", path, number, error)
    hidden = invalid - _SHOWN_INVALID
    if hidden > 0:
        log.warning("... and %s more invalid (see the report)", count(hidden, "row"))


# --- dry run and validate: the file a chunk at a time -----------------------------------------


def opened(config: RunConfig) -> tuple[InputFile, Ids | None]:
    """``open_input`` of the run's input, and its rows' campaign ids when its check (a CSV
    file's, which parses it whole) could read them on the way: then the file is parsed once
    more only, to judge its rows, instead of twice."""
    ids: list[npt.NDArray[Any]] = []
    source = open_input(
        config.input,
        watch=lambda cells: ids.append(campaign_ids(cells)),
        operation=for_config(config)[0],
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
    repeats = _repeats(source, ids)
    offset = 0
    for chunk in source.chunks():
        yield offset, chunk, _judge(chunk, offset, config, repeats, accounts)
        offset += len(chunk)


def _campaigns(source: InputFile, ids: Ids | None) -> Ids:
    """The campaign id of each row of ``source`` (``campaign_ids``): ``ids`` if read already,
    else from its campaign_id column alone."""
    if ids is not None:
        return ids
    columns = source.chunks(columns=[CAMPAIGN_ID])
    return _joined([campaign_ids(chunk[CAMPAIGN_ID]) for chunk in columns])


def _joined(ids: Sequence[Ids]) -> Ids:
    return np.concatenate(ids) if ids else np.zeros(0, np.int64)


def _repeats(source: InputFile, ids: Ids | None) -> Repeats:
    """The campaigns on several rows of ``source`` (its campaign ids: ``ids``, if read)."""
    return repeated_among([_campaigns(source, ids)])


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
        for index, cell in enumerate(_account_cells(chunk, None).values()):
            wrong = account_error(cell, accounts.accounts, accounts.path)
            if wrong and not errors[index]:  # a valid row no more: its fields do not count
                for name in judged.fields:
                    judged.fields[name] -= not is_blank(chunk[name].iloc[index])
            if wrong:
                errors[index] = f"{errors[index]}; {wrong}" if errors[index] else wrong
    return judged


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


_DRY_RUN = Outcome(Status.DRY_RUN)  # every valid row's outcome in a dry run: one value for all


def _dry_run(
    config: RunConfig,
    source: InputFile,
    numbers: Sequence[int] | None,
    out: TextIO,
    now: Now,
    ids: Ids | None = None,
) -> ExitCode:
    """Report every row as ``dry_run`` or ``invalid`` without sending or reading anything.

    The file is judged a chunk at a time as its report is written (``_report``), before the
    report's lock is taken, as a real run validates before it (so the log reads the same); only
    moving the report into place happens under the lock.
    """
    assert config.report is not None
    report_path = config.report
    accounts = Accounts.load(config, None)
    check_column(config.input, source.columns, accounts)
    repeats = _repeats(source, ids)
    tally = _Tally()

    def results(offset: int, chunk: pd.DataFrame) -> Results:
        if not offset:  # the report is written again (to the fallback path): count again
            tally.reset()
        judged = _judge(chunk, offset, config, repeats, accounts)
        errors = judged.errors
        invalid = [index for index, error in enumerate(errors) if error]
        tally.counts[Status.INVALID] += len(invalid)
        tally.counts[Status.DRY_RUN] += len(errors) - len(invalid)
        for index in invalid[: _SHOWN_INVALID - len(tally.shown)]:
            tally.shown.append((offset + index + 1, errors[index]))
        _preview(tally, chunk, judged, offset, config)
        outcomes = {
            index: Outcome(Status.INVALID, error=error) if error else _DRY_RUN
            for index, error in enumerate(errors, 1)
        }
        return outcomes, {}

    written = _report(
        source,
        numbers,
        results,
        report_path,
        now,
        out=out,
        lock=lambda: RunLock(lock_path(report_path), now()),
        examples=lambda: _typed(source),
        finished=lambda: _warn_invalid(config.input, tally.shown, tally.counts[Status.INVALID]),
    )
    if not config.quiet:
        _print_preview(tally, out, config)
    from bulkrunner.model import RunStats

    summary = Summary.counted(tally.counts, RunStats(), config.rates, written)
    _show_summary(out, summary, source.ignored)
    return ExitCode.ROWS_FAILED if tally.counts[Status.INVALID] else ExitCode.OK


def _typed(source: InputFile) -> pd.DataFrame | None:
    """What types the report's columns take (``cell_types``), for the rows of ``source``."""
    if source.path.suffix.lower() == ".csv":
        return None  # CSV cells are all text: each chunk is typed as the whole would be
    # Other inputs (a Parquet file, an earlier report's rows) may hold several types in a
    # column, which a Parquet report types as a whole: look at them all before writing any.
    return cell_types(source.chunks(), list(source.columns))


def _preview(
    tally: _Tally, chunk: pd.DataFrame, judged: RowJudgement, offset: int, config: RunConfig
) -> None:
    """Count the fields valid rows set (validation found the blanks), and keep the first few
    valid rows' bodies."""
    errors = judged.errors
    operation, wire = for_config(config)
    tally.fields.update(judged.fields)
    for index in [i for i, error in enumerate(errors) if not error][
        : _PREVIEWED - len(tally.examples)
    ]:
        one = chunk.iloc[[index]].reset_index(drop=True)
        (row,) = validate(one, config.vocabulary, operation=operation, wire=wire).rows
        tally.examples.append(replace(row, number=offset + index + 1))


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

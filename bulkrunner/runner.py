"""What ``bulkrunner run``, ``retry`` and ``validate`` do, from a RunConfig to an exit code.

load ─▶ validate ─▶ lock the report ─▶ skip rows the journal has as succeeded (--resume)
     ─▶ dry run, or send (journaling each finished row) ─▶ report ─▶ summary ─▶ exit code
"""

from __future__ import annotations

import asyncio
import enum
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import pandas as pd

from bulkrunner.config import API_KEY_ENV, RunConfig
from bulkrunner.engine import RunStats
from bulkrunner.errors import UsageError
from bulkrunner.journal import Journal, journal_path, read_successes, remove, row_key
from bulkrunner.loading import load_input
from bulkrunner.locking import RunLock, lock_path
from bulkrunner.outcomes import Outcome, Status
from bulkrunner.report import (
    RESULT_COLUMNS,
    Summary,
    build_report,
    check_report_path,
    default_report_path,
    read_report,
    write_report,
)
from bulkrunner.sending import Sending
from bulkrunner.validation import Row, Validation, validate

log = logging.getLogger("bulkrunner")

_SHOWN_INVALID = 20
_RETRIED = frozenset({Status.FAILED.value, Status.NOT_ATTEMPTED.value})
Now = Callable[[], datetime]


class ExitCode(enum.IntEnum):
    OK = 0  # every row succeeded (or every row is a dry run)
    ROWS_FAILED = 1  # the run finished, but some rows failed or were invalid
    USAGE = 2  # bad invocation or unreadable input: nothing was sent
    ABORTED = 3  # the run stopped early (key rejected, outage, interrupted)


def exit_code(outcomes: Mapping[int, Outcome], aborted: bool) -> ExitCode:
    if aborted:
        return ExitCode.ABORTED
    good = {Status.SUCCEEDED, Status.DRY_RUN}
    return ExitCode.OK if all(o.status in good for o in outcomes.values()) else ExitCode.ROWS_FAILED


def validate_job(config: RunConfig, out: TextIO) -> ExitCode:
    """Load and validate only; print every invalid row. Sends nothing."""
    validation = validate(load_input(config.input), config.vocabulary)
    for rejection in validation.rejections:
        print(f"{config.input} row {rejection.number}: {rejection.error}", file=out)
    print(
        f"{config.input}: {validation.total} rows, {len(validation.rows)} valid, "
        f"{len(validation.rejections)} invalid",
        file=out,
    )
    return ExitCode.ROWS_FAILED if validation.rejections else ExitCode.OK


def run_job(
    config: RunConfig,
    out: TextIO,
    environ: Mapping[str, str] = os.environ,
    now: Now = lambda: datetime.now(UTC),
) -> ExitCode:
    """Run one job end to end; raises UsageError before anything is sent."""
    api_key = _api_key(config, environ)
    frame = load_input(config.input)
    report = config.report or _default_report(config, now())
    return _execute(replace(config, report=report), frame, None, api_key, out, now)


def retry_job(
    config: RunConfig,
    out: TextIO,
    environ: Mapping[str, str] = os.environ,
    now: Now = lambda: datetime.now(UTC),
) -> ExitCode:
    """Re-run the failed and not-attempted rows of the report ``config.input``."""
    api_key = _api_key(config, environ)
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
    log.info("retrying %d rows of %s", len(frame), config.input)
    stamp = f"{now():%Y%m%dT%H%M%SZ}"
    report = config.report or Path("reports") / f"{config.input.stem}-retry-{stamp}.csv"
    return _execute(
        replace(config, report=report), frame.reset_index(drop=True), numbers, api_key, out, now
    )


def _api_key(config: RunConfig, environ: Mapping[str, str]) -> str:
    api_key = environ.get(API_KEY_ENV, "")
    if not (api_key or config.dry_run or config.simulate):
        raise UsageError(
            f"{API_KEY_ENV} is not set: export your SmartLead API key in it "
            "(or use --dry-run, or --simulate to try the embedded simulator)"
        )
    return api_key


def _default_report(config: RunConfig, started: datetime) -> Path:
    if not config.resume:
        return default_report_path(config.input, started)
    # --resume without --report: the newest unfinished run of this input.
    journals = sorted(
        Path("reports").glob(f"{config.input.stem}-*.journal"), key=lambda p: p.stat().st_mtime
    )
    if not journals:
        raise UsageError(
            f"nothing to resume: no unfinished run of {config.input.name} in reports/; "
            "give the interrupted run's --report"
        )
    return journals[-1].with_name(journals[-1].name.removesuffix(".journal"))


def _execute(
    config: RunConfig,
    frame: pd.DataFrame,
    numbers: Sequence[int] | None,
    api_key: str,
    out: TextIO,
    now: Now,
) -> ExitCode:
    assert config.report is not None
    report_path = config.report
    validation = validate(frame, config.vocabulary)
    check_report_path(report_path)
    _warn_invalid(config.input, validation)
    outcomes: dict[int, Outcome] = {
        r.number: Outcome(Status.INVALID, error=r.error) for r in validation.rejections
    }
    stats = RunStats()
    started = now()
    journal_file = journal_path(report_path)
    with RunLock(lock_path(report_path), started):
        if config.dry_run:
            outcomes.update({row.number: Outcome(Status.DRY_RUN) for row in validation.rows})
        else:
            done = _earlier_successes(config, journal_file, validation.rows)
            outcomes.update(done)
            stats = _send(
                config,
                [row for row in validation.rows if row.number not in done],
                validation,
                api_key,
                Journal.open(journal_file, input_path=config.input, started=started),
                outcomes,
            )
        written = _write_report(frame, outcomes, numbers, report_path, now)
        finished = stats.aborted is None
        if finished and not config.dry_run:
            remove(journal_file)
    for line in Summary.of(outcomes, stats, config.rates, written).lines():
        print(line, file=out)
    if not finished and not config.dry_run:
        print(
            f"to resume: run the same command with --resume --report {report_path}"
            f" (the journal {journal_file} records what is done)",
            file=out,
        )
    return exit_code(outcomes, not finished)


def _earlier_successes(
    config: RunConfig, journal_file: Path, rows: Sequence[Row]
) -> dict[int, Outcome]:
    if not journal_file.exists():
        if config.resume:
            log.warning("%s: no journal to resume from; sending every row", journal_file)
        return {}
    if config.fresh:
        remove(journal_file)
        return {}
    if not config.resume:
        raise UsageError(
            f"{journal_file}: an earlier run with this report did not finish; add --resume to "
            "continue it (rows it applied are not sent again), or --fresh to start over"
        )
    successes = read_successes(journal_file)
    done = {
        row.number: successes[key]
        for row in rows
        if (key := row_key(row.campaign_id, row.payload)) in successes
    }
    log.info("resuming: %d rows already succeeded and will not be sent again", len(done))
    return done


def _send(
    config: RunConfig,
    rows: Sequence[Row],
    validation: Validation,
    api_key: str,
    journal: Journal,
    outcomes: dict[int, Outcome],
) -> RunStats:
    keys = {row.number: row_key(row.campaign_id, row.payload) for row in rows}
    with journal:
        for rejection in validation.rejections:
            journal.record("", rejection.number, rejection.campaign_id, outcomes[rejection.number])
        log.info(
            "sending %d rows (%d invalid, not sent) with %d workers within %s",
            len(rows),
            len(validation.rejections),
            config.concurrency,
            ", ".join(map(str, config.rates)),
        )
        sending = Sending(
            config,
            api_key,
            rows,
            on_outcome=lambda row, outcome: journal.record(
                keys[row.number], row.number, row.campaign_id, outcome
            ),
        )
        try:
            asyncio.run(sending.run())
        except KeyboardInterrupt:  # a signal before the loop could take it over
            log.error("interrupted")
            sending.signals += 1
        outcomes.update(sending.outcomes())
        stats = sending.stats
        if sending.signals and stats.aborted is None:
            stats.aborted = "run interrupted"
    return stats


def _write_report(
    frame: pd.DataFrame,
    outcomes: Mapping[int, Outcome],
    numbers: Sequence[int] | None,
    path: Path,
    now: Now,
) -> Path:
    report = build_report(frame, outcomes, numbers)
    columns = [str(c) for c in frame.columns]
    try:
        write_report(report, path, columns)
        return path
    except OSError as exc:
        fallback = Path.cwd() / f"bulkrunner-report-{now():%Y%m%dT%H%M%SZ}.csv"
        log.error("cannot write the report to %s (%s); writing %s", path, exc, fallback)
        write_report(report, fallback, columns)
        return fallback


def _warn_invalid(path: Path, validation: Validation) -> None:
    for rejection in validation.rejections[:_SHOWN_INVALID]:
        log.warning(
            "%s row %d is invalid and will not be sent: %s", path, rejection.number, rejection.error
        )
    hidden = len(validation.rejections) - _SHOWN_INVALID
    if hidden > 0:
        log.warning("... and %d more invalid rows (see the report)", hidden)

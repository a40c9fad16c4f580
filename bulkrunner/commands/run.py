"""What ``bulkrunner run`` does, from a RunConfig to an exit code.

lock the input ─▶ choose the report (--resume: the unfinished run of this input) ─▶ check the
     file ─▶ lock the report ─▶ the journal's rows (--resume) ─▶ survey the file (count, name the
     invalid rows, match the rows the journal has as succeeded) ─▶ lock the accounts ─▶ send a
     batch at a time (journaling each finished row) ─▶ report ─▶ summary ─▶ exit code

Retry and rollback are such runs too, of an earlier report's rows and of a backup; ``plan`` is
one that stops once it has read the account's state and planned (``commands.plan``), and a dry
run one that reads nothing (``commands.dry_run``). Every run takes its time from one ``Clock``.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Mapping
from contextlib import ExitStack, closing
from dataclasses import replace
from pathlib import Path
from typing import TextIO

from bulkrunner.commands.drift import open_plan
from bulkrunner.commands.dry_run import dry_run, opened
from bulkrunner.commands.recording import current, recorded
from bulkrunner.commands.reporting import (
    exit_code,
    figures,
    show_failed,
    show_summary,
    typed,
    write_report,
)
from bulkrunner.commands.resumption import (
    choose_report,
    earlier_successes,
    input_lock,
    run_identity,
)
from bulkrunner.commands.streamed import Stream, api_key, send
from bulkrunner.config.environment import return_freed_memory
from bulkrunner.config.paths import DRY_RUN, default_report_path, journal_path, lock_path
from bulkrunner.config.run_config import RunConfig
from bulkrunner.errors import ExitCode, UsageError
from bulkrunner.model import REAL_CLOCK, Clock, Status, count
from bulkrunner.output.events import emit, show
from bulkrunner.output.hints import resume_command
from bulkrunner.output.summary import FailedRows, Summary
from bulkrunner.records.journal import Journal, RunIdentity, remove
from bulkrunner.records.locks import RunLock
from bulkrunner.sending.batches import stamp
from bulkrunner.sending.interrupts import Interrupts
from bulkrunner.sending.plan import Drift

log = logging.getLogger("bulkrunner")


@recorded("run")
def run_job(
    config: RunConfig,
    out: TextIO,
    environ: Mapping[str, str] = os.environ,
    clock: Clock = REAL_CLOCK,
    drift: Drift | None = None,
) -> ExitCode:
    """Run one job end to end (``--plan``: the rows of a saved plan; ``drift``: writing only
    over what it expects to find); raises UsageError before anything is sent."""
    if not config.dry_run:  # before the input is read: see return_freed_memory
        return_freed_memory()
    key = api_key(config, environ)
    started = clock.wall()
    planned = open_plan(config, environ, key) if config.plan is not None else None
    if planned is not None:
        config, drift = planned.config, planned.drift
    numbering = planned.numbering if planned is not None else None
    if config.dry_run:
        source, ids = (planned.source, None) if planned is not None else opened(config)
        report = config.report or default_report_path(config.input, started, DRY_RUN)
        return dry_run(replace(config, report=report), source, out, clock, ids, numbering=numbering)
    default = default_report_path(config.input, started)
    with input_lock(config, started):
        source, ids = (planned.source, None) if planned is not None else opened(config)
        identity = run_identity(config)
        config = choose_report(config, identity, default)
        stream = Stream.of(config, source, environ, key, clock, ids=ids, numbering=numbering)
        stream.drift = drift
        return execute(stream, identity, out)


def execute(stream: Stream, identity: RunIdentity, out: TextIO) -> ExitCode:
    """A real run of ``stream``'s rows, a batch at a time, journaled, then its report."""
    config, clock = stream.config, stream.clock
    assert config.report is not None
    report_path = config.report
    journal_file = journal_path(report_path)
    rows = stream.rows
    if stream.numbering.numbers is None:  # the file is read again, a batch at a time
        rows.stamp = stamp(stream.source.path)
    started = clock.wall()
    with (
        Interrupts() as interrupts,
        RunLock(lock_path(report_path), started),
        ExitStack() as held,
        closing(rows),
    ):
        recording = current()
        continued = None
        if journal_file.exists() and (config.resume or config.fresh):
            continued = recording.backfill(journal_file, report_path)
        else:
            recording.keep_earlier(report_path)
        recording.begin(report_path, of_run=continued, input_sha256=identity.sha256)
        successes = earlier_successes(config, identity, journal_file)
        rows.successes = successes or {}
        stream.survey_and_lock(held, started)
        if successes is not None:
            log.info(
                "resuming: %s already succeeded and will not be sent again",
                count(stream.survey.done, "row"),
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
        with journal:
            session = send(stream, interrupts, journal)
        stats = session.stats
        rows.unreached = stats.aborted or "run interrupted"
        # From here on a signal is only noted: see ``interrupts``.
        if rows.stamp is not None and stamp(stream.source.path) != rows.stamp:
            log.warning(
                "%s changed during the run: the report's input columns are as the file is now",
                stream.source.path,
            )
        counts: Counter[Status] = Counter()
        by_account: dict[str, Counter[Status]] = {}
        failed = FailedRows()
        written = write_report(
            stream.source,
            stream.numbering,
            stream.results(counts, by_account, failed),
            report_path,
            clock,
            out=out,
            rows=stream.report_rows,
            examples=lambda: stream.survey.types if stream.rows.types else typed(stream.source),
        )
        finished = stats.aborted is None
        if finished:
            remove(journal_file)
        summary = Summary.counted(counts, stats, stream.ceiling(), written)
        # the reason a run stopped, or a row's, may quote a server: show() redacts
        show_failed(out, failed, written)
        show_summary(out, summary, stream.source.ignored, stream.per_account(by_account, session))
        emit("run_end", **figures(summary))
        if not finished:
            _resume_hint(config, report_path, out)
    if interrupts.received:
        log.warning(
            "interrupted while the report was being written: it was finished first%s",
            "" if not finished else "; the run had already ended, with nothing left to send",
        )
    return exit_code(counts, not finished)


def _resume_hint(config: RunConfig, report: Path, out: TextIO) -> None:
    command = resume_command(config, report)
    journal_file = journal_path(report)
    show(
        out,
        "resume_hint",
        [f"to resume: {command}  (the journal {journal_file} records what is done)"],
        command=command,
        journal=str(journal_file),
    )

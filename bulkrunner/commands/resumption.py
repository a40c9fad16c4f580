"""Which run this is: the job it belongs to, the report it writes, whether it continues one.

A job is an input file, as it is (its content's SHA-256), sent with given options: a run of it
holds a lock on its input, so a second run of the job is refused whatever its report is called,
and records the job in its journal, so ``--resume`` (or a job's ``resume = "auto"``) continues
only an unfinished run of the same job, never another input's. A run that continues one finds,
among the rows it would not send, those the interrupted run applied (``applied_earlier``).
"""

from __future__ import annotations

import glob
import logging
from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from bulkrunner.config.folders import input_lock_path
from bulkrunner.config.paths import (
    JOURNAL_SUFFIX,
    REPORTS,
    backup_path,
    check_report_path,
    journal_path,
    journals,
    report_of_journal,
    template_glob,
)
from bulkrunner.config.run_config import RunConfig
from bulkrunner.errors import UsageError
from bulkrunner.output.hints import fresh_command, resume_command
from bulkrunner.records.journal import RunIdentity, Success, read_header, read_successes, remove
from bulkrunner.records.locks import RunLock

log = logging.getLogger("bulkrunner")


def run_identity(config: RunConfig) -> RunIdentity:
    """The job ``config`` runs: its input file (path and content) and the options that change
    what is sent. A journal records it; ``--resume`` looks for it."""
    options = {"vocabulary": config.vocabulary.value}
    if config.operation != "settings":  # a journal of settings runs predates the option
        options["operation"] = config.operation
    if config.operation == "schedule":
        options["schedule-shape"] = config.schedule_shape
    return RunIdentity.of(config.input, options)


def input_lock(config: RunConfig, started: datetime) -> AbstractContextManager[object]:
    """Held while a real run of ``config.input`` is choosing its report and sending: another
    run of the same input is refused (exit 4) whatever its report is called. A run on the
    embedded simulator (``--simulate``) touches no account: it takes none."""
    if config.simulate:
        return nullcontext()
    return RunLock(input_lock_path(config.input), started, subject=str(config.input))


def choose_report(config: RunConfig, identity: RunIdentity, default: Path) -> RunConfig:
    """``config`` with the report this run writes, and ``resume`` set if it continues one.

    A report named outright is used as it is (its journal, if any, is checked against this
    input later). Otherwise, with ``--resume``, the newest unfinished run of this very input
    and options is continued: found in ``reports/`` and its run folders (and, for a retry or
    rollback, the run folder it follows up) or, for a report named with ``{timestamp}``,
    among the names that template gives; a job's ``resume = "auto"``
    continues one of this file even if its content has changed since (as it would with its
    report named). ``--fresh`` starts that run over, in its report, so that no stale journal
    is left to resume later. A plain run of a file with such an unfinished run is refused, as
    a run with that run's report is: a second backup beside the first would leave the first
    run's changes out of the rollback of the second.
    """
    if config.report is not None and config.report_template is None:
        if config.resume and not journal_path(config.report).exists():
            done = config.report.exists()
            raise UsageError(
                f"nothing to resume: {config.report} has no journal: "
                + (
                    "its run finished (bulkrunner retry sends its failed rows again)"
                    if done
                    else "no run wrote it"
                )
            )
        auto = config.auto_resume and journal_path(config.report).exists()
        chosen = replace(config, resume=config.resume or auto)
        check_paths(chosen)
        return chosen
    template, near = config.report_template, default.parent
    same = _unfinished_run(identity, template, near)
    # of this file with these options, whatever its content was then
    earlier = same or _unfinished_run(identity, template, near, same_content=False)
    if config.fresh and earlier is not None:  # start it over: no journal of it is left behind
        log.info("starting the unfinished run of %s over: %s", config.input, earlier)
        chosen = replace(config, report=earlier)
    elif (config.resume and same is not None) or (config.auto_resume and earlier is not None):
        found = same or earlier
        log.info("resuming the unfinished run of %s: %s", config.input, found)
        chosen = replace(config, report=found, resume=True)
    elif config.resume:
        where = template or f"{REPORTS}/"
        hint = (
            f"; {earlier} is an unfinished run of an earlier version of this file: to resume "
            f"it anyway (rows whose content changed are sent again): "
            f"{resume_command(config, earlier)}"
            if earlier is not None
            else "; give the interrupted run's --report"
        )
        raise UsageError(
            f"nothing to resume: no unfinished run of {config.input} (as it is now, with "
            f"--vocabulary {config.vocabulary.value}) in {where}{hint}"
        )
    elif earlier is not None and not config.simulate:  # the demo touches no account
        raise unfinished(config, earlier, f"an earlier run of {config.input}")
    else:
        chosen = replace(config, report=config.report or default)
    check_paths(chosen)
    return chosen


def unfinished(config: RunConfig, report: Path, which: str) -> UsageError:
    """The refusal of a run while ``which`` run (with ``report``) is unfinished, naming the two
    commands to choose from."""
    return UsageError(
        f"{journal_path(report)}: {which} did not finish; add --resume to continue it (rows it "
        f"applied are not sent again): {resume_command(config, report)} ; or --fresh to start "
        f"over: {fresh_command(config, report)}"
    )


def _unfinished_run(
    identity: RunIdentity, template: str | None, near: Path, *, same_content: bool = True
) -> Path | None:
    """The report of the newest journal of ``identity``: among the names ``template`` gives,
    or else in ``reports/``, its run folders and the folder ``near`` (where a follow-up's
    report goes: the run folder it follows up). Journals of other inputs are not touched.
    ``same_content=False``: of this file with the same options, whatever its content was then."""
    if template is not None:
        found = [Path(name) for name in glob.glob(template_glob(template) + JOURNAL_SUFFIX)]
    else:
        found = journals(near)

    def of_this_job(header: Mapping[str, object]) -> bool:
        if same_content:
            return identity.matches(header)
        return "input_sha256" in header and identity.differs(header) is None

    ours = [path for path in found if of_this_job(read_header(path))]
    if not ours:
        return None
    newest = max(ours, key=lambda path: path.stat().st_mtime)
    return report_of_journal(newest)


def check_paths(config: RunConfig) -> None:
    """Refuse, before the account is read or anything sent, a report that could not be written
    (``check_report_path``) or that would overwrite the input (or its backup the input)."""
    assert config.report is not None
    check_report_path(config.report)
    source = config.input.resolve()
    if config.report.resolve() == source:
        raise UsageError(
            f"{config.report}: the report would overwrite the input file; choose another --report"
        )
    if backup_path(config.report).resolve() == source:
        raise UsageError(
            f"{config.report}: this report's backup would overwrite the input file "
            f"{config.input}; choose another --report"
        )


def check_preview_path(report: Path, kind: str) -> None:
    """Refuse a ``kind`` of preview (a plan, a dry run) whose report would replace a run's: a
    report with its journal (an unfinished run) or its backup beside it is the record of what
    a run did, which its resume, retry and rollback read. (A run's lock is the lock's to judge:
    a running run's refuses the preview, exit 4; a killed run's is taken over.)"""
    beside = [path for path in (journal_path(report), backup_path(report)) if path.exists()]
    if beside:
        raise UsageError(
            f"{report}: the report of a run ({beside[0].name} is beside it); a {kind} does not "
            f"replace it: give the {kind}'s report a name of its own with --report"
        )


def earlier_successes(
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

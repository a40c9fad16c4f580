"""A command's run in the history of the state store (``records.history``), and its old run
folders pruned (``--keep``).

    @recorded("run")
    def run_job(config, out, environ=os.environ, clock=REAL_CLOCK) -> ExitCode: ...

A decorated command is recorded as it starts (``History.start_run``: so a run killed at any
moment is listed, unfinished) and as it ends, whatever ends it (``finish_run``: its exit code,
its rows by status as its summary counts them, its report and backup). A command run by another
(a rollback's run of its backup, an offline plan's dry run) is the other's run. On the way the
command tells ``current()`` what it finds out: the report it chose and the run it continues
(``begin``), the accounts it sends with (``sending``), its summary (``summarised``), and each
row as it ends (``ChangeLog``: the changes of the rows that succeeded, recorded a batch at a
time). With ``--no-state`` nothing is recorded.

A store that cannot be opened stops the command before anything is done (``StoreError``, exit
2); one that fails once the command is under way is said in a warning, and the command goes
on: what it does is in its report, journal and backup all the same.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ParamSpec

from bulkrunner.config.accounts import Account
from bulkrunner.config.folders import account_id
from bulkrunner.config.paths import backup_path, is_backup, report_of_backup, set_aside_path
from bulkrunner.config.run_config import RunConfig
from bulkrunner.errors import BulkrunnerError, ExitCode, UsageError
from bulkrunner.model import Changes, Clock, Outcome, Row, Status, count
from bulkrunner.records.history import ChangeRecord, History, RunAccount, as_json
from bulkrunner.records.journal import APPLIED_EARLIER, RunIdentity, applied
from bulkrunner.records.pruning import prune
from bulkrunner.records.store import StateStore, StoreError, for_config

log = logging.getLogger("bulkrunner")

P = ParamSpec("P")
BATCH = 2_000  # changes recorded in one transaction at most (about 40 ms)
EVERY = 1.0  # seconds a change waits to be recorded at most: what a kill -9 may leave unrecorded

_CURRENT: ContextVar[Recording | None] = ContextVar("bulkrunner_recording", default=None)


def recorded(command: str) -> Callable[[Callable[P, ExitCode]], Callable[P, ExitCode]]:
    """Record each call of a command (a function of ``config`` and ``clock``, among its
    arguments, to an exit code) as a run of ``command`` (see the module's docstring)."""

    def decorate(job: Callable[P, ExitCode]) -> Callable[P, ExitCode]:
        signature = inspect.signature(job)

        @functools.wraps(job)
        def recorded_job(*args: P.args, **kwargs: P.kwargs) -> ExitCode:
            if _CURRENT.get() is not None:  # run by another command: the other's run
                return job(*args, **kwargs)
            given = signature.bind(*args, **kwargs)
            given.apply_defaults()
            config: RunConfig = given.arguments["config"]
            clock: Clock = given.arguments["clock"]
            with Recording.of(config, command, clock) as recording:
                token = _CURRENT.set(recording)
                try:
                    code = job(*args, **kwargs)
                except BaseException as exc:
                    recording.finish(_exit_code(exc))
                    raise
                finally:
                    _CURRENT.reset(token)
                recording.finish(code)
            if config.keep is not None and recording.report is not None:
                prune(recording.report.parent, config.keep)
            return code

        return recorded_job

    return decorate


def current() -> Recording:
    """The recording of the command under way (one that records nothing, if none is)."""
    return _CURRENT.get() or Recording(None, None, "")


@dataclass
class Recording:
    """A command's run as it is recorded (``history`` None: not recorded)."""

    history: History | None
    run: int | None
    command: str
    clock: Clock | None = None
    config: RunConfig | None = None
    report: Path | None = None
    counts: dict[str, int] = field(default_factory=dict)
    input_sha256: str | None = None
    continued: int | None = None  # the recorded run this one continues (--resume, --fresh)
    store: StateStore | None = None  # the store it is recorded in, while it runs

    @classmethod
    @contextmanager
    def of(cls, config: RunConfig, command: str, clock: Clock) -> Iterator[Recording]:
        """``command``'s run of ``config``, recorded as started; StoreError if the store
        cannot be used."""
        store = for_config(config)
        if store is None:
            yield cls(None, None, command, clock, config)
            return
        with store:
            history = History(store)
            name = f"{command} --dry-run" if config.dry_run else command
            given = config.input if str(config.input) not in ("", ".") else None
            if command == "rollback" and given is not None and not is_backup(given):
                given = backup_path(given)  # what a rollback of a report runs
            run = history.start_run(
                name,
                clock.wall().timestamp(),
                operation=config.operation,
                of_run=_followed(history, command, given),
                input_path=given.resolve() if given is not None else None,
                report_path=config.report.resolve() if config.report is not None else None,
            )
            log.debug("recorded as run %d in %s (bulkrunner runs show %d)", run, store.path, run)
            yield cls(history, run, command, clock, config, store=store)

    def shared(self, config: RunConfig, held: ExitStack) -> StateStore | None:
        """The store the accounts' request budgets are shared through (``records.budget``):
        the one this run is recorded in, or, for a command not recorded, one opened for
        ``config`` and held in ``held``; None with ``--no-state``. StoreError if it cannot be
        used."""
        if config.no_state:
            return None
        if self.store is not None:
            return self.store
        store = for_config(config)
        if store is not None:
            held.enter_context(store)
        return store

    def begin(
        self, report: Path, *, of_run: int | None = None, input_sha256: str | None = None
    ) -> None:
        """The run writes ``report``, continues run ``of_run`` (if it does), and its input's
        SHA-256 is ``input_sha256``."""
        self.report, self.input_sha256 = report, input_sha256 or self.input_sha256
        self.continued = of_run
        self._note(report_path=report.resolve(), of_run=of_run, input_sha256=input_sha256)

    def keep_earlier(self, report: Path) -> None:
        """Before a run that continues none writes ``report``: the report and the backup a
        finished run left there moved aside (``paths.set_aside_path``), and the runs recorded
        with them told where, so that ``rollback --run`` still undoes that run, not this one."""
        backup = backup_path(report)
        if not backup.exists():  # nothing to undo: the report is written over, as it always was
            return
        aside = set_aside_path(report, datetime.fromtimestamp(backup.stat().st_mtime, UTC))
        if report.exists():
            os.replace(report, aside)
        os.replace(backup, backup_path(aside))
        log.warning(
            "%s: the report and backup of the run before are kept as %s (and its backup): "
            "a rollback of it undoes that run",
            report,
            aside,
        )
        if self.history is not None and self.run is not None:
            try:
                self.history.moved(report.resolve(), aside.resolve(), but=self.run)
            except StoreError as exc:
                self._lost(exc)

    def sending(self, accounts: Mapping[str, Account], report: Path | None) -> None:
        """The run sends (or reads) with ``accounts``, and writes ``report``."""
        self.report = report or self.report
        used = [RunAccount(name, account_id(a.base_url, a.key)) for name, a in accounts.items()]
        self._note(accounts=used, report_path=report.resolve() if report else None)

    def summarised(
        self, counts: Mapping[Status, int] | Mapping[str, int], report: Path | None
    ) -> None:
        """The command's summary: its rows (or campaigns) by status, and where its report went."""
        self.counts = {str(status): n for status, n in counts.items()}
        self.report = report or self.report

    def change_log(self, accounts: Mapping[str, Account]) -> ChangeLog | None:
        """Where each row's changes go as it ends, if the run is recorded."""
        if self.history is None or self.run is None or self.clock is None:
            return None
        names = {name: account_id(a.base_url, a.key) for name, a in accounts.items()}
        return ChangeLog(self, names, self.clock)

    def backfill(self, journal: Path, report: Path) -> int | None:
        """Before a run continues the unfinished run of ``journal`` (its report ``report``):
        the changes that journal records and the history lacks (those its process had not yet
        recorded when it was killed) recorded as that run's. Which run that was (the latest
        with this report), if it was recorded."""
        history = self.history
        if history is None:
            return None
        try:
            earlier = [run for run in history.with_report(report.resolve()) if run.id != self.run]
            if not earlier:
                return None
            done = history.changed_in(run.id for run in earlier)
            last = earlier[0]
            names = {account.name: account.account for account in last.accounts}
            missing: list[ChangeRecord] = []
            for entry in applied(journal):
                account = names.get(entry.account or "")
                at = entry.finished_at.timestamp() if entry.finished_at else last.started_at
                for name, sides in entry.changes.items():
                    key = (entry.campaign_id, name, as_json(sides[1]) if len(sides) == 2 else "")
                    if account is not None and len(sides) == 2 and key not in done:
                        missing.append(
                            ChangeRecord(last.id, at, account, entry.campaign_id, name, *sides)
                        )
            for start in range(0, len(missing), BATCH):
                history.record_changes(missing[start : start + BATCH])
            if missing:
                log.info(
                    "recorded %s of run %d that its process left unrecorded",
                    count(len(missing), "change"),
                    last.id,
                )
            return last.id
        except StoreError as exc:
            self._lost(exc)
            return None

    def finish(self, code: int) -> None:
        """Record how the run ended: ``code``, its counts, its report and backup."""
        if self.history is None or self.run is None or self.clock is None:
            return
        backup = backup_path(self.report) if self.report is not None else None
        self._note(input_sha256=self.input_sha256 or _digest(self.config))
        try:
            self.history.finish_run(
                self.run,
                self.clock.wall().timestamp(),
                int(code),
                self.counts,
                report_path=self.report.resolve() if self.report is not None else None,
                backup_path=backup.resolve() if backup is not None and backup.exists() else None,
            )
        except StoreError as exc:
            self._lost(exc)

    def _note(self, **found: Any) -> None:
        if self.history is None or self.run is None:
            return
        try:
            self.history.note_run(self.run, **found)
        except StoreError as exc:
            self._lost(exc)

    def _lost(self, exc: StoreError) -> None:
        """The store failed under way: said once, and the run goes on unrecorded."""
        log.warning("the run history stops here: %s; the run goes on (its report is whole)", exc)
        self.history = None


class ChangeLog:
    """Records the changes of each row that succeeds, a batch at a time: ``row`` is the hook
    a run calls as each row ends (after its journal line); ``flush`` at each batch's end."""

    def __init__(self, recording: Recording, accounts: Mapping[str, str], clock: Clock) -> None:
        self._recording = recording
        self._accounts = accounts  # name in the run -> account_id
        self._clock = clock
        self._pending: list[ChangeRecord] = []
        self._since = 0.0  # when the oldest change pending was taken (monotonic)

    def row(self, row: Row, outcome: Outcome, changes: Changes | None) -> None:
        if outcome.status is not Status.SUCCEEDED or not changes:
            return
        run, clock = self._recording.run, self._clock
        if outcome is APPLIED_EARLIER and self._recording.continued is not None:
            run = self._recording.continued  # applied by the run it continues, unrecorded
        assert run is not None
        at = (outcome.finished_at or clock.wall()).timestamp()
        account = self._accounts.get(row.account or "")
        if account is None:
            return
        if not self._pending:
            self._since = clock.monotonic()
        campaign = row.campaign_id
        self._pending += [
            ChangeRecord(run, at, account, campaign, name, before, after)
            for name, before, after in changes.sides()
        ]
        if len(self._pending) >= BATCH or clock.monotonic() - self._since >= EVERY:
            self.flush()

    def flush(self) -> None:
        history, pending = self._recording.history, self._pending
        self._pending = []
        if history is None or not pending:
            return
        try:
            history.record_changes(pending)
        except StoreError as exc:
            self._recording._lost(exc)


def _followed(history: History, command: str, given: Path | None) -> int | None:
    """The recorded run a retry (of its report) or a rollback (of its backup) follows up."""
    if given is None or command not in ("retry", "rollback"):
        return None
    if command == "retry":
        found = history.with_report(given.resolve())
    else:  # (given: the backup)
        found = history.with_backup(given.resolve()) or history.with_report(
            report_of_backup(given).resolve()
        )
    return found[0].id if found else None


def _digest(config: RunConfig | None) -> str | None:
    """The SHA-256 of the command's input file, if it has one (an export has none)."""
    if config is None or str(config.input) in ("", "."):
        return None
    try:
        return RunIdentity.of(config.input, {}).sha256
    except UsageError:  # unreadable: the command said so
        return None


def _exit_code(exc: BaseException) -> ExitCode:
    if isinstance(exc, BulkrunnerError):
        return exc.exit_code
    return ExitCode.ABORTED  # interrupted, or a bug

"""The stages a batch of one account's rows goes through, in order, in one place:

    read current state ─▶ plan ─▶ record known outcomes ─▶ back up ─▶ send ─▶ verify
       (reads)          (plan)     (the journal)          (backups)  (engine) (verify)

``plan`` stops after the first two. Each stage is skipped when nothing needs it: no read when
neither skipping unchanged rows nor the backup needs the current state, no backup with
--no-backup, no read-back without --verify (but for rows the answer that accepted them said
nothing of). A stage that cannot be made (the key rejected, an outage, a wait past --max-wait,
the backup not written) stops the account's run: its rows not yet sent are ``not_attempted``.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import anyio

from bulkrunner.config.run_config import RunConfig
from bulkrunner.errors import KeyRejected, Unavailable, Unreachable, WaitTooLong
from bulkrunner.model import OUTCOME_UNKNOWN, Changes, Outcome, Row, RunStats, Status, count
from bulkrunner.operations.base import Operation, Wire
from bulkrunner.output.events import emit
from bulkrunner.output.planning import Requests
from bulkrunner.records.expected import UnreadableRecord
from bulkrunner.sending.backups import Backup, adopt_applied, back_up, settle
from bulkrunner.sending.connection import Connection
from bulkrunner.sending.engine import Engine, Judge, finished
from bulkrunner.sending.interrupts import INTERRUPTED
from bulkrunner.sending.lead_reads import read_leads
from bulkrunner.sending.plan import Drift, Expected, Plan, plan
from bulkrunner.sending.reads import Current, Listing, read_current
from bulkrunner.sending.retry import too_long
from bulkrunner.sending.verify import ReadBack, not_verified, unverified, verify

log = logging.getLogger("bulkrunner")

Record = Callable[[Row, Outcome, "Changes | None"], None]
"""Called as each row ends, with what it was planned to change (the journal keeps it)."""
DRY_RUN = Outcome(Status.DRY_RUN)  # a planned row that would be sent: one value for all


@dataclass
class Pipeline:
    """One account's batches through the stages; the batch at hand is ``rows``, and what the
    stages made of it ``outcomes()`` and ``changes()`` give, also after any end."""

    config: RunConfig
    connection: Connection
    operation: Operation
    wire: Wire
    record: Record | None = None
    backup: Backup | None = None  # the run's one backup (None: it writes none)
    rollback: str = ""  # the command that undoes the run
    judge: Judge | None = None
    planning: bool = False  # only read and plan (``bulkrunner plan``)
    total: int = 0  # the rows this account sends in all the batches
    sending: Callable[[], None] = lambda: None  # told as the first rows are about to be sent
    planned: Callable[[Pipeline], None] | None = None  # told of each batch planned (``plan``)
    drift: Drift | None = None  # writes only over what it expects (a rollback, a saved plan)
    listing: Listing = field(default_factory=Listing)
    rows: Sequence[Row] = ()
    plan: Plan | None = None
    engine: Engine | None = None
    read_back: dict[int, Outcome] = field(default_factory=dict)
    earlier: Counter[Status] = field(default_factory=Counter)  # the batches before, by status
    per_row: float = 1.0  # requests a row of the batch at hand becomes, on average
    verify_per_row: float = 1.0  # and the reads --verify makes of it
    _first: bool = True
    _reading: anyio.CancelScope | None = None  # the read at hand, dropped when the run stops
    _verified: bool = False  # the batch's rows were read back, as --verify asks

    @property
    def stats(self) -> RunStats:
        return self.connection.stats

    @property
    def whose(self) -> str:
        """What log lines start with: the account, when it has a name."""
        name = self.connection.name
        return f"account {name}: " if name is not None else ""

    def stop(self, reason: str) -> None:
        """Send nothing more, in this batch or any later one; read nothing more either."""
        if self.engine is not None:
            self.engine.stop(reason)
        elif self.stats.aborted is None:
            self.stats.aborted = reason
        if self._reading is not None:
            self._reading.cancel()

    async def run(self, rows: Sequence[Row]) -> None:
        """The stages, in order, for ``rows`` (``plan``: the first two)."""
        self.rows, self.plan, self.engine, self.read_back = rows, None, None, {}
        first, self._first, self._verified = self._first, False, False
        rows = [row for row in rows if row.applied is None]  # the others are read back alone
        current = await self._read(rows, first)
        if self.stats.aborted is not None:  # stopped (reading, or a batch before): not planned,
            return  # as a campaign not read is not one that changed: its rows not_attempted
        expected = await self._expected(rows) if current is not None else None
        planned = self.plan = self._plan(rows, current, expected)
        read = current is not None
        del current  # the campaigns as read: planned, not needed by the backup or sending
        if self.planning:
            if self.planned is not None:
                self.planned(self)
            return
        self._record_known(rows, planned)
        await self._back_up(planned, first, read)
        await self._send(planned, first)
        await self._verify()

    async def _read(self, rows: Sequence[Row], first: bool) -> Current | None:
        """Stage 1: the current state of the rows' campaigns, when anything needs it."""
        config, operation = self.config, self.operation
        if self.stats.aborted is not None or not rows:
            return None  # stopped between batches, or nothing to send: nothing is read
        needed = config.skip_unchanged or not config.no_backup or self.planning or self.drift
        if not (needed or operation.reads_leads):  # a lead's id is always read
            if first:  # a read would cost a request of the budget for nothing
                log.info(
                    "not reading the current settings: with --no-skip-unchanged and "
                    "--no-backup nothing needs them"
                )
            return None
        try:
            with anyio.CancelScope() as self._reading:
                if operation.reads_leads:
                    return await read_leads(self.connection, rows, operation)
                return await read_current(
                    self.connection,
                    {row.campaign_id for row in rows},
                    one_by_one=not config.no_backup,
                    operation=operation,
                    listing=self.listing,
                )
        except (KeyRejected, Unreachable) as rejected:
            log.error("%srun aborted: %s; nothing was sent", self.whose, rejected)
            self.stop(f"run aborted: {rejected}")
        except (Unavailable, WaitTooLong) as stopped:
            why = (
                too_long(stopped, config.max_wait) if isinstance(stopped, WaitTooLong) else stopped
            )
            reason = f"run aborted: reading the current settings, {why}"
            log.error("%s%s; nothing was sent", self.whose, reason)
            self.stop(reason)
        return None

    async def _expected(self, rows: Sequence[Row]) -> Expected | None:
        """What a run that writes only over what it expects (``drift``) expects of the rows'
        campaigns, read from its file; None, and the run stopped, when it cannot be read."""
        if self.drift is None or self.stats.aborted is not None:
            return None
        targets = {self.operation.target(row.campaign_id, row.payload) for row in rows}
        try:
            return await anyio.to_thread.run_sync(self.drift.expected, targets)
        except UnreadableRecord as exc:
            log.error("%srun aborted: %s; nothing was sent", self.whose, exc)
            self.stop(f"run aborted: {exc}")
            return None

    def _plan(
        self, rows: Sequence[Row], current: Current | None, expected: Expected | None
    ) -> Plan:
        """Stage 2: which rows to send, and what each would change."""
        config = self.config
        planned = plan(
            rows,
            current,
            skip=config.skip_unchanged,
            require_backup=not config.no_backup,
            operation=self.operation,
            allow_irreversible=config.allow_irreversible,
            drift=self.drift,
            expected=expected,
        )
        self._say_planned(rows, planned, current)
        sent = planned.send
        self.per_row = self.requests(sent).writes / len(sent) if sent else 1.0
        self.verify_per_row = self.operation.read_backs(sent) / len(sent) if sent else 1.0
        return planned

    def _say_planned(self, rows: Sequence[Row], planned: Plan, current: Current | None) -> None:
        """The rows already as wanted (or, continuing an interrupted run, applied by it), and
        those refused."""
        operation = self.operation
        earlier = 0
        if current is not None and not self.planning:
            earlier = adopt_applied(
                self.config, rows, planned, current.campaigns, operation, self.whose
            )
        if (already := len(planned.unchanged) - earlier) > 0:
            verb = "has" if already == 1 else "have"
            log.info("%s already %s every wanted value: not sent", count(already, "row"), verb)
        drifted = len(planned.drifted) if self.drift is not None else 0
        refused = len(planned.refused) - (0 if self.drift is None or self.drift.force else drifted)
        if refused:
            log.warning(
                "%s not sent: the campaign does not exist, could not be read, or its "
                "state refuses the change or would not let a rollback undo it (see the report)",
                count(refused, "row"),
            )
        if drifted and not self.planning:
            assert self.drift is not None
            self.drift.say(planned.drifted, self.whose)

    def _record_known(self, rows: Sequence[Row], planned: Plan) -> None:
        """Stage 3: the rows that end without being sent (unchanged, refused) are recorded."""
        numbered = {row.number: row for row in rows}
        for number, outcome in planned.known.items():
            finished(numbered[number], outcome, self.connection.name)
            if self.record is not None:
                self.record(numbered[number], outcome, planned.changes.get(number))

    async def _back_up(self, planned: Plan, first: bool, read: bool) -> None:
        """Stage 4: the values about to change, recorded before anything is sent."""
        config = self.config
        if not planned.send or self.stats.aborted is not None:
            return
        if self.total <= len(self.rows):  # the run is this one batch: say what a window costs
            requests = self.requests(planned.send, self.stats.reads)
            if note := requests.crossing(self.connection.limiter.effective_rates, config.guard):
                log.info("%s", note)
        if config.report is not None and config.no_backup:
            if first:
                log.warning("--no-backup: no backup is written; this run cannot be rolled back")
        elif self.backup is not None and read:
            name = self.connection.name
            stopped = await back_up(
                self.backup, planned, self.operation, name, first, self.rollback
            )
            if stopped is not None:
                self.stop(stopped)

    def _start(self, planned: Plan) -> None:
        later = max(0, self.total - len(self.rows))  # later batches' rows: all to send, so far
        emit(
            "run_start",
            rows=len(planned.send) + later,
            unchanged=len(planned.unchanged),
            limits=[str(rate) for rate in self.connection.limiter.rates],
            concurrency=self.config.concurrency,
            account=self.connection.name,
        )

    async def _send(self, planned: Plan, first: bool) -> None:
        """Stage 5: the rows to send, through the engine."""
        if first:
            self._start(planned)
        self.engine = Engine(
            self.connection,
            operation=self.operation,
            wire=self.wire,
            on_outcome=self._recorded,
            judge=self.judge,
        )
        if self.stats.aborted is None:
            self.sending()
            await self.engine.run(planned.send)

    def _recorded(self, row: Row, outcome: Outcome) -> None:
        if self.record is not None:
            planned = self.plan.changes.get(row.number) if self.plan is not None else None
            given = self.plan.given.get(row.number, row) if self.plan is not None else row
            self.record(given, outcome, planned)  # journaled as the input has it (--resume)

    async def _verify(self) -> None:
        """Stage 6: read back the rows applied (--verify: by the run it resumes too), and those
        the answer that accepted them said nothing of (also once the run was stopped by what an
        answer said: the key still reads); then the backup keeps what went in."""
        engine, operation = self.engine, self.operation
        assert engine is not None
        assert self.plan is not None
        unknown = engine.unattributed
        aborted = self.stats.aborted
        seen: dict[int, Mapping[str, Any]] = {}
        if aborted is None or aborted == engine.judged:
            verifying = self.config.verify and aborted is None
            done = engine.outcomes()
            done.update({row.number: was for row in self.rows if (was := row.applied)})
            chosen = [
                row
                for row in (*self.plan.send, *(row for row in self.rows if row.applied))
                if row.number in unknown
                or (verifying and done[row.number].status is Status.SUCCEEDED)
            ]
            if verifying:
                leads = operation.key is not None or operation.identity is not None
                noun = "lead" if leads else "campaign"
                log.info("verifying %s by reading them back", count(len(chosen), noun))
            found: dict[int, ReadBack] = {}
            with anyio.CancelScope() as self._reading:  # a stopped run reads nothing more
                found = await verify(self.connection, chosen, operation, seen) if chosen else {}
            self._verified = verifying and not self._reading.cancel_called
            for row in chosen:
                if row.number in found:
                    self._checked(row, done[row.number], found[row.number], row.number in unknown)
        self._unknown_left(unknown)
        if self.backup is not None:
            await settle(self.backup, self.plan.send, self.outcomes(), seen, operation)

    def _checked(self, row: Row, outcome: Outcome, found: ReadBack, unknown: bool) -> None:
        """A row read back: as ``found`` says (``unknown``: its answer did not say whether it
        was applied, and this says, with what the answer did tell: ``Engine.hints``)."""
        if unknown:
            hint = self.engine.hints.get(row.number) if self.engine is not None else None
            if found.matches is False and hint is not None:
                outcome = replace(outcome, status=hint.absent, error=hint.error)
            elif found.matches is False:
                error = (
                    "not applied: the answer did not say of this row, and it reads back "
                    f"otherwise: {found.reason}"
                )
                outcome = replace(outcome, status=Status.FAILED, error=error)
            elif found.matches is None:
                error = (
                    f"{OUTCOME_UNKNOWN}: the answer did not say of this row, and it could not be "
                    f"read back ({found.reason})"
                )
                outcome = replace(outcome, status=Status.FAILED, error=error)
            elif hint is not None:
                outcome = replace(outcome, status=hint.present, error=hint.note)
            self._settle(row, outcome)
            return
        if found.matches is False:
            self.read_back[row.number] = replace(
                outcome, status=Status.MISMATCH, error=found.reason
            )
        elif found.matches is None:
            self.read_back[row.number] = not_verified(outcome, found.reason)

    def _settle(self, row: Row, outcome: Outcome) -> None:
        """An unattributed row's outcome is known: it ends so."""
        assert self.engine is not None
        del self.engine.unattributed[row.number]
        self.read_back[row.number] = outcome
        finished(row, outcome, self.connection.name)
        self._recorded(row, outcome)

    def _unknown_left(self, unknown: Mapping[int, Outcome]) -> None:
        """Rows whose answer did not say, and that were not read back (the run stopped)."""
        numbered = {row.number: row for row in self.plan.send} if self.plan else {}
        for number in list(unknown):
            self._settle(numbered[number], self._unread(unknown[number]))

    def _unread(self, outcome: Outcome) -> Outcome:
        """The outcome of a row whose answer did not say, and that the run stopped before it
        was read back: not known to be applied."""
        error = (
            f"{OUTCOME_UNKNOWN}: the answer did not say of this row, and the run stopped before "
            f"it was read back ({self.stats.aborted or INTERRUPTED})"
        )
        return replace(outcome, status=Status.FAILED, error=error)

    def outcomes(self) -> dict[int, Outcome]:
        """Every row of the batch at hand: as its stages left it."""
        unsent = Outcome(Status.NOT_ATTEMPTED, error=self.stats.aborted or INTERRUPTED)
        result = {row.number: row.applied or unsent for row in self.rows}
        planned = self.plan
        if planned is not None and not (self.planning and self.stats.aborted):
            result.update(planned.known)
            if self.planning:
                result.update(dict.fromkeys((row.number for row in planned.send), DRY_RUN))
        if self.engine is not None:
            result.update(self.engine.outcomes())
            for number, outcome in self.engine.unattributed.items():  # cut short: not read back
                result[number] = self._unread(outcome)
        result.update(self.read_back)
        if self.config.verify and not self._verified and not self.planning:
            result.update(unverified(result, self.read_back, self.stats.aborted or INTERRUPTED))
        return result

    def changes(self) -> dict[int, Changes]:  # the planned changes of the rows at hand
        return dict(self.plan.changes) if self.plan is not None else {}

    def take(self) -> tuple[dict[int, Outcome], dict[int, Changes]]:
        """The outcomes and changes of the batch at hand, let go of."""
        done, changes = self.outcomes(), self.changes()
        self.earlier.update(outcome.status for outcome in done.values())
        self.rows, self.plan, self.read_back, self.engine = (), None, {}, None
        return done, changes

    def requests(self, rows: Sequence[Row], reads: int = 0) -> Requests:
        """The requests of sending ``rows`` after ``reads`` (an operation may send several per
        row, and --verify may read a campaign back more than once)."""
        return Requests.of(rows, reads, self.operation, self.wire, self.config.verify)

    def reads_later(self, rows: int) -> int:
        """The reads of ``rows`` rows of batches not yet read (``Listing.later``)."""
        return self.listing.later(rows, self.operation, self.wire.read_first, self.config.no_backup)

"""One run's sending on its own event loop: a connection per account, every batch through each
account's pipeline, the progress display, the signals.

    batches ──▶ each batch's rows by account ──▶ every account's Pipeline at once ──▶ on_batch

A run of one key is a run of one account (``config.accounts``): the same code path, the same
progress, summary and events. The accounts of a run send at the same time, each through its own
connection (its own limits), so N accounts take about the time of the slowest; a key rejected
stops only its own account's rows.

SIGINT and SIGTERM stop the run gracefully: no new rows are taken, requests in flight get a
grace period to finish, then they are cancelled. A second signal cancels at once. Either way the
pipelines still account for every row of the batch at hand afterwards (``outcomes``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import anyio

from bulkrunner.config.accounts import Account
from bulkrunner.config.paths import journal_path
from bulkrunner.config.run_config import RunConfig, for_config
from bulkrunner.limits.limiter import SlidingWindowLimiter
from bulkrunner.model import REAL_CLOCK, Changes, Clock, Outcome, Row, RunStats
from bulkrunner.operations.base import Operation, Wire
from bulkrunner.operations.lead_uploads import LeadCapacity
from bulkrunner.operations.refusals import EnumRefusals, ShapeRefusals
from bulkrunner.output.hints import other_option_command, vocabulary_command
from bulkrunner.records.journal import finish_times
from bulkrunner.records.store import StateStore
from bulkrunner.sending.backups import Backup, rollback_hint
from bulkrunner.sending.connection import connect
from bulkrunner.sending.interrupts import run_gracefully
from bulkrunner.sending.pipeline import Pipeline, Record
from bulkrunner.sending.plan import Drift
from bulkrunner.sending.reads import Listing
from bulkrunner.sending.watching import watch

log = logging.getLogger("bulkrunner")

BatchHook = Callable[[Mapping[int, Outcome], Mapping[int, Changes]], None]
"""Called as each batch ends, with its rows' outcomes and planned changes."""


@dataclass
class Session:
    """Sends ``batches`` with ``anyio.run(session.run)``; ``stats`` and ``outcomes()`` work
    after any end."""

    config: RunConfig
    accounts: Mapping[str, Account]  # the accounts the rows to send name ("": the run's one key)
    batches: Iterable[Sequence[Row]]
    clock: Clock = REAL_CLOCK
    operation: Operation | None = None  # what the rows are sent as (by default, ``config``'s)
    wire: Wire | None = None
    planning: bool = False  # only read the current state and plan (``bulkrunner plan``)
    planned: Callable[[Pipeline], None] | None = None  # told of each account's batch planned
    drift: Drift | None = None  # writes only over what it expects (a rollback, a saved plan)
    record: Record | None = None
    on_batch: BatchHook | None = None
    totals: Mapping[str, int] = field(default_factory=dict)  # rows to send, by account
    wanted: Collection[int] = ()  # every campaign of the run
    store: StateStore | None = None  # whose ledger the accounts' budgets are shared through
    signals: int = 0
    pipelines: dict[str, Pipeline] = field(default_factory=dict)
    aborted: str | None = None  # why the whole run stopped (a signal, the journal, the input)
    _group: anyio.abc.TaskGroup | None = None
    _watching: bool = False

    @property
    def stats(self) -> RunStats:
        """Every account's requests together; why the run stopped, if it did."""
        every = [(p.whose, p.stats) for p in self.pipelines.values()]
        firsts = [s.first_request for _, s in every if s.first_request is not None]
        lasts = [s.last_answer for _, s in every if s.last_answer is not None]
        stopped = [f"{whose}{s.aborted}" for whose, s in every if s.aborted]
        return RunStats(
            requests=sum(s.requests for _, s in every),
            reads=sum(s.reads for _, s in every),
            throttled=sum(s.throttled for _, s in every),
            retries=sum(s.retries for _, s in every),
            others=sum(s.others for _, s in every),
            first_request=min(firsts, default=None),
            last_answer=max(lasts, default=None),
            aborted=self.aborted or "; ".join(stopped) or None,
            limits=every[0][1].limits if len(every) == 1 else (),
        )

    @property
    def by_account(self) -> dict[str, RunStats]:
        return {name: pipeline.stats for name, pipeline in self.pipelines.items()}

    def outcomes(self) -> dict[int, Outcome]:
        """The outcomes of the batch at hand (a run cancelled in it)."""
        result: dict[int, Outcome] = {}
        for pipeline in self.pipelines.values():
            result.update(pipeline.outcomes())
        return result

    def changes(self) -> dict[int, Changes]:
        result: dict[int, Changes] = {}
        for pipeline in self.pipelines.values():
            result.update(pipeline.changes())
        return result

    def stop(self, reason: str) -> None:
        """Send nothing more, with any account."""
        self.aborted = self.aborted or reason
        for pipeline in self.pipelines.values():
            pipeline.stop(reason)

    def halt(self, reason: str) -> bool:
        if not self.pipelines:  # nothing sends yet: a signal cancels
            return False
        self.stop(reason)
        return True

    async def run(self) -> None:
        await run_gracefully(self, self._run, self.config.grace)

    async def _run(self) -> None:
        default, wire = for_config(self.config)
        operation, wire = self.operation or default, self.wire or wire
        async with contextlib.AsyncExitStack() as stack, anyio.create_task_group() as group:
            self._group = group  # where the progress display runs, from the first send
            backed_up = not self.planning and operation.backed_up
            backup = Backup.of(self.config) if backed_up else None
            for name, account in self.accounts.items():
                connection = await stack.enter_async_context(
                    connect(self.config, account, self.clock, self.wanted, store=self.store)
                )
                limiter = connection.limiter
                if limiter.shared is not None:  # it starts with every process's requests
                    waiting(limiter, name, self.clock, "earlier requests on this account")
                elif self.config.resume and self.config.report is not None and not self.planning:
                    journal = journal_path(self.config.report)
                    seed(limiter, journal, name, self.config.concurrency, self.clock)
                self.pipelines[name] = Pipeline(
                    self.config,
                    connection,
                    operation,
                    wire,
                    record=self.record,
                    backup=backup,
                    rollback=rollback_hint(self.config) if backup is not None else "",
                    judge=refusals(self.config),
                    planning=self.planning,
                    planned=self.planned,
                    drift=self.drift,
                    total=self.totals.get(name, 0),
                    sending=self._sending,
                    listing=Listing(self.wanted or None),
                )
                if self.aborted is not None:
                    self.pipelines[name].stop(self.aborted)
            for rows in self.batches:
                await self._batch(rows)
                done = all(p.stats.aborted for p in self.pipelines.values())
                if self.aborted is not None or (self.pipelines and done):
                    break
            group.cancel_scope.cancel()

    async def _batch(self, rows: Sequence[Row]) -> None:
        """One batch: each account's rows through its pipeline, all at once."""
        mine: dict[str, list[Row]] = {}
        for row in rows:
            mine.setdefault(row.account or "", []).append(row)
        # at once, before any wait: a cancelled batch is the one outcomes() gives
        for name, pipeline in self.pipelines.items():
            pipeline.rows = mine.get(name, [])
        async with anyio.create_task_group() as group:
            for pipeline in self.pipelines.values():
                if pipeline.rows:
                    group.start_soon(pipeline.run, pipeline.rows)
        outcomes: dict[int, Outcome] = {}
        changes: dict[int, Changes] = {}
        for pipeline in self.pipelines.values():
            done, changed = pipeline.take()
            outcomes.update(done)
            changes.update(changed)
        if self.on_batch is not None:
            self.on_batch(outcomes, changes)

    def _sending(self) -> None:
        """A pipeline is about to send its first rows: the progress display starts."""
        if not self._watching and self._group is not None:
            self._watching = True
            self._group.start_soon(watch, self.config, list(self.pipelines.values()), self.clock)


def refusals(config: RunConfig) -> EnumRefusals | ShapeRefusals | LeadCapacity | None:
    """Stops an account's run when the server keeps refusing the enum names (the wrong
    vocabulary) or, for schedules, every row from the first (the wrong body shape); a leads
    run, when the account's lead capacity is used up."""
    if config.operation == "leads":
        return LeadCapacity(read_first=config.skip_unchanged or not config.no_backup)
    report = config.report
    if report is None:
        return None
    if config.operation == "schedule":
        return ShapeRefusals(
            config.schedule_shape,
            lambda other: other_option_command(config, report, "--schedule-shape", other),
        )
    return EnumRefusals(
        config.vocabulary, lambda other: vocabulary_command(config, report, other.value)
    )


def seed(
    limiter: SlidingWindowLimiter, journal: Path, account: str, concurrency: int, clock: Clock
) -> None:
    """The interrupted run's last requests still count in the server's windows: ``account``'s
    own, as its journal has them, and a full set (``concurrency``) in flight when it stopped
    (without the state store, whose ledger holds every request of every process)."""
    if not journal.exists():
        return
    now = clock.wall()
    longest = max(rate.seconds for rate in limiter.rates)
    ages = [
        age
        for at in finish_times(
            journal, since=now - timedelta(seconds=longest), account=account or None
        )
        if 0 <= (age := (now - at).total_seconds()) < longest
    ]
    # Rows in flight when it stopped are not in the journal: count a full set of them, sent
    # as late as the journal was last written.
    silent = now.timestamp() - journal.stat().st_mtime
    limiter.seed(ages + [max(0.0, silent)] * concurrency)
    waiting(limiter, account, clock, "the previous run's requests")


def waiting(limiter: SlidingWindowLimiter, account: str, clock: Clock, what: str) -> None:
    """Say so when the limiter starts with requests (``what``), or a pause, that hold it back
    a while."""
    now = clock.monotonic()
    wait = limiter.wait_time(now)
    if wait >= 1:
        whose = f"account {account}: " if account else ""
        if limiter.paused_until - now >= wait:
            log.info("%swaiting %.0fs: a 429 paused this account", whose, wait)
        else:
            log.info("%swaiting %.0fs for %s to leave the rate window", whose, wait, what)

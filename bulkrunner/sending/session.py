"""One sending session on its own event loop: HTTP session, limiter, engine, signals.

SIGINT and SIGTERM stop the run gracefully: no new rows are taken, requests in flight get a
grace period to finish, then they are cancelled. A second signal cancels at once. Either way the
engine still accounts for every row afterwards.
"""

from __future__ import annotations

import contextlib
import logging
import random
import sys
import time
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from bulkrunner.config.accounts import Account
from bulkrunner.config.paths import backup_path, journal_path
from bulkrunner.config.run_config import RunConfig, for_config
from bulkrunner.errors import KeyRejected, Unavailable, Unreachable
from bulkrunner.limits.limiter import Clock, Sleep, SlidingWindowLimiter, WaitTooLong
from bulkrunner.limits.rates import crossing
from bulkrunner.model import Changes, Outcome, Row, RunStats, Status, count
from bulkrunner.operations import Operation
from bulkrunner.operations.refusals import EnumRefusals, ShapeRefusals
from bulkrunner.output.events import emit
from bulkrunner.output.hints import other_option_command, rollback_command, vocabulary_command
from bulkrunner.output.planning import Requests
from bulkrunner.output.progress import Bar, Display, LogLines, Snapshot, estimate
from bulkrunner.records.backup import (
    APPLIED_EARLIER,
    BackupError,
    applied_earlier,
    record_backup,
)
from bulkrunner.records.journal import finish_times
from bulkrunner.sending.engine import Engine
from bulkrunner.sending.interrupts import INTERRUPTED, run_gracefully
from bulkrunner.sending.preflight import Current, Listing, Plan, Reading, plan, read_current, verify
from bulkrunner.sending.retry import Outage
from bulkrunner.sending.transport import HttpSender, client_session

if TYPE_CHECKING:
    from bulkrunner.simulator import FaultPlan

log = logging.getLogger("bulkrunner")

DEMO_API_KEY = "demo-key-for-the-simulator"
DEMO_FAULT_SHARE = 0.07  # of rows whose first request the --simulate demo answers 429 or 503
DEMO_SEED = 2024


@dataclass
class SharedBackup:
    """One backup written by the sessions of several accounts of one run: the first to write
    starts it (or keeps the one of the run it continues); the others add to it."""

    started: bool = False
    lock: anyio.Lock = field(default_factory=anyio.Lock)


Batch = Sequence[Row]
RowHook = Callable[[Row, Outcome, Changes | None], None]
"""Called as each row finishes, with what it was planned to change (the journal keeps it)."""
BatchHook = Callable[[Mapping[int, Outcome], Mapping[int, Changes]], None]
"""Called as each batch of a streamed run ends, with its rows' outcomes and planned changes."""


@dataclass
class _Live:
    """What a session's batches are sent through, made once when it connects."""

    sender: HttpSender
    limiter: SlidingWindowLimiter
    rng: random.Random
    judge: EnumRefusals | ShapeRefusals | None
    listing: Listing  # the account's list of campaigns, read for the first batch
    first: bool = True  # no batch has been read yet
    watched: bool = False  # the progress display runs


@dataclass
class Session:
    """Sends ``rows`` with ``anyio.run(sending.run)``; ``outcomes`` works after any end.

    A long run is streamed: given ``batches``, the session takes its rows from them a batch at
    a time (``rows`` is then the batch at hand), and reads, plans, backs up, sends and verifies
    each batch before it takes the next, through one HTTP session and one limiter; as each ends,
    ``on_batch`` gets its outcomes and changes and the session lets go of them. A batch cut
    short (the run cancelled) is the one ``outcomes`` still gives."""

    config: RunConfig
    api_key: str
    rows: Sequence[Row]
    on_outcome: RowHook | None = None
    engine: Engine | None = None  # the engine of the batch at hand
    signals: int = 0
    plan: Plan | None = None  # what reading the current settings found
    checked: dict[int, str] = field(default_factory=dict)  # --verify: row -> difference
    backup: Path | None = None
    account: str | None = None  # one account of several (``bulkrunner.config.accounts``)
    shared_backup: SharedBackup | None = None  # the backup several accounts' sessions write
    watch: bool = True  # show progress (a run of several accounts shows none per account)
    planning: bool = False  # only read the current state and plan (``bulkrunner plan``)
    batches: Iterable[Batch] | None = None  # a streamed run's rows, a batch at a time
    on_batch: BatchHook | None = None
    total: int | None = None  # the rows a streamed run sends in all (None: ``rows``)
    wanted: Collection[int] | None = None  # every campaign of a streamed run (its batches')
    clock: Clock = time.monotonic  # of the limiter, the reads and the engine (a test's fake)
    sleep: Sleep = anyio.sleep
    _stats: RunStats = field(default_factory=RunStats)
    _live: _Live | None = None
    _earlier: tuple[int, int] = (0, 0)  # rows done and failed in the batches before
    _group: anyio.abc.TaskGroup | None = None

    @property
    def stats(self) -> RunStats:
        return self._stats

    def outcomes(self) -> dict[int, Outcome]:
        unsent = Outcome(Status.NOT_ATTEMPTED, error=INTERRUPTED)  # one for all: it is frozen
        result = dict.fromkeys((row.number for row in self.rows), unsent)
        if self.plan is not None:
            result.update(self.plan.unchanged)
            result.update(self.plan.refused)
        if self.engine is not None:
            result.update(self.engine.outcomes())
        for number, difference in self.checked.items():
            outcome = result[number]
            if difference.startswith("not verified"):
                error = f"{outcome.error}; {difference}" if outcome.error else difference
                result[number] = replace(outcome, error=error)
            elif difference:
                result[number] = replace(outcome, status=Status.MISMATCH, error=difference)
        return result

    def changes(self) -> dict[int, Changes]:
        """The planned changes of the rows at hand, by row number."""
        return dict(self.plan.changes) if self.plan is not None else {}

    async def run(self) -> None:
        await run_gracefully(self, self._run, self.config.grace)

    async def send(self) -> None:
        """``run`` without taking over the signals: for a caller that handles them (the
        sessions of several accounts run together, ``bulkrunner.sending.session``)."""
        await self._run()

    def halt(self, reason: str) -> bool:
        if self._live is None and self.engine is None:  # nothing sends yet: a signal cancels
            return False
        self.stop(reason)
        return True

    def stop(self, reason: str) -> None:
        """Send nothing more, in this batch or any later one."""
        if self.engine is not None:
            self.engine.stop(reason)
        elif self._stats.aborted is None:
            self._stats.aborted = reason

    async def _run(self) -> None:
        async with self.connected(), anyio.create_task_group() as group:
            self._group = group  # where the progress display runs, from the first send
            for rows in self.batches if self.batches is not None else [self.rows]:
                self.rows = rows  # at once: a cancelled batch is the one outcomes() gives
                await self.batch(rows)
                if self.planning:
                    break
                self.hand_over()
                if self._stats.aborted is not None:
                    break
            group.cancel_scope.cancel()

    @contextlib.asynccontextmanager
    async def _simulated(self) -> AsyncIterator[str]:
        """--simulate: the embedded simulator, with the run's campaigns listed (so that the
        backup has real values) and a few of them answering 429 or 503 first; its base URL."""
        from bulkrunner.simulator import Simulator, SimulatorConfig

        config = self.config
        campaigns = self.wanted if self.wanted is not None else {r.campaign_id for r in self.rows}
        simulated = SimulatorConfig(
            api_key=DEMO_API_KEY,
            vocabulary=config.vocabulary,
            rates=config.rates,
            campaigns=campaigns,
            faults=demo_faults(list(campaigns)),
        )
        async with Simulator(simulated) as simulator:
            log.info(
                "simulating SmartLead at %s (with injected 429 and 503 answers)", simulator.base_url
            )
            yield simulator.base_url

    def _finished(self, row: Row, outcome: Outcome) -> None:
        """``on_outcome`` of a row of the batch at hand, with its planned changes."""
        if self.on_outcome is not None:
            planned = self.plan.changes.get(row.number) if self.plan is not None else None
            self.on_outcome(row, outcome, planned)

    def hand_over(self) -> None:
        """A streamed run's batch is done: hand its outcomes to ``on_batch``, and let go."""
        if self.on_batch is not None:
            self.on_batch(*self.take())

    def take(self) -> tuple[dict[int, Outcome], dict[int, Changes]]:
        """The outcomes and changes of the batch at hand, let go of."""
        done, changes = self.outcomes(), self.changes()
        good = (Status.SUCCEEDED, Status.UNCHANGED)
        finished = sum(outcome.status in good for outcome in done.values())
        self._earlier = (self._earlier[0] + finished, self._earlier[1] + len(done) - finished)
        self.rows, self.plan, self.checked, self.engine = (), None, {}, None
        return done, changes

    @contextlib.asynccontextmanager
    async def connected(self) -> AsyncIterator[None]:
        """The HTTP session and limiter (and, with --simulate, the simulator) every batch is
        sent through."""
        config = self.config
        async with contextlib.AsyncExitStack() as stack:
            base_url, api_key = config.base_url, self.api_key
            if config.simulate:
                base_url, api_key = await stack.enter_async_context(self._simulated()), DEMO_API_KEY
            session = await stack.enter_async_context(client_session(config.concurrency))
            sender = HttpSender(session, base_url, api_key, config.timeout)
            limiter = SlidingWindowLimiter(
                config.rates, guard=config.guard, clock=self.clock, sleep=self.sleep
            )
            if config.resume and config.report is not None and not self.planning:
                self._seed(limiter, journal_path(config.report))
            self._live = _Live(
                sender, limiter, random.Random(), self._refusals(), Listing(self.wanted)
            )
            try:
                yield
            finally:
                self._live = None

    async def batch(self, rows: Sequence[Row]) -> None:
        """Read, plan, back up, send and verify ``rows``, through the connection."""
        assert self._live is not None, "batch() runs inside connected()"
        config, live = self.config, self._live
        sender, limiter = live.sender, live.limiter
        self.rows, self.checked = rows, {}
        operation, wire = for_config(config)
        self.engine = Engine(
            sender,
            limiter,
            operation=operation,
            wire=wire,
            concurrency=config.concurrency,
            max_attempts=config.max_attempts,
            outage_timeout=config.outage_timeout,
            max_wait=config.max_wait,
            on_outcome=self._finished if self.on_outcome is not None else None,
            judge=live.judge,
            rng=live.rng,
            stats=self._stats,
            clock=self.clock,
            sleep=self.sleep,
        )
        reading = Reading(
            limiter,
            config.max_attempts,
            live.rng,
            self.engine.sleep,
            max_wait=config.max_wait,
            stats=self._stats,
            clock=self.engine.clock,
            outage=Outage(config.outage_timeout, self.engine.clock()),
        )
        current: Current | None = None
        try:
            if self._stats.aborted is not None or not rows:
                pass  # stopped between batches, or nothing to send: nothing is read or sent
            elif config.skip_unchanged or not config.no_backup or self.planning:
                current = await read_current(
                    sender,
                    reading,
                    {row.campaign_id for row in rows},
                    one_by_one=not config.no_backup,
                    concurrency=config.concurrency,
                    operation=operation,
                    listing=live.listing,
                )
            elif live.first:  # a read would cost a request of the budget for nothing
                log.info(
                    "not reading the current settings: with --no-skip-unchanged and "
                    "--no-backup nothing needs them"
                )
        except (KeyRejected, Unreachable) as rejected:
            log.error("%srun aborted: %s; nothing was sent", self._whose, rejected)
            self.engine.stop(f"run aborted: {rejected}")
        except Unavailable as outage:
            reason = f"run aborted: reading the current settings, {outage}"
            log.error("%s%s; nothing was sent", self._whose, reason)
            self.engine.stop(reason)
        except WaitTooLong as wait:
            reason = (
                f"run aborted: reading the current settings, the server asked to wait "
                f"{wait.seconds:.0f}s ({wait.asked_by}), "
                f"more than --max-wait {config.max_wait:g}"
            )
            log.error("%s; nothing was sent", reason)
            self.engine.stop(reason)
        first, live.first = live.first, False
        self.plan = plan(
            rows,
            current,
            skip=config.skip_unchanged,
            require_backup=not config.no_backup,
            operation=operation,
            allow_irreversible=config.allow_irreversible,
        )
        read = current is not None
        earlier = self._applied_earlier(rows, current, operation) if current is not None else 0
        current = None  # the campaigns as read: planned, not needed by the backup or sending
        if len(self.plan.unchanged) > earlier:
            log.info(
                "%s already have every wanted value: not sent",
                count(len(self.plan.unchanged) - earlier, "row"),
            )
        if self.plan.refused:
            log.warning(
                "%s not sent: the campaign does not exist, could not be read, or its "
                "state refuses the change or would not let a rollback undo it (see the report)",
                count(len(self.plan.refused), "row"),
            )
        if self.planning:  # nothing is written: what would be is the plan
            return
        numbered = {row.number: row for row in rows}
        for number, outcome in (*self.plan.unchanged.items(), *self.plan.refused.items()):
            self._finished(numbered[number], outcome)
        del numbered
        whole = self.total is None or self.total <= len(rows)  # the run is this one batch
        if self.plan.send and self._stats.aborted is None:
            if whole:
                self._say_crossing(limiter, self._stats.reads, self.plan.send)
            if config.report is not None and config.no_backup:
                if first:
                    log.warning("--no-backup: no backup is written; this run cannot be rolled back")
            elif config.report is not None and read:
                await self._write_backup(config.report, self.plan)
        if first:
            later = 0 if self.total is None else max(0, self.total - len(rows))
            emit(
                "run_start",
                rows=len(self.plan.send) + later,  # later batches' rows: all to send, so far
                unchanged=len(self.plan.unchanged),
                limits=[str(rate) for rate in config.rates],
                concurrency=config.concurrency,
                **({"account": self.account} if self.account is not None else {}),
            )
        if self.watch and self._group is not None and not live.watched:
            live.watched = True
            self._group.start_soon(self._watch, limiter)
        await self.engine.run(self.plan.send)
        if config.verify and self._stats.aborted is None:
            done = self.engine.outcomes()
            applied = [r for r in self.plan.send if done[r.number].status is Status.SUCCEEDED]
            log.info("verifying %s by reading them back", count(len(applied), "campaign"))
            self.checked = await verify(
                sender,
                limiter,
                applied,
                config.concurrency,
                stats=self._stats,
                clock=self.engine.clock,
                operation=operation,
                max_wait=config.max_wait,
            )

    def _applied_earlier(self, rows: Sequence[Row], current: Current, operation: Operation) -> int:
        """A run that continues an interrupted one (``--resume``, ``--fresh``): the rows found
        as wanted that the interrupted run applied without journaling them (its backup holds
        values they change) are ``succeeded``, with what they changed, not ``unchanged``. How
        many there are."""
        config, planned = self.config, self.plan
        continues = (config.resume or config.fresh) and not config.no_backup
        if planned is None or config.report is None or not continues or self.planning:
            return 0
        backup = backup_path(config.report)
        try:
            found = applied_earlier(backup, rows, planned.unchanged, current.campaigns, operation)
        except BackupError as exc:
            log.warning("%s%s: the rows found as wanted are reported unchanged", self._whose, exc)
            return 0
        for number, changes in found.items():
            planned.unchanged[number] = APPLIED_EARLIER  # not sent: as the unchanged
            planned.changes[number] = changes
        if found:
            log.info(
                "%s%s found as the interrupted run left them, though it did not record them: "
                "succeeded, not sent again",
                self._whose,
                count(len(found), "row"),
            )
        return len(found)

    def _reads_later(self, rows: int) -> int:
        """The reads a streamed run will make for ``rows`` rows of batches not yet read: one for
        each campaign the account's list did not show (none when it reads no current state)."""
        config, live = self.config, self._live
        if not rows or config.no_backup or live is None or live.listing.campaigns is None:
            return 0
        return max(0, rows - len(live.listing.campaigns))

    def _say_crossing(self, limiter: SlidingWindowLimiter, reads: int, rows: Sequence[Row]) -> None:
        """Before sending ``rows``: when the run's requests (the ``reads`` before it, the
        requests of each row and any --verify reads) exceed a window by a handful, say what
        that costs."""
        planned = self._requests(rows, reads)
        writes = planned.writes + planned.verify
        note = crossing(reads, writes, limiter.effective_rates, self.config.guard)
        if note is not None:
            log.info("%s", note)

    def _refusals(self) -> EnumRefusals | ShapeRefusals | None:
        """Stops the run when the server keeps refusing the enum names (the wrong vocabulary)
        or, for schedules, every row from the first (the wrong body shape)."""
        config, report = self.config, self.config.report
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

    def _seed(self, limiter: SlidingWindowLimiter, journal: Path) -> None:
        """The interrupted run's last requests still count in the server's windows."""
        if not journal.exists():
            return
        now = datetime.now(UTC)
        longest = max(rate.seconds for rate in self.config.rates)
        ages = [
            age
            for at in finish_times(journal, since=now - timedelta(seconds=longest))
            if 0 <= (age := (now - at).total_seconds()) < longest
        ]
        # Rows in flight when it stopped are not in the journal: count a full set of them,
        # sent as late as the journal was last written.
        silent = now.timestamp() - journal.stat().st_mtime
        limiter.seed(ages + [max(0.0, silent)] * self.config.concurrency)
        wait = limiter.wait_time(self.clock())
        if wait >= 1:
            log.info("waiting %.0fs for the previous run's requests to leave the rate window", wait)

    async def _write_backup(self, report: Path, planned: Plan) -> None:
        """Record the values about to change before any is sent; if that fails, send nothing."""
        assert self.engine is not None
        by_campaign = {
            row.campaign_id: planned.changes[row.number]
            for row in planned.send
            if planned.changes[row.number]
        }
        path = backup_path(report)
        # A resumed run continues the one that wrote this backup (as does a --fresh start of
        # it: what the interrupted run changed is still changed): keep what it recorded.
        keep = self.config.resume or self.config.fresh or self.backup is not None
        shared = self.shared_backup
        operation, _ = for_config(self.config)
        try:
            if shared is None:
                recorded = record_backup(path, by_campaign, keep=keep, operation=operation)
            else:
                # Several accounts write one backup: one at a time, in a worker thread, so that
                # the other accounts' requests are not held up meanwhile (a request granted
                # while the loop is blocked reaches the server late, crowding the next window).
                async with shared.lock:
                    write = partial(
                        record_backup,
                        path,
                        by_campaign,
                        keep=keep or shared.started,
                        account=self.account,
                        operation=operation,
                    )
                    recorded = await anyio.to_thread.run_sync(write)
                    shared.started = True
        except BackupError as exc:
            log.error("%srun aborted: %s; nothing was sent", self._whose, exc)
            self.engine.stop(f"run aborted: {exc}")
            return
        first, self.backup = self.backup is None, path
        if recorded.unknown:
            log.warning(
                "%s about to change: no readable current value to back up",
                count(recorded.unknown, "campaign"),
            )
        self._say_unrestorable(recorded.unrestorable)
        if not first:  # a later batch of a streamed run
            log.info(
                "%sbackup: %s about to change (%d in all): %s",
                self._whose,
                count(recorded.campaigns, "more campaign"),
                recorded.total,
                path,
            )
            return
        earlier = recorded.total - recorded.campaigns
        log.info(
            "%sbackup of the %s about to change%s: %s (undo with: %s)",
            self._whose,
            count(recorded.campaigns, "campaign"),
            f" (and {earlier} more from the run it continues)"
            if earlier > 0 and shared is None  # of several accounts, the others' are counted
            else "",
            path,
            rollback_command(self.config, path),
        )

    def _say_unrestorable(self, reasons: Mapping[int, str]) -> None:
        """Which campaigns about to change a rollback could not put back, and why: one line per
        reason, naming its campaigns."""
        by_reason: dict[str, list[int]] = {}
        for campaign, reason in sorted(reasons.items()):
            by_reason.setdefault(reason, []).append(campaign)
        for reason, campaigns in by_reason.items():
            log.warning(
                "%sa rollback could not restore %s (%s): %s",
                self._whose,
                count(len(campaigns), "campaign"),
                ", ".join(str(campaign) for campaign in campaigns),
                reason,
            )

    @property
    def _whose(self) -> str:
        """What log lines start with: the account, when a run has several."""
        return f"account {self.account}: " if self.account is not None else ""

    def _requests(self, rows: Sequence[Row], reads: int = 0) -> Requests:
        """The requests of sending ``rows`` after ``reads`` (an operation may send several per
        row, and --verify may read a campaign back more than once)."""
        operation, wire = for_config(self.config)
        return Requests.of(rows, reads, operation, wire, self.config.verify)

    async def _watch(self, limiter: SlidingWindowLimiter) -> None:
        """Show progress until cancelled: a bar on a terminal, log lines otherwise. A streamed
        run's figures are of the whole run: its earlier batches' rows and the one at hand."""
        bar = sys.stderr.isatty() and not self.config.quiet and self.config.log_format == "text"
        display: Display = Bar() if bar else LogLines(self.config.progress_interval)
        verify = self.config.verify
        operation, _ = for_config(self.config)

        def snapshot(now: float) -> Snapshot:
            engine, planned = self.engine, self.plan
            succeeded, failed, waiting = engine.progress() if engine else (0, 0, 0)
            waits = engine.retry_waits(now) if engine else []
            unchanged = len(planned.unchanged) if planned else 0
            failed += len(planned.refused) if planned else 0
            sent = planned.send if planned else []
            per_row = self._requests(sent).writes / len(sent) if sent else 1.0
            batch_left = len(self.rows) - succeeded - unchanged - failed
            done, failed = self._earlier[0] + succeeded + unchanged, self._earlier[1] + failed
            total = len(self.rows) if self.total is None else self.total
            later = max(0, total - done - failed - batch_left)  # rows of batches not yet read
            return Snapshot(
                total,
                done,
                failed,
                waiting,
                limiter.sending_rate(now, span=10.0),
                ", ".join(map(str, limiter.effective_rates)),
                estimate(
                    limiter,
                    requests_left(
                        total - done - failed,
                        succeeded,
                        verify,
                        per_row=per_row,
                        verify_reads=operation.reads_per_campaign,
                    )
                    + self._reads_later(later),
                    waits,
                    now,
                ),
                min(waits, default=None),
            )

        with display:
            try:
                while True:
                    now = time.monotonic()
                    display.show(snapshot(now), now)
                    await anyio.sleep(0.25 if bar else 1.0)
            finally:
                if bar:  # the last frame shows how the run ended
                    display.show(snapshot(time.monotonic()), time.monotonic())


def requests_left(
    rows: int,
    succeeded: int,
    verify: bool,
    *,
    per_row: float = 1.0,
    verify_reads: int = 1,
) -> int:
    """The requests still to come (retries not counted): ``per_row`` requests for each of
    ``rows`` not yet done (the average a row of the operation becomes) and, with ``verify``,
    ``verify_reads`` reads back for each of them and of the ``succeeded`` rows. The reads before
    sending are already in the limiter's windows: its ETA counts them as they are."""
    writes = round(rows * per_row)
    return writes + (rows + succeeded) * verify_reads if verify else writes


def demo_faults(campaign_ids: Sequence[int], seed: int = DEMO_SEED) -> FaultPlan:
    """The --simulate demo's faults: a few campaigns' first request answered 429 or 503."""
    from bulkrunner.simulator import FaultPlan

    count = min(len(campaign_ids), max(2, round(DEMO_FAULT_SHARE * len(campaign_ids))))
    chosen = random.Random(seed).sample(sorted(campaign_ids), count)
    scripted = {cid: ["429" if i % 2 == 0 else "503"] for i, cid in enumerate(chosen)}
    return FaultPlan(scripted=scripted, retry_after=2.0)


@dataclass
class AccountSessions:
    """The sessions of several accounts run at once: ``anyio.run(sending.run)``, then
    ``outcomes()``, ``stats`` and ``by_account`` after any end, as for one ``Session``."""

    config: RunConfig
    accounts: Mapping[str, Account]
    keys: Mapping[str, str] = field(repr=False)
    rows: Sequence[Row]
    on_outcome: RowHook | None = None
    signals: int = 0
    sessions: dict[str, Session] = field(default_factory=dict)
    planning: bool = False  # each account's session only reads and plans (``bulkrunner plan``)
    batches: Iterable[Batch] | None = None  # a streamed run's rows (then ``rows`` are unused)
    on_batch: BatchHook | None = None
    totals: Mapping[str, int] = field(default_factory=dict)  # a streamed run's rows by account
    wanted: Collection[int] | None = None  # a streamed run's campaigns

    def __post_init__(self) -> None:
        shared = SharedBackup()
        for name, account in self.accounts.items():
            mine = [row for row in self.rows if row.account == name]
            if not mine and name not in self.totals:
                continue
            config = replace(self.config, base_url=account.base_url, rates=account.rates)
            self.sessions[name] = Session(
                config,
                self.keys[name],
                mine,
                on_outcome=self.on_outcome,
                account=name,
                shared_backup=shared,
                watch=False,
                planning=self.planning,
                wanted=self.wanted,
                total=self.totals.get(name),
            )

    @property
    def by_account(self) -> dict[str, RunStats]:
        return {name: session.stats for name, session in self.sessions.items()}

    @property
    def stats(self) -> RunStats:
        """Every account's requests together; the run aborted if any account did."""
        every = list(self.by_account.items())
        firsts = [s.first_request for _, s in every if s.first_request is not None]
        lasts = [s.last_answer for _, s in every if s.last_answer is not None]
        aborted = [f"account {name}: {s.aborted}" for name, s in every if s.aborted]
        return RunStats(
            requests=sum(s.requests for _, s in every),
            throttled=sum(s.throttled for _, s in every),
            retries=sum(s.retries for _, s in every),
            first_request=min(firsts) if firsts else None,
            last_answer=max(lasts) if lasts else None,
            aborted="; ".join(aborted) or None,
        )

    def outcomes(self) -> dict[int, Outcome]:
        result: dict[int, Outcome] = {}
        for session in self.sessions.values():
            result.update(session.outcomes())
        return result

    def changes(self) -> dict[int, Changes]:
        result: dict[int, Changes] = {}
        for session in self.sessions.values():
            result.update(session.changes())
        return result

    def stop(self, reason: str) -> None:
        for session in self.sessions.values():
            session.stop(reason)

    def halt(self, reason: str) -> bool:
        self.stop(reason)
        return True

    async def run(self) -> None:
        await run_gracefully(self, self._send_all, self.config.grace)

    async def _send_all(self) -> None:
        if self.batches is None:
            async with anyio.create_task_group() as group:
                for session in self.sessions.values():
                    group.start_soon(session.send)
            return
        async with contextlib.AsyncExitStack() as stack:
            for session in self.sessions.values():
                await stack.enter_async_context(session.connected())
            for rows in self.batches:
                # at once, before any wait: a cancelled batch is the one outcomes() gives
                for name, session in self.sessions.items():
                    session.rows = [row for row in rows if row.account == name]
                async with anyio.create_task_group() as group:
                    for session in self.sessions.values():
                        if session.rows:
                            group.start_soon(session.batch, session.rows)
                outcomes: dict[int, Outcome] = {}
                changes: dict[int, Changes] = {}
                for session in self.sessions.values():
                    done, changed = session.take()
                    outcomes.update(done)
                    changes.update(changed)
                if self.on_batch is not None:
                    self.on_batch(outcomes, changes)
                if all(session.stats.aborted for session in self.sessions.values()):
                    return

"""The send stage: the rows to send, in request groups, fanned out to workers with a retry queue.

    groups ──▶ ready stream ──▶ N workers ──(the account's Connection)──▶ sender
                    ▲                 │ retryable answer
                    └── retry waiters ◀┘  (sleep Retry-After / backoff, then re-enter the stream)

An operation says how rows go together into requests (``Operation.groups``: by default one row
a group) and what an answer says of each row of its group (``Operation.attribute``). A group
waiting for its retry holds no worker. Every request takes a slot of the account's pool and
limiter, and every answer is judged by the run's retry policy (``connection``): a 429 pauses the
whole key, an abort verdict (401/403) stops all sending, rows not yet sent are ``not_attempted``.
Workers and retry waiters live in task groups owned by :meth:`Engine.run`, so cancelling the
run (Ctrl-C) cancels all of them; :meth:`Engine.outcomes` then still accounts for every row.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from bulkrunner.config.redaction import redact_url
from bulkrunner.errors import Unavailable, WaitTooLong
from bulkrunner.limits.limiter import Grant
from bulkrunner.model import OUTCOME_UNKNOWN, Answer, Outcome, Row, RunStats, Status, count
from bulkrunner.operations.base import Operation, Request, Said, Wire
from bulkrunner.operations.settings import SETTINGS
from bulkrunner.output.events import emit
from bulkrunner.sending.connection import Connection
from bulkrunner.sending.retry import Next, Verdict, too_long

log = logging.getLogger("bulkrunner")


# answers after which a write may have been applied all the same: for an operation whose undo
# is a ledger of what it added, an outcome unknown
MAY_HAVE_APPLIED = frozenset({500, 502, 503, 504})
_SAID_FAILED = "in the campaign, though the answer said the upload failed"
_OK = range(200, 300)


@dataclass(slots=True)
class _Group:
    """Rows that go in the same requests, on their way."""

    rows: Sequence[Row]
    # what they become on the wire, sent in order: made when first sent and let go when they
    # finish, so that a long run does not hold every row's bodies at once
    requests: list[Request] | None = None
    step: int = 0  # the request being sent; the earlier ones succeeded
    attempts: int = 0
    http_status: int | None = None
    error: str = ""
    started: float | None = None
    in_flight: bool = False
    unknown: str = ""  # "attempt 2 timed out after 30s": an attempt that may have been applied


OutcomeHook = Callable[[Row, Outcome], None]
Judge = Callable[[Row, Answer, str], str | None]  # a group's final answer -> why to stop, if so


@dataclass(slots=True)
class Engine:
    """Sends every row once; one instance runs once."""

    connection: Connection
    operation: Operation = SETTINGS  # what rows become on the wire
    wire: Wire = field(default_factory=Wire)
    on_outcome: OutcomeHook | None = None  # called as each row finishes (the journal)
    judge: Judge | None = None  # sees each group's final answer: stops the run when it says why
    # rows the answer that accepted them said nothing of: a read-back says (``pipeline``), and
    # how each then ends, as far as the answer tells (``hints``)
    unattributed: dict[int, Outcome] = field(default_factory=dict)
    hints: dict[int, Said] = field(default_factory=dict)
    judged: str | None = None  # why the judge stopped the run (the key still reads), if it did
    _groups: list[_Group] = field(default_factory=list)
    _finished: dict[int, Outcome] = field(default_factory=dict)
    _send: MemoryObjectSendStream[_Group] | None = None
    _waiting: int = 0  # rows waiting for their next attempt
    _acquiring: set[anyio.CancelScope] = field(default_factory=set)  # workers awaiting a slot
    _due: dict[int, float] = field(default_factory=dict)  # group (by id) -> when its retry is due
    _succeeded: int = 0
    _rows: int = 0

    @property
    def stats(self) -> RunStats:
        return self.connection.stats

    async def run(self, rows: Sequence[Row]) -> dict[int, Outcome]:
        """Send every row; returns each row's outcome keyed by row number."""
        if self._groups:
            raise RuntimeError("an Engine runs once; create a new one")
        self._groups = [_Group(group) for group in self.operation.groups(rows, self.wire)]
        self._rows = sum(len(group.rows) for group in self._groups)
        self.connection.phase()
        send, receive = anyio.create_memory_object_stream[_Group](math.inf)
        self._send = send
        for group in self._groups:
            send.send_nowait(group)
        with send, receive:
            if not self._groups or self.stats.aborted is not None:  # nothing to do, or stopped
                send.close()
            async with anyio.create_task_group() as waiters:
                async with anyio.create_task_group() as workers:
                    for _ in range(min(self.connection.concurrency, len(self._groups))):
                        workers.start_soon(self._work, receive.clone(), waiters)
                waiters.cancel_scope.cancel()  # only a stop leaves rows waiting here
        self.stats.limits = self.connection.limiter.effective_rates
        return self.outcomes()

    def progress(self) -> tuple[int, int, int]:
        """Rows (succeeded, failed, waiting to retry) so far."""
        return self._succeeded, len(self._finished) - self._succeeded, self._waiting

    def retry_waits(self, now: float) -> list[float]:
        """Seconds from ``now`` (the run's clock) until each group waiting for a retry is due."""
        return [max(0.0, due - now) for due in self._due.values()]

    def stop(self, reason: str) -> None:
        """Send nothing more: requests in flight finish, rows not yet sent stay unsent."""
        if self.stats.aborted is None:
            self.stats.aborted = reason
            if self._send is not None:
                self._send.close()
            for waiting in list(self._acquiring):
                waiting.cancel()

    def outcomes(self) -> dict[int, Outcome]:
        """Every row's outcome so far, also while running or after being cancelled."""
        result: dict[int, Outcome] = {}
        reason = self.stats.aborted or "run stopped"
        unsent = Outcome(Status.NOT_ATTEMPTED, error=self.stats.aborted or "")  # one for all
        for group in self._groups:
            if group.in_flight:
                cut = f"{reason} while a request was in flight: {OUTCOME_UNKNOWN}"
                left = self._outcome(group, Status.FAILED, cut)
            elif group.attempts == 0:
                left = unsent
            else:
                tried = f"{reason} before the next attempt; last error: {group.error}"
                left = self._outcome(group, Status.FAILED, tried)
            for row in group.rows:
                result[row.number] = self._finished.get(row.number, left)
        return result

    async def _work(
        self, receive: MemoryObjectReceiveStream[_Group], waiters: anyio.abc.TaskGroup
    ) -> None:
        async with receive:
            async for group in receive:
                if self.stats.aborted is None:
                    await self._attempt(group, waiters)

    def _request(self, group: _Group) -> Request:
        if group.requests is None:
            group.requests = self.operation.group_requests(group.rows, self.wire)
        request = group.requests[group.step]
        if log.isEnabledFor(logging.DEBUG):  # -v: the body as JSON, as the dry run's preview
            log.debug("%s: %s", _numbers(group.rows), self.operation.describe([request]))
        return request

    def _sending(self, group: _Group, grant: Grant) -> bool:
        """The group's request is about to go (False: the run stopped meanwhile, it does not).
        Counted as sent before its answer: a request abandoned in flight (cancelled when the
        grace period ran out) may have been applied, so it stays in flight for outcomes()."""
        if self.stats.aborted is not None:
            return False
        if group.started is None:
            group.started = grant.at
        group.in_flight = True
        group.attempts += 1
        return True

    async def _attempt(self, group: _Group, waiters: anyio.abc.TaskGroup) -> None:
        sender = self.connection.sender
        waiting = anyio.CancelScope()  # stop() ends the wait for a slot
        self._acquiring.add(waiting)
        try:
            tried = await self.connection.attempt(
                lambda: sender.send(self._request(group)),
                read=False,
                waiting=waiting,
                sending=lambda grant: self._sending(group, grant),
            )
        except WaitTooLong as wait:  # the limit the server announced: a slot too far off
            self._abort(self._stopped(wait))
            return
        finally:
            self._acquiring.discard(waiting)
        if tried is None:
            return
        grant, answer = tried
        group.in_flight = False
        group.http_status = answer.status
        step = self.connection.after(answer, grant, group.attempts, self.operation.final)
        decision = step.decision
        group.error = decision.message
        if answer.outcome_unknown or (
            answer.status in MAY_HAVE_APPLIED and self.operation.ledger == "leads"
        ):  # (a gateway's 504 says nothing of the lead its server may have added before)
            group.unknown = f"attempt {group.attempts} {decision.message}"
        log.debug("%s: %s %s", _numbers(group.rows), answer.status, decision.verdict.value)
        self._follow(group, answer, step, waiters)

    def _follow(
        self, group: _Group, answer: Answer, step: Next, waiters: anyio.abc.TaskGroup
    ) -> None:
        """Act on what follows the group's answer (``step``)."""
        decision = step.decision
        match decision.verdict:
            case Verdict.SUCCEEDED if group.requests and group.step + 1 < len(group.requests):
                group.step += 1  # the group's next request, through the limiter like any other
                if self._send is not None:
                    with contextlib.suppress(anyio.ClosedResourceError):
                        self._send.send_nowait(group)
            case Verdict.SUCCEEDED:
                self._accepted(group, answer)
            case Verdict.FAILED if done := self.operation.done(group.rows, answer):
                if group.unknown:  # as asked: the try whose answer was lost did it
                    self._finish(group, Status.SUCCEEDED, done)
                else:  # the first try's answer says so: only a read back tells
                    for row in group.rows:
                        self._unattributed(group, row, Said(None, decision.message, note=done))
                    self._let_go(group)
            case Verdict.FAILED if self.operation.ledger == "leads" and answer.status in _OK:
                # a 2xx whose body says it failed ({"ok": false}) may have added them all the
                # same: read back, so that those it added are in the backup
                present = Status.SUCCEEDED if self.wire.read_first else Status.UNCHANGED
                told = Said(None, decision.message, present=present, note=_SAID_FAILED)
                for row in group.rows:
                    self._unattributed(group, row, told)
                self._let_go(group)
            case Verdict.FAILED:
                self._finish(group, Status.FAILED, decision.message)
            case Verdict.ABORT:
                self._finish(group, Status.FAILED, decision.message)
                self._abort(f"run aborted: {decision.message}")
            case Verdict.RETRY if step.stop is None:
                self._retry(group, step, waiters)
        judged = decision.verdict in (Verdict.SUCCEEDED, Verdict.FAILED) and not group.unknown
        if self.judge is not None and judged:  # (after a lost answer, this one is not the first)
            reason = self.judge(group.rows[0], answer, decision.message)
            if reason is not None:
                self.judged = self.judged or reason
                self._abort(reason)
        if step.stop is not None:
            self._abort(self._stopped(step.stop))

    def _stopped(self, stop: WaitTooLong | Unavailable) -> str:
        if isinstance(stop, WaitTooLong):
            return f"run aborted: {too_long(stop, self.connection.policy.max_wait)}"
        return f"run aborted: {stop}"

    def _retry(self, group: _Group, step: Next, waiters: anyio.abc.TaskGroup) -> None:
        if step.delay is None:
            tries = count(group.attempts, "attempt")
            self._finish(group, Status.FAILED, f"gave up after {tries}; last error: {group.error}")
            return
        delay = step.delay
        self.stats.retries += 1
        first, rows = group.rows[0], len(group.rows)
        log.info(
            "%s (campaign %d): retry in %.1fs (attempt %d of %d) after %s",
            f"row {first.number}" if rows == 1 else f"{rows} rows from row {first.number}",
            first.campaign_id,
            delay,
            group.attempts + 1,
            self.connection.policy.max_attempts,
            group.error,
        )
        for row in group.rows:
            emit(
                "retry_scheduled",
                row=row.number,
                campaign_id=row.campaign_id,
                attempt=group.attempts + 1,
                delay=round(delay, 3),
                error=group.error,
            )
        self._waiting += len(group.rows)
        self._due[id(group)] = self.connection.clock.monotonic() + delay
        waiters.start_soon(self._requeue, group, delay)

    async def _requeue(self, group: _Group, delay: float) -> None:
        try:
            await self.connection.clock.sleep(delay)
        finally:
            self._waiting -= len(group.rows)
            self._due.pop(id(group), None)
        if self._send is not None and self.stats.aborted is None:
            self._send.send_nowait(group)

    def _accepted(self, group: _Group, answer: Answer) -> None:
        """The group's last request was accepted: each row ends as the answer says of it."""
        said = self.operation.attribute(group.rows, answer, self.wire)
        if all(said.get(row.number) == "" for row in group.rows):
            self._finish(group, Status.SUCCEEDED, "")
            return
        for row in group.rows:
            told = said.get(row.number)
            if group.unknown and self.wire.read_first:  # an earlier attempt may have applied it
                told = _maybe_applied(told)
            if isinstance(told, str):  # a server's message may quote the request line
                failed = Status.FAILED if told else Status.SUCCEEDED
                self._finish_row(group, row, failed, redact_url(told))
            elif told is not None and told.status is not None:
                self._finish_row(group, row, told.status, told.error)
            else:  # the answer does not say: read back (``pipeline``)
                self._unattributed(group, row, told)
        self._let_go(group)

    def _unattributed(self, group: _Group, row: Row, told: Said | None) -> None:
        """A row its answer does not say the end of: read back (``pipeline``), then as ``told``
        says of a row found so or not."""
        if told is not None:
            self.hints[row.number] = told
        self.unattributed[row.number] = self._outcome(group, Status.SUCCEEDED, "")
        self._finished[row.number] = self.unattributed[row.number]
        self._succeeded += 1

    def _finish(self, group: _Group, status: Status, error: str) -> None:
        for row in group.rows:
            self._finish_row(group, row, status, error)
        self._let_go(group)

    def _finish_row(self, group: _Group, row: Row, status: Status, error: str) -> None:
        if group.unknown:
            note = f"{group.unknown}: {OUTCOME_UNKNOWN}, retried"
            error = f"{error}; {note}" if error else note
        if status is Status.FAILED:
            log.warning("row %d (campaign %d) failed: %s", row.number, row.campaign_id, error)
        outcome = self._outcome(group, status, error)
        finished(row, outcome, self.connection.name)
        self._finished[row.number] = outcome
        self._succeeded += status in (Status.SUCCEEDED, Status.UNCHANGED)
        if self.on_outcome is not None:
            self.on_outcome(row, outcome)

    def _let_go(self, group: _Group) -> None:
        group.requests = None
        if len(self._finished) == self._rows and self._send is not None:
            self._send.close()

    def _outcome(self, group: _Group, status: Status, error: str) -> Outcome:
        duration = None
        if group.started is not None:  # to its answer, or to when it was cut off in flight
            duration = round((self.connection.clock.monotonic() - group.started) * 1000)
        wall = self.connection.clock.wall()
        return Outcome(status, group.http_status, group.attempts, error, duration, wall)

    def _abort(self, reason: str) -> None:
        if self.stats.aborted is None:
            log.error("%s; no further requests will be sent", reason)
        self.stop(reason)


def _maybe_applied(told: str | Said | None) -> str | Said | None:
    """What an answer says of a row after an earlier attempt whose outcome is unknown: a row it
    says was not applied, or was already as wanted, may have been applied by that attempt (the
    state was read before sending): read back, it is applied if it shows as sent."""
    if isinstance(told, str) and told:
        return Said(None, told)
    if isinstance(told, Said) and told.status is not None and told.status is not Status.SUCCEEDED:
        return Said(None, told.error, absent=told.status)
    if isinstance(told, Said) and told.status is None:
        return replace(told, present=Status.SUCCEEDED, note="")
    return told


def finished(row: Row, outcome: Outcome, account: str | None) -> None:
    """The ``row_finished`` event of ``row``."""
    row_finished(row.number, row.campaign_id, account, outcome)


def row_finished(number: int, campaign: int | None, account: str | None, outcome: Outcome) -> None:
    """The ``row_finished`` event of row ``number`` (of a row sent or not: invalid, unchanged)."""
    emit(
        "row_finished",
        row=number,
        campaign_id=campaign,
        account=account,
        status=outcome.status.value,
        http_status=outcome.http_status,
        attempts=outcome.attempts,
        error=outcome.error,
    )


def _numbers(rows: Sequence[Row], shown: int = 5) -> str:
    """``row 3``, ``rows 3, 4, 9``, ``rows 3, 4, 5, 6, 7 and 395 more``: a request's rows."""
    if len(rows) == 1:
        return f"row {rows[0].number}"
    named = ", ".join(str(row.number) for row in rows[:shown])
    return f"rows {named}" + (f" and {len(rows) - shown} more" if len(rows) > shown else "")

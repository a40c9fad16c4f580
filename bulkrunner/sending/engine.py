"""Fan valid rows out to concurrent workers behind one shared limiter, with a retry queue.

    rows ──▶ ready stream ──▶ N workers ──(limiter)──▶ sender
                 ▲                 │ retryable answer
                 └── retry waiters ◀┘  (sleep Retry-After / backoff, then re-enter the stream)

A row waiting for its retry holds no worker. A 429 pauses the limiter for everyone. An abort
verdict (401/403) stops all sending: rows not yet sent are reported ``not_attempted``. Workers and
retry waiters live in task groups owned by :meth:`Engine.run`, so cancelling the run (Ctrl-C)
cancels all of them; :meth:`Engine.outcomes` then still accounts for every row.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from bulkrunner.limits.limiter import Clock, Sleep, SlidingWindowLimiter, WaitTooLong
from bulkrunner.model import Answer, Outcome, Row, RunStats, Status, count
from bulkrunner.operations.base import Operation, Request, Wire
from bulkrunner.operations.settings import SETTINGS
from bulkrunner.output.events import emit
from bulkrunner.sending.retry import (
    BACKOFF_BASE,
    MAX_BACKOFF,
    Outage,
    Verdict,
    classify,
    outage_reason,
    retry_delay,
)

if TYPE_CHECKING:  # a type only: importing aiohttp here would slow down `bulkrunner validate`
    from bulkrunner.sending.transport import Sender

log = logging.getLogger("bulkrunner")

DEFAULT_429_PAUSE = 1.0  # seconds the limiter pauses after a 429 that says nothing of when to retry


@dataclass(slots=True)
class _Job:
    row: Row
    # what the row becomes on the wire, sent in order: made when it is first sent and let go
    # when it finishes, so that a long run does not hold every row's bodies at once
    requests: list[Request] | None = None
    step: int = 0  # the request being sent; the earlier ones succeeded
    attempts: int = 0
    http_status: int | None = None
    error: str = ""
    started: float | None = None
    in_flight: bool = False
    unknown: str = ""  # "attempt 2 timed out after 30s": an attempt that may have been applied


OutcomeHook = Callable[[Row, Outcome], None]
Judge = Callable[[Row, Answer, str], str | None]  # a row's final answer -> why to stop, if so


@dataclass(slots=True)
class Engine:
    """Sends every row once it is valid; one instance runs once."""

    sender: Sender
    limiter: SlidingWindowLimiter
    concurrency: int = 4
    max_attempts: int = 6
    rng: random.Random = field(default_factory=random.Random)
    backoff_base: float = BACKOFF_BASE  # seconds; backoff is uniform(0, min(cap, base * 2^attempt))
    backoff_cap: float = MAX_BACKOFF
    outage_timeout: float | None = None  # abort when only retryable errors came for this long
    max_wait: float = math.inf  # abort rather than wait longer for a Retry-After or a reset
    operation: Operation = SETTINGS  # what each row becomes on the wire
    wire: Wire = field(default_factory=Wire)
    on_outcome: OutcomeHook | None = None  # called as each row finishes (the journal)
    judge: Judge | None = None  # sees each row's final answer: stops the run when it says why
    clock: Clock = time.monotonic
    sleep: Sleep = anyio.sleep
    wall_clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    stats: RunStats = field(default_factory=RunStats)
    _jobs: list[_Job] = field(default_factory=list)
    _finished: dict[int, Outcome] = field(default_factory=dict)
    _send: MemoryObjectSendStream[_Job] | None = None
    _outage: Outage | None = None  # since when only retryable errors came back
    _waiting: int = 0  # rows waiting for their next attempt
    _acquiring: set[anyio.CancelScope] = field(default_factory=set)  # workers awaiting a slot
    _due: dict[int, float] = field(default_factory=dict)  # row number -> when its retry is due
    _succeeded: int = 0

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {self.concurrency}")
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")

    async def run(self, rows: Sequence[Row]) -> dict[int, Outcome]:
        """Send every row; returns each row's outcome keyed by row number."""
        if self._jobs:
            raise RuntimeError("an Engine runs once; create a new one")
        self._jobs = [_Job(row) for row in rows]
        self._outage = Outage(self.outage_timeout, self.clock())
        send, receive = anyio.create_memory_object_stream[_Job](math.inf)
        self._send = send
        for job in self._jobs:
            send.send_nowait(job)
        with send, receive:
            if not self._jobs or self.stats.aborted is not None:  # nothing to do, or stopped
                send.close()
            async with anyio.create_task_group() as waiters:
                async with anyio.create_task_group() as workers:
                    for _ in range(min(self.concurrency, len(self._jobs))):  # none idle
                        workers.start_soon(self._work, receive.clone(), waiters)
                waiters.cancel_scope.cancel()  # only a stop leaves rows waiting here
        self.stats.limits = self.limiter.effective_rates
        return self.outcomes()

    def progress(self) -> tuple[int, int, int]:
        """(succeeded, failed, waiting to retry) so far."""
        return self._succeeded, len(self._finished) - self._succeeded, self._waiting

    def retry_waits(self, now: float) -> list[float]:
        """Seconds from ``now`` (engine clock) until each row waiting for a retry is due."""
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
        for job in self._jobs:
            number = job.row.number
            if number in self._finished:
                result[number] = self._finished[number]
            elif job.in_flight:
                result[number] = self._outcome(
                    job, Status.FAILED, f"{reason} while a request was in flight: outcome unknown"
                )
            elif job.attempts == 0:
                result[number] = unsent
            else:
                result[number] = self._outcome(
                    job, Status.FAILED, f"{reason} before the next attempt; last error: {job.error}"
                )
        return result

    async def _work(
        self, receive: MemoryObjectReceiveStream[_Job], waiters: anyio.abc.TaskGroup
    ) -> None:
        async with receive:
            async for job in receive:
                if self.stats.aborted is None:
                    await self._attempt(job, waiters)

    async def _attempt(self, job: _Job, waiters: anyio.abc.TaskGroup) -> None:
        with anyio.CancelScope() as waiting:  # stop() ends the wait for a window slot
            self._acquiring.add(waiting)
            try:
                grant = await self.limiter.acquire(self.max_wait)
            except WaitTooLong as wait:  # the limit the server announced: a slot too far off
                self._abort(self._too_long(wait.seconds, wait.asked_by))
                return
            finally:
                self._acquiring.discard(waiting)
        if waiting.cancelled_caught or self.stats.aborted is not None:
            return
        if job.started is None:
            job.started = grant.at
        if self.stats.first_request is None:
            self.stats.first_request = grant.at
        row = job.row
        if job.requests is None:
            job.requests = self.operation.requests(row.campaign_id, row.payload, self.wire)
        requests = job.requests
        request = requests[job.step]
        log.debug(
            "row %d: %s campaign %d %s %s",
            row.number,
            request.method,
            row.campaign_id,
            request.path,
            request.body,
        )
        # Counted as sent before the answer: a request abandoned in flight (cancelled when the
        # grace period ran out) may have been applied, so it stays in flight for outcomes().
        job.in_flight = True
        job.attempts += 1
        self.stats.requests += 1
        answer = await self.sender.send(request)
        job.in_flight = False
        now = self.clock()
        self.stats.last_answer = now
        job.http_status = answer.status
        decision = classify(answer)
        job.error = decision.message
        if answer.outcome_unknown:
            job.unknown = f"attempt {job.attempts} {decision.message}"
        log.debug("row %d: %s %s", row.number, answer.status, decision.verdict.value)
        if self._outage is not None:
            self._outage.answered(decision.verdict, now)
        too_long = ""
        try:
            if self.limiter.observe(
                answer.limit, answer.remaining, answer.reset, grant, max_pause=self.max_wait
            ):
                log.debug(
                    "the server's budget is spent: waiting %.1fs for it to renew", answer.reset
                )
        except WaitTooLong as wait:
            too_long = self._too_long(wait.seconds, wait.asked_by)
        match decision.verdict:
            case Verdict.SUCCEEDED if job.step + 1 < len(requests):
                job.step += 1  # the row's next request, through the limiter like any other
                if self._send is not None:
                    with contextlib.suppress(anyio.ClosedResourceError):
                        self._send.send_nowait(job)
            case Verdict.SUCCEEDED:
                self._finish(job, Status.SUCCEEDED, "")
            case Verdict.FAILED:
                self._finish(job, Status.FAILED, decision.message)
            case Verdict.ABORT:
                self._finish(job, Status.FAILED, decision.message)
                self._abort(f"run aborted: {decision.message}")
            case Verdict.RETRY if not too_long:
                self._retry(job, answer, waiters)
        if self.judge is not None and decision.verdict in (Verdict.SUCCEEDED, Verdict.FAILED):
            reason = self.judge(row, answer, decision.message)
            if reason is not None:
                self._abort(reason)
        if too_long:
            self._abort(too_long)

    def _too_long(self, seconds: float, asked_by: str) -> str:
        return (
            f"run aborted: the server asked to wait {seconds:.0f}s ({asked_by}), "
            f"more than --max-wait {self.max_wait:g}"
        )

    def _retry(self, job: _Job, answer: Answer, waiters: anyio.abc.TaskGroup) -> None:
        if answer.retry_after is not None and answer.retry_after > self.max_wait:
            self._abort(self._too_long(answer.retry_after, "Retry-After"))
            return
        if answer.status == 429:
            self.stats.throttled += 1
            self.limiter.pause(answer.retry_after or DEFAULT_429_PAUSE)
            self.limiter.throttled()
        if job.attempts >= self.max_attempts:
            self._finish(
                job,
                Status.FAILED,
                f"gave up after {count(job.attempts, 'attempt')}; last error: {job.error}",
            )
            return
        row = job.row
        delay = retry_delay(
            job.attempts, answer.retry_after, self.rng, self.backoff_base, self.backoff_cap
        )
        outage = self._outage.reached(self.clock(), delay) if self._outage is not None else None
        if outage is not None:
            self._abort(f"run aborted: {outage_reason(outage, delay, job.error)}")
            return
        self.stats.retries += 1
        log.info(
            "row %d (campaign %d): retry in %.1fs (attempt %d of %d) after %s",
            row.number,
            row.campaign_id,
            delay,
            job.attempts + 1,
            self.max_attempts,
            job.error,
        )
        emit(
            "retry_scheduled",
            row=row.number,
            campaign_id=row.campaign_id,
            attempt=job.attempts + 1,
            delay=round(delay, 3),
            error=job.error,
        )
        self._waiting += 1
        self._due[row.number] = self.clock() + delay
        waiters.start_soon(self._requeue, job, delay)

    async def _requeue(self, job: _Job, delay: float) -> None:
        try:
            await self.sleep(delay)
        finally:
            self._waiting -= 1
            self._due.pop(job.row.number, None)
        if self._send is not None and self.stats.aborted is None:
            self._send.send_nowait(job)

    def _finish(self, job: _Job, status: Status, error: str) -> None:
        if job.unknown:
            note = f"{job.unknown}: outcome unknown, retried"
            error = f"{error}; {note}" if error else note
        if status is Status.FAILED:
            row = job.row
            log.warning("row %d (campaign %d) failed: %s", row.number, row.campaign_id, error)
        outcome = self._outcome(job, status, error)
        emit(
            "row_finished",
            row=job.row.number,
            campaign_id=job.row.campaign_id,
            status=status.value,
            http_status=outcome.http_status,
            attempts=outcome.attempts,
            error=error,
        )
        self._finished[job.row.number] = outcome
        job.requests = None
        self._succeeded += status is Status.SUCCEEDED
        if self.on_outcome is not None:
            self.on_outcome(job.row, outcome)
        if len(self._finished) == len(self._jobs) and self._send is not None:
            self._send.close()

    def _outcome(self, job: _Job, status: Status, error: str) -> Outcome:
        duration = None
        if job.started is not None and self.stats.last_answer is not None:
            duration = round((self.stats.last_answer - job.started) * 1000)
        return Outcome(status, job.http_status, job.attempts, error, duration, self.wall_clock())

    def _abort(self, reason: str) -> None:
        if self.stats.aborted is None:
            log.error("%s; no further requests will be sent", reason)
        self.stop(reason)

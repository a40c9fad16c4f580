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

import enum
import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from bulkrunner.answers import Answer
from bulkrunner.limiter import Clock, Sleep, SlidingWindowLimiter
from bulkrunner.retry import BACKOFF_BASE, MAX_BACKOFF, Verdict, classify, retry_delay
from bulkrunner.sender import Sender
from bulkrunner.validation import Row

log = logging.getLogger("bulkrunner")

DEFAULT_429_PAUSE = 1.0  # seconds the limiter pauses after a 429 that says nothing of when to retry


class Status(enum.StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    INVALID = "invalid"
    NOT_ATTEMPTED = "not_attempted"
    DRY_RUN = "dry_run"


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one row ended."""

    status: Status
    http_status: int | None = None
    attempts: int = 0
    error: str = ""
    duration_ms: int | None = None
    finished_at: datetime | None = None


@dataclass(slots=True)
class RunStats:
    requests: int = 0
    throttled: int = 0  # answers of 429
    retries: int = 0
    first_request: float | None = None  # engine clock
    last_answer: float | None = None
    aborted: str | None = None  # why the run stopped early, if it did

    @property
    def sending_seconds(self) -> float:
        if self.first_request is None or self.last_answer is None:
            return 0.0
        return max(0.0, self.last_answer - self.first_request)

    @property
    def requests_per_second(self) -> float:
        seconds = self.sending_seconds
        return self.requests / seconds if seconds > 0 else 0.0


@dataclass(slots=True)
class _Job:
    row: Row
    attempts: int = 0
    http_status: int | None = None
    error: str = ""
    started: float | None = None


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
    clock: Clock = time.monotonic
    sleep: Sleep = anyio.sleep
    wall_clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    stats: RunStats = field(default_factory=RunStats)
    _jobs: list[_Job] = field(default_factory=list)
    _finished: dict[int, Outcome] = field(default_factory=dict)
    _send: MemoryObjectSendStream[_Job] | None = None

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
        send, receive = anyio.create_memory_object_stream[_Job](math.inf)
        self._send = send
        for job in self._jobs:
            send.send_nowait(job)
        with send, receive:
            if not self._jobs:
                send.close()
            async with anyio.create_task_group() as waiters:
                async with anyio.create_task_group() as workers:
                    for _ in range(self.concurrency):
                        workers.start_soon(self._work, receive.clone(), waiters)
                waiters.cancel_scope.cancel()  # only an abort leaves rows waiting here
        return self.outcomes()

    def outcomes(self) -> dict[int, Outcome]:
        """Every row's outcome so far; rows still unfinished count as not sent."""
        result: dict[int, Outcome] = {}
        for job in self._jobs:
            number = job.row.number
            if number in self._finished:
                result[number] = self._finished[number]
            elif job.attempts == 0:
                result[number] = Outcome(Status.NOT_ATTEMPTED, error=self.stats.aborted or "")
            else:
                reason = self.stats.aborted or "run stopped"
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
        granted = await self.limiter.acquire()
        if self.stats.aborted is not None:
            return
        if job.started is None:
            job.started = granted
        if self.stats.first_request is None:
            self.stats.first_request = granted
        row = job.row
        log.debug("row %d: POST campaign %d %s", row.number, row.campaign_id, dict(row.payload))
        answer = await self.sender.post_settings(row.campaign_id, row.payload)
        self.stats.requests += 1
        self.stats.last_answer = self.clock()
        job.attempts += 1
        job.http_status = answer.status
        decision = classify(answer)
        job.error = decision.message
        log.debug("row %d: %s %s", row.number, answer.status, decision.verdict.value)
        match decision.verdict:
            case Verdict.SUCCEEDED:
                self._finish(job, Status.SUCCEEDED, "")
            case Verdict.FAILED:
                log.warning(
                    "row %d (campaign %d) failed: %s", row.number, row.campaign_id, decision.message
                )
                self._finish(job, Status.FAILED, decision.message)
            case Verdict.ABORT:
                self._finish(job, Status.FAILED, decision.message)
                self._abort(f"run aborted: {decision.message}")
            case Verdict.RETRY:
                self._retry(job, answer, waiters)

    def _retry(self, job: _Job, answer: Answer, waiters: anyio.abc.TaskGroup) -> None:
        if answer.status == 429:
            self.stats.throttled += 1
            self.limiter.pause(answer.retry_after or DEFAULT_429_PAUSE)
        row = job.row
        if job.attempts >= self.max_attempts:
            message = f"gave up after {job.attempts} attempts; last error: {job.error}"
            log.warning("row %d (campaign %d) failed: %s", row.number, row.campaign_id, message)
            self._finish(job, Status.FAILED, message)
            return
        delay = retry_delay(
            job.attempts, answer.retry_after, self.rng, self.backoff_base, self.backoff_cap
        )
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
        waiters.start_soon(self._requeue, job, delay)

    async def _requeue(self, job: _Job, delay: float) -> None:
        await self.sleep(delay)
        if self._send is not None and self.stats.aborted is None:
            self._send.send_nowait(job)

    def _finish(self, job: _Job, status: Status, error: str) -> None:
        self._finished[job.row.number] = self._outcome(job, status, error)
        if len(self._finished) == len(self._jobs) and self._send is not None:
            self._send.close()

    def _outcome(self, job: _Job, status: Status, error: str) -> Outcome:
        duration = None
        if job.started is not None and self.stats.last_answer is not None:
            duration = round((self.stats.last_answer - job.started) * 1000)
        return Outcome(status, job.http_status, job.attempts, error, duration, self.wall_clock())

    def _abort(self, reason: str) -> None:
        if self.stats.aborted is None:
            self.stats.aborted = reason
            log.error("%s; no further requests will be sent", reason)
            if self._send is not None:
                self._send.close()

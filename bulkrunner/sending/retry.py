"""Retry policy as pure functions: what an answer means, and how long to wait before the next try.

    classify(answer)                      -> Decision(verdict, message)
    retry_delay(attempt, retry_after, rng) -> seconds
    Outage(timeout, start).reached(now, wait) -> seconds of only retryable errors, past the timeout

No I/O and no clock: the engine and the reads before sending apply the policy, with the times
of their own clock; tests check it with tables.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass

from bulkrunner.model import Answer
from bulkrunner.operations.answers import error_message, reports_failure

RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
ABORT_STATUSES = frozenset({401, 403})
MAX_BACKOFF = 60.0
BACKOFF_BASE = 1.0


class Verdict(enum.Enum):
    SUCCEEDED = "succeeded"
    RETRY = "retry"  # try again later: throttled, server trouble, timeout, dropped connection
    FAILED = "failed"  # this row cannot succeed as sent
    ABORT = "abort"  # no row can succeed (the key is wrong): stop the whole run


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    message: str  # "" on success


def classify(answer: Answer) -> Decision:
    """Decide what ``answer`` means for its row and for the run."""
    status = answer.status
    if status is None:
        return Decision(Verdict.RETRY, answer.transport_error or "no answer")
    if 200 <= status < 300:
        if answer.too_large is not None or reports_failure(answer.body):
            return Decision(Verdict.FAILED, _describe(answer))
        return Decision(Verdict.SUCCEEDED, "")
    if 300 <= status < 400:
        return Decision(Verdict.FAILED, redirected(answer))
    if status in RETRYABLE_STATUSES:
        return Decision(Verdict.RETRY, _describe(answer))
    if status in ABORT_STATUSES:
        return Decision(Verdict.ABORT, _describe(answer))
    return Decision(Verdict.FAILED, _describe(answer))


def backoff(
    attempt: int, rng: random.Random, base: float = BACKOFF_BASE, cap: float = MAX_BACKOFF
) -> float:
    """Full-jitter exponential backoff after ``attempt`` tries: uniform(0, min(60, 1·2^attempt))."""
    return rng.uniform(0.0, min(cap, base * 2.0**attempt))


def retry_delay(
    attempt: int,
    retry_after: float | None,
    rng: random.Random,
    base: float = BACKOFF_BASE,
    cap: float = MAX_BACKOFF,
) -> float:
    """Seconds to wait before try ``attempt + 1``: the backoff, but never under Retry-After."""
    return max(retry_after or 0.0, backoff(attempt, rng, base, cap))


def unread(most: int) -> str:
    """Why an answer's body was not read: it was longer than ``most`` bytes. The same request
    would get the same answer, so a 2xx one is a failure, not retried."""
    size = f"{most >> 20} MB" if most >= 1 << 20 and not most % (1 << 20) else f"{most:,} bytes"
    return f"the answer is larger than {size}, the most bulkrunner reads: left unread"


@dataclass(slots=True)
class Outage:
    """``--outage-timeout``: SmartLead is taken to be down once only retryable errors have come
    back for ``timeout`` seconds (None: never). One is kept per phase that sends (the reads of a
    batch, its sending), from when it began (``alive``)."""

    timeout: float | None
    alive: float  # when the last answer that was not a retryable error came, or the phase began

    def answered(self, verdict: Verdict, at: float) -> None:
        if verdict is not Verdict.RETRY:
            self.alive = at

    def reached(self, now: float, wait: float) -> float | None:
        """How long only retryable errors will have come back once the ``wait`` before the next
        try is over, if that reaches the timeout: time spent waiting counts, so a run does not
        sleep past the timeout to find out."""
        if self.timeout is None:
            return None
        silent = now - self.alive + wait
        return silent if silent >= self.timeout else None


def outage_reason(silent: float, wait: float, last: str) -> str:
    """Why a run stopped for an outage: ``Outage.reached`` said ``silent``."""
    return (
        f"only retryable errors came back for {silent:.0f}s, counting the {wait:.0f}s wait "
        f"before the next try (last: {last}); SmartLead looks unavailable"
    )


def redirected(answer: Answer) -> str:
    """A 3xx, which is never followed: following it would send the key to another address."""
    where = answer.location or "an address it did not give"
    return f"HTTP {answer.status}: redirected to {where} (not followed)"


def _describe(answer: Answer) -> str:
    message = error_message(answer.body) if answer.too_large is None else unread(answer.too_large)
    return f"HTTP {answer.status}: {message}" if message else f"HTTP {answer.status}"

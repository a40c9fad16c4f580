"""The retry policy of every request, as pure functions: what an answer means, and what follows it.

    classify(answer, final)                        -> Decision(verdict, message)
    retry_delay(attempt, retry_after, rng)         -> seconds
    Outage(timeout, start).reached(now, wait)      -> seconds of only retryable errors
    Policy(...).after(answer, attempt, rng, outage, now, final)
                                                   -> Next(decision, delay | stop, pause)

No I/O: every request of a run (its writes, the reads before sending, ``--verify``'s read-backs,
``export``'s reads) goes through one account's ``Connection``, which applies this policy with
the times of the run's clock; tests check it with tables.

``final`` is a write's operation's word on an answer the policy would retry
(``Operation.final``): a 500 that names a condition no retry changes (a lead on its last
sequence step cannot be resumed) is a failure, for that reason. It is matched on what the
answer says, never on its status alone: any other 500 is retried as ever.
"""

from __future__ import annotations

import enum
import math
import random
from collections.abc import Callable
from dataclasses import dataclass

from bulkrunner.config.redaction import redact_url
from bulkrunner.errors import Unavailable, WaitTooLong
from bulkrunner.model import Answer
from bulkrunner.operations.answers import error_message, one_line, reports_failure

RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
ABORT_STATUSES = frozenset({401, 403})
MAX_BACKOFF = 60.0
BACKOFF_BASE = 1.0
PAUSE_429 = 1.0  # seconds the key is held back after a 429 that says nothing of when to retry


class Verdict(enum.Enum):
    SUCCEEDED = "succeeded"
    RETRY = "retry"  # try again later: throttled, server trouble, timeout, dropped connection
    FAILED = "failed"  # this row cannot succeed as sent
    ABORT = "abort"  # no row can succeed (the key is wrong): stop the whole run


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    message: str  # "" on success


Final = Callable[[Answer], str]
"""Why an answer the policy would retry is final for the write it answers ("" when it is not)."""


def classify(answer: Answer, final: Final | None = None) -> Decision:
    """Decide what ``answer`` means for its row and for the run; ``final`` may say that a
    retryable answer is final for its write (then it is a failure, for the reason it gives)."""
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
        reason = final(answer) if final is not None else ""
        if reason:
            return Decision(Verdict.FAILED, reason)
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


@dataclass(frozen=True, slots=True)
class Next:
    """What follows an answer: its ``decision``; for a retryable one, the ``delay`` before the
    next try (None: no more tries), or ``stop`` when waiting would break a bound the run sets
    (a Retry-After past --max-wait, the outage timeout); and ``pause``, the seconds a 429 holds
    the whole key back."""

    decision: Decision
    delay: float | None = None
    stop: WaitTooLong | Unavailable | None = None
    pause: float = 0.0


@dataclass(frozen=True, slots=True)
class Policy:
    """How every request of a run is tried again: ``max_attempts`` tries (--max-attempts), full
    jitter backoff never under Retry-After, never a wait past ``max_wait`` (--max-wait), and
    never past ``outage_timeout`` of only retryable errors (--outage-timeout)."""

    max_attempts: int = 6
    max_wait: float = math.inf
    outage_timeout: float | None = None
    backoff_base: float = BACKOFF_BASE
    backoff_cap: float = MAX_BACKOFF

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")

    def after(
        self,
        answer: Answer,
        attempt: int,
        rng: random.Random,
        outage: Outage,
        now: float,
        final: Final | None = None,
    ) -> Next:
        """What follows ``answer``, the answer to try number ``attempt``, at ``now`` (``final``:
        the operation's word on an answer that would be retried, see ``classify``)."""
        decision = classify(answer, final)
        outage.answered(decision.verdict, now)
        if decision.verdict is not Verdict.RETRY:
            return Next(decision)
        if answer.retry_after is not None and answer.retry_after > self.max_wait:
            return Next(decision, stop=WaitTooLong(answer.retry_after, "Retry-After"))
        pause = (answer.retry_after or PAUSE_429) if answer.status == 429 else 0.0
        if attempt >= self.max_attempts:
            return Next(decision, pause=pause)
        delay = retry_delay(attempt, answer.retry_after, rng, self.backoff_base, self.backoff_cap)
        silent = outage.reached(now, delay)
        if silent is not None:
            reason = outage_reason(silent, delay, decision.message)
            return Next(decision, stop=Unavailable(reason), pause=pause)
        return Next(decision, delay=delay, pause=pause)


def too_long(wait: WaitTooLong, max_wait: float) -> str:
    """Why a run stopped rather than wait as the server asked."""
    return (
        f"the server asked to wait {wait.said(wait.seconds)} ({wait.asked_by}), "
        f"more than --max-wait {max_wait:g}"
    )


def outage_reason(silent: float, wait: float, last: str) -> str:
    """Why a run stopped for an outage: ``Outage.reached`` said ``silent``."""
    return (
        f"only retryable errors came back for {silent:.0f}s, counting the {wait:.0f}s wait "
        f"before the next try (last: {last}); SmartLead looks unavailable"
    )


def redirected(answer: Answer) -> str:
    """A 3xx, which is never followed: following it would send the key to another address."""
    where = one_line(answer.location) if answer.location else "an address it did not give"
    return f"HTTP {answer.status}: redirected to {where} (not followed)"


def _describe(answer: Answer) -> str:
    message = error_message(answer.body) if answer.too_large is None else unread(answer.too_large)
    message = redact_url(message)  # a success's body hides no api_key=: its message does
    return f"HTTP {answer.status}: {message}" if message else f"HTTP {answer.status}"

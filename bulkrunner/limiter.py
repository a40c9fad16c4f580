"""One shared limiter that holds every "N requests in any S seconds" window at once.

A leaky bucket such as ``aiolimiter.AsyncLimiter(N, S)`` lets N through at once and keeps
draining, so nearly 2N requests can land inside one S-second window as the server counts it.
This limiter keeps, for each window, the times of the last N requests it let through, and admits
the next one only once the oldest of those is more than S seconds (plus a small guard for arrival
jitter) in the past. So no window ever holds more than N, and over a long run the tightest window
is filled exactly: the ceiling is reached, not a fraction of it.

Time is a parameter: ``clock`` returns seconds and ``sleep`` waits, so tests drive a fake clock.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from bulkrunner.adaptive import AdaptiveRate
from bulkrunner.rates import Rate, ceiling
from bulkrunner.wording import count

log = logging.getLogger("bulkrunner")

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


# Seconds added to each window against arrival jitter. A request granted at t reaches the server
# a little later, and not by the same amount each time: a busy event loop or a descheduled
# process can hold one request back a few milliseconds more than the next. 10 ms covered that on
# a loaded two-core machine in the integration tests, and costs 0.5% of a 2-second window.
DEFAULT_GUARD = 0.010
_RECENT = 512  # grant times kept to measure the sending rate
_EXACT_ETA = 5_000  # requests up to which eta() steps through the windows


class _Window:
    __slots__ = ("granted", "length", "limit")

    def __init__(self, rate: Rate, guard: float) -> None:
        self.limit = rate.limit
        self.length = rate.seconds + guard
        self.granted: deque[float] = deque(maxlen=rate.limit)

    def wait(self, now: float) -> float:
        """Seconds until one more request fits in this window."""
        if len(self.granted) < self.limit:
            return 0.0
        return self.granted[0] + self.length - now


class WaitTooLong(Exception):
    """The server asked everyone to wait longer than the run allows (``--max-wait``)."""

    def __init__(self, seconds: float, asked_by: str) -> None:
        super().__init__(f"{asked_by} asked to wait {seconds:.0f}s")
        self.seconds = seconds
        self.asked_by = asked_by


@dataclass(frozen=True, slots=True)
class Grant:
    """One admitted request: when, and its sequence number among all grants (from 1)."""

    at: float
    seq: int


class SlidingWindowLimiter:
    """Admit requests so that no window of any ``rates`` entry ever holds more than its limit.

    Waiters are served in arrival order. On top of the windows:

    - ``pause(seconds)`` holds everyone back, e.g. after a 429 whose Retry-After says the key's
      budget is spent;
    - ``throttled()`` tells the adaptive controller a 429 came back: the allowed rate drops and
      then recovers (see ``adaptive``), for when the server's real limit is below the configured;
    - ``observe(limit, remaining, reset, grant)`` reads the ``X-RateLimit-*`` headers. A limit
      below the configured one is taken to hold over the shortest configured window and is
      enforced from then on; without a limit, a spent budget while the configured windows still
      have room makes everyone wait for the reset instead of drawing 429s.
    """

    def __init__(
        self,
        rates: Sequence[Rate],
        *,
        guard: float = DEFAULT_GUARD,
        adaptive: bool = True,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if not rates:
            raise ValueError("at least one rate is required")
        self.rates = tuple(rates)
        self._guard = guard
        self._windows = [_Window(rate, guard) for rate in self.rates]
        self.learned: Rate | None = None  # a lower limit the server announced
        self.adaptive = AdaptiveRate(ceiling(self.rates)) if adaptive else None
        self._clock = clock
        self._sleep = sleep
        self._paused_until = float("-inf")
        self._recent: deque[float] = deque(maxlen=_RECENT)
        self.granted = 0
        self._lock = asyncio.Lock()

    def wait_time(self, now: float) -> float:
        """Seconds from ``now`` until the next request may go (0 when it may go at once)."""
        wait = max(0.0, self._paused_until - now, self._windows_wait(now))
        rate = self.adaptive.rate(now) if self.adaptive else None
        if rate is not None and self._recent:
            wait = max(wait, self._recent[-1] + 1.0 / rate - now)
        return wait

    def seed(self, ages: Sequence[float], in_flight: int = 0) -> None:
        """Count requests an earlier process sent ``ages`` seconds ago, and ``in_flight`` more
        just now, so that a resumed run does not overfill the windows that run left behind."""
        now = self._clock()
        for at in sorted([now - age for age in ages] + [now] * in_flight):
            for window in self._windows:
                window.granted.append(at)

    @property
    def effective_rates(self) -> tuple[Rate, ...]:
        """The configured limits, and the lower one the server announced, if it did."""
        return self.rates if self.learned is None else (*self.rates, self.learned)

    def pause(self, seconds: float) -> None:
        """Admit nothing for ``seconds`` from now (never shortens an earlier pause)."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    def throttled(self) -> None:
        """A 429 came back: slow down (adaptive control), on top of any Retry-After pause."""
        if self.adaptive is not None:
            now = self._clock()
            self.adaptive.on_throttle(now, self.sending_rate(now))

    def observe(
        self,
        limit: int | None,
        remaining: int | None,
        reset: float | None,
        grant: Grant,
        max_pause: float = math.inf,
    ) -> bool:
        """Take the server's word on its limit and budget, from the answer to ``grant``.

        Requests granted after that one may not have been counted in ``remaining`` yet, so they
        are taken off it. Returns True when it made everyone wait for the reset; raises
        :class:`WaitTooLong` instead of waiting longer than ``max_pause`` seconds.
        """
        now = self._clock()
        if limit is not None and limit > 0:
            # A known limit is held by the windows (configured or learned), which track the
            # server's count exactly; a remaining count measured before this answer travelled
            # back would only be stale by now.
            self._learn(limit, now)
            return False
        if remaining is None or reset is None:
            return False
        budget = remaining - (self.granted - grant.seq)
        if budget > 0 or self._windows_wait(now) > 0:
            return False  # budget left, or the configured windows make everyone wait anyway
        if reset > max_pause:
            raise WaitTooLong(reset, "X-RateLimit-Reset")
        self.pause(reset)
        return True

    def _learn(self, limit: int, now: float) -> None:
        shortest = min(self.rates, key=lambda rate: rate.seconds)
        if limit >= shortest.limit or (self.learned is not None and limit >= self.learned.limit):
            return
        self.learned = Rate(limit, shortest.seconds)
        window = _Window(self.learned, self._guard)
        window.granted.extend(at for at in self._recent if at > now - window.length)
        self._windows.append(window)
        log.warning(
            "the server announces a limit of %s (X-RateLimit-Limit), below the "
            "configured %s: holding %s from now on",
            count(limit, "request"),
            shortest,
            self.learned,
        )

    def sending_rate(self, now: float, span: float = 1.0) -> float:
        """Requests per second granted over the last ``span`` seconds."""
        return sum(1 for at in self._recent if at > now - span) / span

    def eta(self, count: int, now: float) -> float:
        """Seconds until ``count`` more requests can have been granted, at the earliest, given
        what the windows hold now (past ``_EXACT_ETA`` requests: count over the ceiling)."""
        if count > _EXACT_ETA:
            return count / min(rate.per_second for rate in self.effective_rates)
        granted = [list(window.granted) for window in self._windows]
        at = now
        for _ in range(count):
            at = max(
                [at, self._paused_until]
                + [
                    times[-window.limit] + window.length
                    for window, times in zip(self._windows, granted, strict=True)
                    if len(times) >= window.limit
                ]
            )
            for times in granted:
                times.append(at)
        return at - now

    async def acquire(self) -> Grant:
        """Wait for a slot in every window; returns the grant, stamped with the clock."""
        async with self._lock:
            while True:
                now = self._clock()
                wait = self.wait_time(now)
                if wait <= 0:
                    for window in self._windows:
                        window.granted.append(now)
                    self._recent.append(now)
                    self.granted += 1
                    return Grant(now, self.granted)
                await self._sleep(wait)

    def _windows_wait(self, now: float) -> float:
        return max(window.wait(now) for window in self._windows)

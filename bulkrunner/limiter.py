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
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence

from bulkrunner.rates import Rate

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


# Seconds added to each window against arrival jitter. A request granted at t reaches the server
# a little later, and not by the same amount each time: a busy event loop or a descheduled
# process can hold one request back a few milliseconds more than the next. 10 ms covered that on
# a loaded two-core machine in the integration tests, and costs 0.5% of a 2-second window.
DEFAULT_GUARD = 0.010


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


class SlidingWindowLimiter:
    """Admit requests so that no window of any ``rates`` entry ever holds more than its limit.

    Waiters are served in arrival order. ``pause(seconds)`` holds everyone back, e.g. after a 429
    whose Retry-After says the key's budget is spent.
    """

    def __init__(
        self,
        rates: Sequence[Rate],
        *,
        guard: float = DEFAULT_GUARD,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if not rates:
            raise ValueError("at least one rate is required")
        self.rates = tuple(rates)
        self._windows = [_Window(rate, guard) for rate in self.rates]
        self._clock = clock
        self._sleep = sleep
        self._paused_until = float("-inf")
        self._lock = asyncio.Lock()

    def wait_time(self, now: float) -> float:
        """Seconds from ``now`` until the next request may go (0 when it may go at once)."""
        return max(0.0, self._paused_until - now, *(w.wait(now) for w in self._windows))

    def pause(self, seconds: float) -> None:
        """Admit nothing for ``seconds`` from now (never shortens an earlier pause)."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    async def acquire(self) -> float:
        """Wait for a slot in every window; returns the clock time at which it was granted."""
        async with self._lock:
            while True:
                now = self._clock()
                wait = self.wait_time(now)
                if wait <= 0:
                    for window in self._windows:
                        window.granted.append(now)
                    return now
                await self._sleep(wait)

"""The simulated server's true rate limit: "at most N requests in any window of S seconds".

``ServerRateLimit`` is pure and driven by the caller's clock, with a log of admitted arrival
times. A rejected request is not admitted, so it does not consume budget.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass

from bulkrunner.model import Rate


def whole_seconds(seconds: float) -> int:
    """``seconds`` as announced in ``Retry-After``: rounded up to whole seconds, at least 1."""
    return max(1, math.ceil(seconds))


@dataclass(frozen=True, slots=True)
class Admission:
    """The limiter's verdict on one arrival, with the ``X-RateLimit-*`` numbers to announce."""

    admitted: bool
    retry_after: int = 0  # whole seconds until a retry would be admitted; 0 when admitted
    limit: int | None = None  # the tightest rate's limit; None when unlimited
    remaining: int = 0
    reset: int = 0  # whole seconds until the oldest request in that window expires

    def headers(self) -> dict[str, str]:
        if self.limit is None:
            return {}
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset),
        }


class ServerRateLimit:
    """A sliding-window log over admitted arrivals; a window of S seconds ending at ``now`` holds
    the arrivals in ``(now - S, now]``, matching ``rates.max_in_window``'s half-open windows."""

    def __init__(self, rates: Sequence[Rate]) -> None:
        self._rates = tuple(rates)
        self._horizon = max((rate.seconds for rate in self._rates), default=0.0)
        self._log: list[float] = []

    def admit(self, now: float) -> Admission:
        if not self._rates:
            return Admission(admitted=True)
        del self._log[: bisect.bisect_right(self._log, now - self._horizon)]
        wait, rate = max(
            ((self._wait(rate, now), rate) for rate in self._rates), key=lambda item: item[0]
        )
        if wait > 0:
            retry = whole_seconds(wait)
            return Admission(False, retry, rate.limit, remaining=0, reset=retry)
        bisect.insort(self._log, now)
        return self._tightest(now)

    def _window(self, rate: Rate, now: float) -> list[float]:
        return self._log[bisect.bisect_right(self._log, now - rate.seconds) :]

    def _wait(self, rate: Rate, now: float) -> float:
        """Seconds until one more arrival fits ``rate`` (0 if it fits now)."""
        window = self._window(rate, now)
        if len(window) < rate.limit:
            return 0.0
        return max(window[len(window) - rate.limit] + rate.seconds - now, 1e-9)

    def _tightest(self, now: float) -> Admission:
        def remaining(rate: Rate) -> tuple[int, float]:
            return rate.limit - len(self._window(rate, now)), rate.per_second

        rate = min(self._rates, key=remaining)
        window = self._window(rate, now)
        reset = math.ceil(window[0] + rate.seconds - now) if window else 0
        return Admission(True, 0, rate.limit, remaining(rate)[0], reset)

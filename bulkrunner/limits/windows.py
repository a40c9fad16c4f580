"""One rate's window as the limiter keeps it: the times the server can have counted its latest
requests, and how long until one more fits.

A request in flight (or never reported) is held by its stamp, the grant or the write, plus the
guard given at the time of asking; an answered one by when its answer came, less the fastest
round trip known at the time of asking (``bulkrunner.limits.limiter`` says why).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from bulkrunner.model import Rate

_STALE = 60.0  # seconds past its window after which a request's time is let go


class Window:
    """The latest ``limit`` requests of one rate, as the latest times the server can have
    counted them, kept in order.

    A request in flight (or never reported) is held by its stamp, the grant or the write, plus
    the guard given at the time of asking (``pending``). An answered one is held by when its
    answer came (``answered``), less the fastest round trip known at the time of asking: the
    server counted it before its answer left, so no later than that. Each list shifts as a
    whole, so each stays sorted, and of each only the latest ``limit`` can matter.
    """

    __slots__ = ("answered", "limit", "pending", "seconds")

    def __init__(self, rate: Rate) -> None:
        self.limit = rate.limit
        self.seconds = rate.seconds
        self.pending: list[float] = []
        self.answered: list[float] = []

    def add(self, at: float) -> None:
        self._keep(self.pending, at)

    def move(self, old: float, new: float) -> None:
        """A request stamped ``old`` is stamped ``new`` instead (if it was pushed out by ``limit``
        later ones, ``new`` competes with them again)."""
        _remove(self.pending, old)
        self.add(new)

    def answer(self, slot: float, at: float) -> None:
        """The request stamped ``slot`` was answered: it is held by ``at`` from now on."""
        _remove(self.pending, slot)
        self._keep(self.answered, at)

    def _keep(self, times: list[float], at: float) -> None:
        """Add ``at`` to ``times``, which keeps the latest ``limit`` and lets go of those long
        past the window (whatever the guard, a time ``_STALE`` seconds past it cannot count): a
        limit far above the rate sent (``--rate 1000000/1``) holds a minute of requests, not a
        million."""
        _insort(times, at, self.limit)
        stale = at - self.seconds - _STALE
        if times[0] < stale:
            del times[: bisect.bisect_left(times, stale)]

    def times(self, pending: float, answered: float) -> list[float]:
        """The latest ``limit`` of the requests' times, in order, each list shifted by its own."""
        merged = sorted(
            [at + pending for at in self.pending] + [at + answered for at in self.answered]
        )
        return merged[-self.limit :]

    def room(self, at: float, pending: float, answered: float) -> int:
        """How many more requests this window holds at ``at`` (its requests each shifted by
        their list's shift; those that left it by then make room)."""
        start = at - self.seconds
        inside = len(self.pending) - bisect.bisect_right(self.pending, start - pending)
        inside += len(self.answered) - bisect.bisect_right(self.answered, start - answered)
        return max(0, self.limit - inside)

    def wait(self, now: float, pending: float, answered: float) -> float:
        """Seconds until one more request fits in this window, each list shifted by its own."""
        if len(self.pending) + len(self.answered) < self.limit:
            return 0.0
        oldest = _kth_latest(self.pending, pending, self.answered, answered, self.limit)
        return oldest + self.seconds - now


def _insort(times: list[float], at: float, keep: int) -> None:
    bisect.insort(times, at)
    if len(times) > keep:
        del times[0]


def _remove(times: list[float], at: float) -> None:
    i = bisect.bisect_left(times, at)
    if i < len(times) and times[i] == at:
        del times[i]


def _kth_latest(a: Sequence[float], da: float, b: Sequence[float], db: float, k: int) -> float:
    """The ``k``-th latest of ``a`` shifted by ``da`` and ``b`` shifted by ``db`` together (both
    sorted, with at least ``k`` times between them), by bisecting how many of the latest ``k``
    come from ``a``."""
    lo, hi = max(0, k - len(b)), min(k, len(a))
    while lo < hi:
        t = (lo + hi) // 2  # the t latest of a and the k - t latest of b
        if a[len(a) - t - 1] + da > b[len(b) - (k - t)] + db:
            lo = t + 1  # a's next is later than b's k-t-th latest: take more of a
        else:
            hi = t
    latest = []
    if lo > 0:
        latest.append(a[len(a) - lo] + da)
    if lo < k:
        latest.append(b[len(b) - (k - lo)] + db)
    return min(latest)


def earliest(
    windows: Sequence[Window], count: int, now: float, pending: float, answered: float
) -> float:
    """When the last of ``count`` more requests can go, at the earliest from ``now``, given
    what ``windows`` hold (each list shifted by its own), each held ``pending`` once it goes."""
    granted = [window.times(pending, answered) for window in windows]
    at = now
    for _ in range(count):
        at = max(
            [at]
            + [
                times[-window.limit] + window.seconds
                for window, times in zip(windows, granted, strict=True)
                if len(times) >= window.limit
            ]
        )
        for times in granted:
            bisect.insort(times, at + pending)
    return at

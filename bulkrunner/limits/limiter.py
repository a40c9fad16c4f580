"""One shared limiter that holds every "N requests in any S seconds" window at once.

A leaky bucket such as ``aiolimiter.AsyncLimiter(N, S)`` lets N through at once and keeps
draining, so nearly 2N requests can land inside one S-second window as the server counts it.
This limiter keeps, for each window, the times of the last N requests it let through, and admits
the next one only once the oldest of those is more than S seconds (plus a guard) in the past. So
no window ever holds more than N, and over a long run the tightest window is filled exactly: the
ceiling is reached, not a fraction of it.

Over a real network the server counts each request at ``written + delay``, where the delay
varies between 0 and some J from one request to the next: request k+N may then be counted up to
J sooner, relative to request k, than the limiter spaced them. So:

- a request's slot is stamped when it is written to the socket (``request_written``, called by
  the sender's aiohttp trace hooks), not when it was granted, which takes the client's own
  delays (a busy event loop, a connection being opened) out of what the guard must cover;
- once a request is answered (``answer_received``), the server counted it no later than the
  answer came back less the fixed part of a round trip, which the fastest round trips tell (the
  fastest, less a margin for how well the ten fastest agree; nothing until 20 are known): its
  slot moves there (at most half the shortest window past the write: a longer delay is taken
  to be the server's work after counting it). So each request holds its windows for its own
  delay, a stall that held a batch of requests back included, not for the widest delay;
- a request still in flight is held for the guard: at least as wide as the spread of the round
  trips (a high percentile above the fastest, with a margin), since one-way jitter cannot exceed
  it, capped at a quarter of the shortest window (a 429 doubles it). The configured guard is a
  floor, and is added to every window on top of the answered requests' own delays.

Time is a parameter (``clock`` returns seconds, ``sleep`` waits): tests drive a fake clock.
Every process's requests on the account are counted through the state store (``shared``)."""

from __future__ import annotations

import bisect
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass

import anyio

from bulkrunner.errors import WaitTooLong
from bulkrunner.limits.adaptive import AdaptiveRate
from bulkrunner.limits.rates import DEFAULT_GUARD, ceiling
from bulkrunner.limits.shared import LEASE, SharedBudget, Sharing
from bulkrunner.limits.windows import Window, earliest
from bulkrunner.model import Rate, count

log = logging.getLogger("bulkrunner")

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


_RECENT = 512  # grant times kept to measure the sending rate
_EXACT_ETA = 5_000  # requests up to which eta() steps through the windows
_RTT_SAMPLES = 200  # round-trip times kept to learn the guard from
# The spread is this quantile of the round-trip times above the fastest, and the learned guard
# this margin times the spread: for jitter uniform over [0, J], about 1.17 J. A quantile rather
# than the slowest answer, so that one stalled answer (a busy client) does not widen every window.
_RTT_QUANTILE = 0.9
_GUARD_MARGIN = 1.3
_GUARD_CAP = 0.25  # the learned or widened guard is at most this share of the shortest window
_LEARN_EVERY = 8  # past 2 * this many samples, the spread is recomputed every this many answers
# An answered request holds its window until its answer came, less the fastest round trip, but
# at most this share of the shortest window longer than its write: a longer delay is taken to be
# the server's work after counting it. Wider than the guard's cap: a stall that held a batch of
# requests back (a server's garbage collection) is still held in full.
_ANSWER_CAP = 0.5
# The fastest round trip seen stands for the fixed part of every round trip only as well as the
# few fastest agree: a way back faster than on the fastest one may hide a slower way in. So the
# fastest is taken to be this margin times the gap between the fastest and the _FASTEST-th
# fastest below it; and until _TRUSTED round trips are known, answers hold windows until they
# came. Measured on a fake clock with jitter on both ways (see the tests).
_FASTEST = 10
_FASTEST_MARGIN = 3.0
_TRUSTED = 20


@dataclass(frozen=True, slots=True)
class Grant:
    """One admitted request: when, and its sequence number among all grants (from 1)."""

    at: float
    seq: int


@dataclass(slots=True)
class _Request:
    """The request a task makes after its grant: where its slot stands, when it was written."""

    limiter: SlidingWindowLimiter
    slot: float
    seq: int | None = None  # its number in the shared budget, when it was claimed by itself
    recorded: float = 0.0  # its time there
    written: float | None = None


# The grant of the request the current task is about to send (each worker is its own task).
_CURRENT: ContextVar[_Request | None] = ContextVar("bulkrunner_grant", default=None)


def request_written() -> None:
    """The current task's request is being written to the socket: stamp its slot now."""
    request = _CURRENT.get()
    if request is not None:
        request.limiter._written(request)


def answer_received(status: int | None) -> None:
    """The current task's request got an answer with ``status``: learn its round-trip time."""
    request = _CURRENT.get()
    if request is not None:
        _CURRENT.set(None)
        request.limiter._answered(request, status)


class SlidingWindowLimiter:
    """Admit requests so that no window of any ``rates`` entry ever holds more than its limit.

    Waiters are served in arrival order. On top of the windows:

    - an answered request holds its windows until its answer came less the fastest round trip;
      one in flight holds them for the guard, learned from round-trip times (see the module
      docstring): ``guard`` is its value now, never below the ``guard`` given, which is also
      added to every answered request's own delay;
    - ``pause(seconds)`` holds everyone back, e.g. after a 429 whose Retry-After says the key's
      budget is spent;
    - ``throttled()`` tells the adaptive controller a 429 came back: the allowed rate drops and
      then recovers (see ``adaptive``), for when the server's real limit is below the configured;
    - ``observe(limit, remaining, reset, grant)`` reads the ``X-RateLimit-*`` headers. A limit
      below the configured one is taken to hold over the shortest configured window and is
      enforced from then on; without a limit, a spent budget while the configured windows still
      have room makes everyone wait for the reset instead of drawing 429s.

    With a ``budget`` (``shared``), a request goes only once every process's requests on the
    account leave room for it too, and a pause (``paused_until``) is every process's.

    A wait the server asks for is bounded (``--max-wait``): a reset longer than ``max_pause``,
    or a slot that the announced limit puts further off than ``acquire``'s ``max_wait`` (where
    the configured limits would not), raises :class:`WaitTooLong` instead of being waited for.
    """

    def __init__(
        self,
        rates: Sequence[Rate],
        *,
        guard: float = DEFAULT_GUARD,
        adaptive: bool = True,
        clock: Clock = time.monotonic,
        sleep: Sleep = anyio.sleep,
        budget: SharedBudget | None = None,
    ) -> None:
        if not rates:
            raise ValueError("at least one rate is required")
        self.rates = tuple(rates)
        self._floor = guard
        self._cap = max(guard, _GUARD_CAP * min(rate.seconds for rate in self.rates))
        self._learned = 0.0  # the guard the round-trip times ask for
        self._fastest: list[float] = []  # the fastest few round trips seen, in order
        self._answer_cap = _ANSWER_CAP * min(rate.seconds for rate in self.rates)
        self._rtts: deque[float] = deque(maxlen=_RTT_SAMPLES)
        self._unlearned = 0  # answers since the spread was last computed
        self._windows = [Window(rate) for rate in self.rates]
        self.learned: Rate | None = None  # a lower limit the server announced
        self.adaptive = AdaptiveRate(ceiling(self.rates)) if adaptive else None
        self._clock = clock
        self._sleep = sleep
        self.paused_until = float("-inf")
        self._own_pause = float("-inf")  # the pause of this process's 429s (held to --max-wait)
        self._recent: deque[float] = deque(maxlen=_RECENT)
        self.granted = 0
        # Taken without a checkpoint when free, as asyncio.Lock is: an uncontended grant does not
        # yield to the loop.
        self._lock = anyio.Lock(fast_acquire=True)
        self.shared = Sharing(budget, self.rates) if budget is not None else None
        if self.shared is not None:  # a following or resumed command starts with what it holds
            sent, self.paused_until = self.shared.recent(clock() - max(r.seconds for r in rates))
            self.seed([clock() - at for at in sent])

    @property
    def guard(self) -> float:
        """Seconds added to every window now: the floor, or what was learned (up to the cap)."""
        return max(self._floor, min(self._cap, self._learned))

    def wait_time(self, now: float, learned: bool = True) -> float:
        """Seconds from ``now`` until the next request may go (0 when it may go at once); with
        ``learned`` false, as if the server had announced no limit."""
        windows = self._windows if learned else self._windows[: len(self.rates)]
        wait = max(0.0, self.paused_until - now, self._windows_wait(now, windows))
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
                window.add(at)

    @property
    def effective_rates(self) -> tuple[Rate, ...]:
        """The configured limits, and the lower one the server announced, if it did."""
        return self.rates if self.learned is None else (*self.rates, self.learned)

    def pause(self, seconds: float) -> None:
        """Admit nothing for ``seconds`` from now (never shortens an earlier pause), in every
        process on the account when its budget is shared."""
        self.paused_until = max(self.paused_until, self._clock() + seconds)
        self._own_pause = max(self._own_pause, self.paused_until)
        if self.shared is not None:
            self.shared.pause(self.paused_until)

    def throttled(self) -> None:
        """A 429 came back: slow down (adaptive control), on top of any Retry-After pause."""
        if self.adaptive is not None:
            now = self._clock()
            self.adaptive.on_throttle(now, self.sending_rate(now))
        # The windows were held and still a request arrived early: the arrival jitter is wider
        # than the guard allowed for.
        self._floor = max(self._floor, min(self._cap, 2 * self.guard))

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
        # A configured N/S with N <= limit holds limit/shortest already (S is not shorter).
        held = min(rate.limit for rate in self.rates)
        if limit >= held or (self.learned is not None and limit >= self.learned.limit):
            return
        self.learned = Rate(limit, shortest.seconds)
        window = Window(self.learned)
        for at in self._recent:
            if at > now - window.seconds - self.guard:
                window.add(at)
        self._windows.append(window)
        log.warning(
            "the server announces a limit of %s (X-RateLimit-Limit), below the "
            "configured %s: holding %s from now on",
            count(limit, "request"),
            shortest,
            self.learned,
        )

    def sending_rate(self, now: float, span: float = 1.0) -> float:
        """Requests per second granted over the last ``span`` seconds (over the shorter span
        the grant times kept cover, when more were granted in ``span`` than they hold)."""
        recent = self._recent
        inside = sum(1 for at in recent if at > now - span)
        if inside == len(recent) == recent.maxlen and now > recent[0]:
            return inside / (now - recent[0])
        return inside / span

    def eta(self, count: int, now: float) -> float:
        """Seconds until ``count`` more requests can have been granted, at the earliest, given
        what the windows hold now (past ``_EXACT_ETA`` requests: count over the ceiling)."""
        if count > _EXACT_ETA:
            return count / min(rate.per_second for rate in self.effective_rates)
        guard, answered, paused = self.guard, self._answered_shift(), self.paused_until
        return earliest(self._windows, count, max(now, paused), guard, answered) - now

    async def acquire(self, max_wait: float = math.inf) -> Grant:
        """Wait for a slot in every window; returns the grant, stamped with the clock.

        The next request the calling task sends is taken to be the one granted: when the sender
        reports it written (``request_written``), its slot moves to that time.

        Raises :class:`WaitTooLong` rather than wait longer than ``max_wait`` for a slot that only
        the limit the server announced holds back (a server saying "1 request" over an hour-long
        window would make every request wait the hour), or for a pause a 429 put on the account,
        in this process or another."""
        async with self._lock:
            while True:
                now = self._clock()
                wait = self.wait_time(now)
                learned = self.learned
                if wait > max_wait and learned and self.wait_time(now, learned=False) < wait:
                    held = f"X-RateLimit-Limit {learned.limit}, held over {learned.seconds:g}s"
                    raise WaitTooLong(wait, held)
                if wait <= 0 and self.shared is not None:  # and every process's requests
                    room = max(1, self._room(now, now + LEASE)) if self.shared.most > 1 else 1
                    wait = self.shared.ask(self.effective_rates, now, self._floor, self.guard, room)
                    self.paused_until = max(self.paused_until, now + self.shared.paused)
                others = self.paused_until > self._own_pause  # another command's 429, longer
                if others and self.paused_until - now > max_wait:
                    raise WaitTooLong(self.paused_until - now, "a 429 on this account")
                if wait <= 0:
                    for window in self._windows:
                        window.add(now)
                    self._recent.append(now)
                    self.granted += 1
                    seq = self.shared.granted if self.shared is not None else None
                    _CURRENT.set(_Request(self, now, seq, now))
                    return Grant(now, self.granted)
                await self._sleep(wait)

    def _written(self, request: _Request) -> None:
        request.written = now = self._clock()
        if self.shared is not None:  # every process holds it from now too
            request.recorded = self.shared.written(request.seq, request.recorded, now)
        if now > request.slot:
            for window in self._windows:
                window.move(request.slot, now)
            request.slot = now

    def _answered(self, request: _Request, status: int | None) -> None:
        written = request.written
        if written is None:
            return  # never written: its grant stays its stamp
        now = self._clock()
        if status is not None and status < 500:
            # A round trip the server's own trouble did not stretch, nor a lost connection cut
            # short: one to learn the spread and the fastest from.
            bisect.insort(self._fastest, now - written)
            del self._fastest[_FASTEST:]
            self._rtts.append(now - written)
            self._unlearned += 1
            if len(self._rtts) >= 2 and (
                len(self._rtts) <= 2 * _LEARN_EVERY or self._unlearned >= _LEARN_EVERY
            ):
                self._learn_guard()
        if not self._fastest:
            return  # no round trip known yet: the guard holds it
        # The server counted the request before answering it, so no later than the answer came,
        # less the fastest round trip. Past the cap, the delay is taken as the server's work
        # after counting it (a slow write), and holds the window no longer.
        fastest = self._fastest[0]
        at = min(max(now, written + fastest), written + fastest + self._answer_cap)
        for window in self._windows:
            window.answer(request.slot, at)
        if self.shared is not None:  # every process holds it as this one does (less its guard)
            held = at + self._answered_shift() - self._floor
            self.shared.answered(request.seq, request.recorded, held)

    def _learn_guard(self) -> None:
        """Keep the guard as wide as the spread of the round-trip times: one-way jitter is at
        most that. With few samples their spread understates the real one, hence (n+1)/(n-1),
        which makes the range of n uniform draws an unbiased estimate of the full width."""
        self._unlearned = 0
        rtts = sorted(self._rtts)
        n = len(rtts)
        spread = rtts[min(n - 1, int(_RTT_QUANTILE * n))] - rtts[0]
        self._learned = _GUARD_MARGIN * spread * (n + 1) / (n - 1)

    def _answered_shift(self) -> float:
        """What is added to an answer's time to hold its window: the least guard, less the fastest
        round trip as far as it is known (see ``_FASTEST_MARGIN``). Applied when the windows are
        read, so that answers already held follow what is learned of the fastest later."""
        if len(self._rtts) < _TRUSTED:
            return self._floor  # held until the answer came: few round trips tell little
        fastest, tenth = self._fastest[0], self._fastest[-1]
        return self._floor - max(0.0, fastest - _FASTEST_MARGIN * (tenth - fastest))

    def _room(self, now: float, at: float) -> int:
        """How many requests this process's own windows (and its adaptive rate) let go from
        ``now`` to ``at``: a reservation of more would count the rest as sent, in vain."""
        room = min(w.room(at, self.guard, self._answered_shift()) for w in self._windows)
        rate = self.adaptive.rate(now) if self.adaptive else None
        return room if rate is None else min(room, 1 + math.floor((at - now) * rate))

    def _windows_wait(self, now: float, windows: Sequence[Window] | None = None) -> float:
        guard, answered = self.guard, self._answered_shift()
        return max(window.wait(now, guard, answered) for window in windows or self._windows)

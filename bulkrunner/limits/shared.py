"""The account's budget shared with every other process: what a limiter asks of it, and how.

A limiter admits a request only once the account's shared budget has room for it too. The
budget (``SharedBudget``) counts the requests every process sends on the account, as each was
granted; the state store's request ledger implements it (``bulkrunner.records.budget``, a layer
up: the limiter knows only this interface). The limiter's own windows hold its own requests
more closely (from their write, until their answers came), so the two are asked in turn, and
a request goes when both have room.

- **Claims or reservations.** Below a few hundred requests a second, each request is claimed by
  itself: a transaction (about 0.1 ms, 1% of the time between requests at 100/s) that records
  it as granted. Above, the requests of the next ``LEASE`` seconds are reserved at once, one
  transaction for several, recorded at the lease's end: every process's windows hold them up to
  ``LEASE`` longer, ``LEASE`` / S of the throughput (the state store's design page measured
  both: a claim each cost 10% of the time between requests at 1,000/s, reserving 8 ms ahead 2%).
  A reserved request not sent by the lease's end is given up: it counts as sent. So a
  reservation asks for no more than this process's own windows let go before the lease ends
  (asking for ``LEASE``'s worth regardless gave up one request in twelve at 1,000/s: a tenth
  of the throughput).
- **The guard.** While only this process sends on the account, the budget's windows are held
  with the least guard (``--guard``): this process's own windows, held from each request's
  write and until its answer, are the ones that bind, and a wider guard would only cost
  throughput. Once another process's requests are seen (the account's requests are numbered:
  more came than this process asked for), the guard learned from round-trip times is added to
  the budget's windows too, since another process's requests may reach the server later than
  they were granted by as much as this process's own may (until a widest window after the last
  was seen).
- **Pauses.** A 429 says the account's budget is spent: its Retry-After is told to the budget,
  and every process's asks wait it out.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from bulkrunner.limits.rates import ceiling
from bulkrunner.model import Rate

log = logging.getLogger("bulkrunner")

# Seconds of requests a reservation asks for at a time, when that is at least two requests:
# the least total cost measured was at sqrt(T * S), about 13 ms at 1,000/s under a 1 s window
# (T: a transaction, about 0.17 ms); 8 ms costs 2.2% + 0.8% there.
LEASE = 0.008
_LEAST_WAIT = 1e-4  # seconds: a wait the budget gives is never taken as none


@dataclass(frozen=True, slots=True)
class Share:
    """What the shared budget answered: ``granted`` requests (0 to the ``most`` asked for);
    when none, ``wait``: the seconds until one may be; and ``last``: the number of the
    account's latest request, by any process, once this ask was recorded."""

    granted: int
    wait: float
    last: int
    paused: float = 0.0  # of ``wait``, the seconds the account's pause holds it (a 429's)


class BudgetLost(Exception):
    """The shared budget cannot be asked any more (its store failed): the limiter goes on with
    its own windows only, and says so."""


class SharedBudget(Protocol):
    """One account's requests as every process records them, in the limiter's clock."""

    def ask(
        self, rates: Sequence[Rate], now: float, guard: float, most: int, until: float
    ) -> Share:
        """Up to ``most`` requests at ``now``, to be sent until ``until``, if every window of
        ``rates`` (each ``guard`` longer), counting every process's requests, has room and no
        pause holds the account; recorded when granted. Raises BudgetLost."""
        ...

    def sent(self, seq: int, at: float) -> None:
        """The request numbered ``seq`` (``Share.last`` of the ask that granted it alone) was
        sent at ``at``, later than it was recorded: it is recorded then."""
        ...

    def pause(self, until: float) -> None:
        """No process's ask succeeds before ``until`` (never shortens an earlier pause)."""
        ...

    def recent(self, since: float) -> tuple[list[float], float]:
        """The times of every process's requests on the account since ``since``, in order,
        and until when a pause holds it (a time already past when none does)."""
        ...


class Sharing:
    """A limiter's side of its account's shared budget: asks for each request (or reserves a
    few ahead), tells it of pauses, and notices other processes on the account. A budget that
    fails (``BudgetLost``) is let go of, with a warning: the run goes on within its own limits."""

    def __init__(self, budget: SharedBudget, rates: Sequence[Rate]) -> None:
        self.budget: SharedBudget | None = budget
        self.most = max(1, math.floor(ceiling(rates) * LEASE))
        self._widest = max(rate.seconds for rate in rates)
        self._held = 0  # requests reserved and not yet granted here
        self._until = -math.inf  # until when they may be sent
        self._last: int | None = None  # the account's latest request after this process's ask
        self.others = -math.inf  # when another process's request was last seen
        self.others_sent = 0  # other processes' requests seen between this process's asks
        self.granted: int | None = None  # the number of the request just claimed by itself
        self.paused = 0.0  # the seconds the last ask was held by the account's pause
        self._least = 0.0  # the least guard, as last given

    def ask(
        self, rates: Sequence[Rate], now: float, least: float, learned: float, usable: int
    ) -> float:
        """0.0 when a request may go at ``now`` as far as every process's requests allow (it is
        recorded), else the seconds until one may. ``least``, ``learned``: the guards (see the
        module's docstring); ``usable``: how many this process could send before a lease ends
        (a reservation asks for no more: those it could not send would count as sent)."""
        self.granted, self._least, self.paused = None, least, 0.0
        if self._held and now <= self._until:
            self._held -= 1
            return 0.0
        if self.budget is None:
            return 0.0
        guard = learned if now - self.others <= self._widest + learned else least
        most = min(self.most, usable)
        until = now + LEASE if most > 1 else now
        try:
            share = self.budget.ask(rates, now, guard, most, until)
        except BudgetLost as lost:
            self._lose(lost)
            return 0.0
        if self._last is not None and share.last != self._last + share.granted:
            self.others = now  # more were recorded than this process asked for
            self.others_sent += share.last - self._last - share.granted
        self._last = share.last
        if share.granted:
            self._held, self._until = share.granted - 1, until
            self.granted = share.last if share.granted == 1 else None
            return 0.0
        self._held, self.paused = 0, share.paused
        return max(share.wait, _LEAST_WAIT)

    def written(self, seq: int | None, recorded: float, at: float) -> float:
        """The request claimed by itself (numbered ``seq``), recorded at ``recorded``, was
        written at ``at``: when that is later than the least guard covers (the first requests
        of a run wait for their connection to open), it is recorded then, so that every process
        holds it from when it went. The time it is recorded at."""
        return at if self._moved(seq, recorded, at) else recorded

    def answered(self, seq: int | None, recorded: float, held: float) -> None:
        """The request was answered: its process holds it until ``held`` (the answer, less the
        fastest round trip: the latest the server can have counted it), and so does every
        process when that is later than the least guard covers."""
        self._moved(seq, recorded, held)

    def _moved(self, seq: int | None, recorded: float, at: float) -> bool:
        if self.budget is None or seq is None or at - recorded <= self._least:
            return False
        try:
            self.budget.sent(seq, at)
        except BudgetLost as lost:
            self._lose(lost)
        return True

    def pause(self, until: float) -> None:
        """Every process on the account admits nothing before ``until``."""
        if self.budget is not None:
            try:
                self.budget.pause(until)
            except BudgetLost as lost:
                self._lose(lost)

    def recent(self, since: float) -> tuple[list[float], float]:
        """Every process's requests on the account since ``since``, and until when a pause
        holds it (none once the budget failed)."""
        if self.budget is not None:
            try:
                return self.budget.recent(since)
            except BudgetLost as lost:
                self._lose(lost)
        return [], -math.inf

    def _lose(self, lost: BudgetLost) -> None:
        log.warning("%s: going on within this run's own limits only", lost)
        self.budget = None

"""The shared request ledger: every request any bulkrunner process sends on an account is
recorded in the state store, and every limiter on that account counts them, so consecutive
commands and concurrent jobs share the account's windows.

``Ledger.claim(account, rates, now, guard)`` is one write transaction: it reads the account's
latest requests, whoever sent them, and either records one more at ``now`` (0.0: send it) or
records nothing and says how many seconds until a slot frees. The write lock is taken before
the read (``BEGIN IMMEDIATE``), so no other process can record a request between the count and
the record: claims of every process take turns, each seeing all those before it.
``Ledger.reserve`` does the same for up to ``most`` requests at once, to be sent at any time
until ``until``: one transaction for a few requests.

Why the windows hold across processes. Each request is recorded no earlier than it is sent (a
claim at ``now`` is sent after ``now``; a reservation is recorded at ``until``), and k requests
claimed at ``now`` are sent no earlier than ``now``; they are granted only when at most N - k
recorded requests are later than ``now - S - guard``. Take any window of S seconds and, of the
requests sent in it, those of the claim that came last: the window holds one of them, sent at or
after ``now``, so it starts after ``now - S``; every other request sent in it was recorded
earlier, no earlier than it was sent, so later than ``now - S``: at most N - k of them, and k of
this claim. At most N.

Each account's requests are numbered in the order they are recorded, and a request is recorded
at the later of its own time and the account's latest, so times never decrease with numbers and
the N-th latest is one lookup by number (a reservation's requests are one row, holding the
numbers up to its ``seq``). Recording a request later than it was sent is safe (it only holds
the windows longer): a process whose clock read came just before another's claim loses that
instant, no more.

Times are wall-clock seconds (``time.time()``), the clock every process of the machine shares,
always passed in by the caller: nothing here reads a clock. A request older than the account's
reach (the widest window any limiter held on it, and never less than SmartLead's hour, plus a
minute) can no longer count: every 64th request on an account lets those go, so the ledger
holds about the requests of the widest window.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from bulkrunner.limits.rates import DEFAULT_RATES
from bulkrunner.limits.shared import BudgetLost, Share
from bulkrunner.model import Rate
from bulkrunner.records.store import StateStore, StoreError

# The least reach of every account: SmartLead's widest published window, which holds whatever
# a run's own limits say (a limiter that only holds 10/2 must not prune what another's hour needs).
_LEAST_REACH = max(rate.seconds for rate in DEFAULT_RATES)
_STALE = 60.0  # seconds past the reach before a request is let go: clocks read a little apart
_PRUNE_EVERY = 64  # requests on an account between two prunings of its old ones


@dataclass(frozen=True, slots=True)
class Reservation:
    """What ``Ledger.reserve`` granted: ``granted`` requests (0 to ``most``), each to be sent
    at any time from the claim until ``until`` and not after; or, when none, ``wait``: the
    seconds until one may be (the account paused, or a window full)."""

    granted: int
    until: float
    wait: float = 0.0
    last: int = 0  # the number of the account's latest request once this was recorded
    paused: float = 0.0  # the seconds the account's pause (a 429's, any process's) holds it


def reach(rates: Sequence[Rate], guard: float = 0.0) -> float:
    """How far back ``rates`` (each window held ``guard`` seconds longer) look."""
    return max((_LEAST_REACH, *(rate.seconds + guard for rate in rates)))


class Ledger:
    """The requests of every account, as every process records them (see the module's
    docstring). ``account`` is always ``folders.account_id``."""

    def __init__(self, store: StateStore) -> None:
        self._store = store

    def claim(self, account: str, rates: Sequence[Rate], now: float, guard: float = 0.0) -> float:
        """Record a request on ``account`` at ``now`` and return 0.0 if every window of
        ``rates`` (each ``guard`` seconds longer), counting every process's requests, has room
        for it and no pause holds the account; else record nothing and return the seconds until
        one may (claim again then: another process may take the slot meanwhile). The request
        is to be sent at once: the windows count it from ``now``."""
        return self.reserve(account, rates, now, guard).wait

    def reserve(
        self,
        account: str,
        rates: Sequence[Rate],
        now: float,
        guard: float = 0.0,
        most: int = 1,
        until: float | None = None,
    ) -> Reservation:
        """As ``claim``, for up to ``most`` requests at once (as many as every window has room
        for at ``now``, at least one, or none and the wait), each to be sent at any time from
        ``now`` until ``until`` (default ``now``): they are recorded at ``until``, so the
        windows of every process count them until ``until`` + S. A request not sent by then
        is lost, not given back: it counts as sent."""
        until = now if until is None else until
        if most < 1 or not until >= now:
            raise ValueError(f"reserve: most must be >= 1 and until >= now, got {most}, {until}")
        most = min((most, *(rate.limit for rate in rates)))
        with self._store.write() as db:
            key = self._store.account(db, account, reach(rates, guard))
            room, wait, last, at, paused = _room(db, key, rates, now, guard, most)
            if room == 0:
                return Reservation(0, until, wait, last, max(0.0, paused - now))
            db.execute(_INSERT, (key, last + room, room, max(until, at)))
            if (last + room) // _PRUNE_EVERY != last // _PRUNE_EVERY:
                _prune(db, key, now)
        return Reservation(room, until, last=last + room)

    def record(self, account: str, times: Iterable[float], rates: Sequence[Rate] = ()) -> None:
        """Record requests sent on ``account`` at ``times`` without asking (each at the latest
        of its time and those recorded before it), e.g. those a process sent without the store.
        ``rates``: the windows they were held to (how far back they matter)."""
        with self._store.write() as db:
            key = self._store.account(db, account, reach(rates))
            _, _, last, at, _ = _room(db, key, (), 0.0, 0.0, 1)
            rows: list[tuple[int, int, int, float]] = []
            for time in sorted(times):
                at = max(at, time)
                last += 1
                if rows and rows[-1][3] == at:  # one row for the requests of one time
                    rows[-1] = (key, last, rows[-1][2] + 1, at)
                else:
                    rows.append((key, last, 1, at))
            db.executemany(_INSERT, rows)

    def recent(self, account: str, since: float) -> list[float]:
        """The times of every process's requests on ``account`` at or after ``since``, in order
        (e.g. to seed a limiter of this process with them)."""
        with self._store.read() as db:
            rows = db.execute(
                "SELECT r.at, r.n FROM requests r JOIN accounts a ON a.id = r.account "
                "WHERE a.identity = ? AND r.at >= ? ORDER BY r.seq",
                (account, since),
            ).fetchall()
        return [at for at, n in rows for _ in range(n)]

    def sent(self, account: str, seq: int, at: float) -> None:
        """The request numbered ``seq`` on ``account`` (claimed by itself) was sent at ``at``,
        later than it was recorded: it, and every request recorded after it, is recorded no
        earlier than ``at`` from now on (later only holds the windows longer; the times still
        never decrease with numbers)."""
        with self._store.write() as db:
            db.execute(
                "UPDATE requests SET at = max(at, :at) WHERE seq >= :seq "
                "AND account = (SELECT id FROM accounts WHERE identity = :account)",
                {"account": account, "seq": seq, "at": at},
            )

    def paused(self, account: str) -> float:
        """Until when a pause holds ``account`` (0.0, or earlier than now, when none does)."""
        with self._store.read() as db:
            found = db.execute(
                "SELECT paused_until FROM accounts WHERE identity = ?", (account,)
            ).fetchone()
        return float(found[0]) if found else 0.0

    def pause(self, account: str, until: float) -> None:
        """No claim on ``account`` succeeds before ``until`` (a 429's Retry-After: the account's
        budget is spent for every process); never shortens an earlier pause."""
        with self._store.write() as db:
            key = self._store.account(db, account, _LEAST_REACH)
            db.execute(
                "UPDATE accounts SET paused_until = max(paused_until, ?) WHERE id = ?",
                (until, key),
            )

    def prune(self, now: float) -> int:
        """Let go of every account's requests past its reach at ``now``; how many went."""
        held = "SELECT coalesce(sum(n), 0) FROM requests"
        with self._store.write() as db:
            (before,) = db.execute(held).fetchone()
            for (key,) in db.execute("SELECT id FROM accounts").fetchall():
                _prune(db, key, now)
            (after,) = db.execute(held).fetchone()
        return int(before - after)


class AccountBudget:
    """One account's ledger as a limiter asks it (``limits.shared.SharedBudget``): in the
    limiter's clock, which ``offset()`` (wall-clock seconds less the limiter's clock, read as
    each call is made) turns into the ledger's; a store that fails is ``BudgetLost``."""

    def __init__(self, ledger: Ledger, account: str, offset: Callable[[], float]) -> None:
        self._ledger = ledger
        self._account = account
        self._offset = offset

    def ask(
        self, rates: Sequence[Rate], now: float, guard: float, most: int, until: float
    ) -> Share:
        shift, account = self._offset(), self._account
        try:
            got = self._ledger.reserve(account, rates, now + shift, guard, most, until + shift)
        except StoreError as exc:
            raise BudgetLost(str(exc)) from None
        return Share(got.granted, got.wait, got.last, got.paused)

    def sent(self, seq: int, at: float) -> None:
        try:
            self._ledger.sent(self._account, seq, at + self._offset())
        except StoreError as exc:
            raise BudgetLost(str(exc)) from None

    def pause(self, until: float) -> None:
        try:
            self._ledger.pause(self._account, until + self._offset())
        except StoreError as exc:
            raise BudgetLost(str(exc)) from None

    def recent(self, since: float) -> tuple[list[float], float]:
        shift = self._offset()
        try:
            times = self._ledger.recent(self._account, since + shift)
            paused = self._ledger.paused(self._account)
        except StoreError as exc:
            raise BudgetLost(str(exc)) from None
        return [at - shift for at in times], paused - shift


_INSERT = "INSERT INTO requests (account, seq, n, at) VALUES (?, ?, ?, ?)"

# In one statement (a claim is on every request's path): the account's pause, the number and
# time of its latest request, and for each window N/S (parameters N and now - S - guard):
# - for a claim, the time of the N-th latest request (number last - N + 1: the target) if it is
#   later than now - S - guard (then a request granted now would be the N + 1-th in a window: it
#   must wait until that one is S + guard old);
# - for a reservation of up to ``most``, how many numbers from the target on come before
#   the first request later than now - S - guard (each from it on holds back one of the
#   ``most``): of the rows numbered below target + most - 1, the first later than that; else the
#   row holding number target + most - 1, if it is; else none (``most``). Times never decrease
#   with numbers: a few rows are read, however many requests the window holds.
_ROOM = (
    "SELECT a.paused_until, r.seq, r.at{} FROM accounts a LEFT JOIN requests r "
    "ON r.account = a.id AND r.seq = (SELECT max(seq) FROM requests WHERE account = a.id) "
    "WHERE a.id = :key"
)
_TARGET = "r.seq - :n{i} + 1"
_FIRST = (
    ", (SELECT CASE WHEN seq - n + 1 <= {target} AND at > :t{i} THEN at END FROM requests "
    "WHERE account = :key AND seq >= {target} ORDER BY seq LIMIT 1)"
)
_BLOCKED = (
    ", coalesce((SELECT max(seq - n + 1, {target}) FROM requests WHERE account = :key "
    "AND seq >= {target} AND seq < {target} + :most - 1 AND at > :t{i} ORDER BY seq LIMIT 1), "
    "(SELECT CASE WHEN at > :t{i} THEN max(seq - n + 1, {target}) END FROM requests "
    "WHERE account = :key AND seq >= {target} + :most - 1 ORDER BY seq LIMIT 1), "
    "{target} + :most) - ({target})"
)
_QUERIES: dict[tuple[int, bool], str] = {}


def _query(windows: int, many: bool) -> str:
    """The statement for ``windows`` windows: their N-th latest requests, or (``many``) the
    room each has for up to ``most``."""
    query = _QUERIES.get((windows, many))
    if query is None:
        parts = []
        for i in range(windows):
            target = _TARGET.format(i=i)
            parts.append((_BLOCKED if many else _FIRST).format(target=target, i=i))
        query = _QUERIES[windows, many] = _ROOM.format("".join(parts))
    return query


def _room(
    db: sqlite3.Connection,
    key: int,
    rates: Sequence[Rate],
    now: float,
    guard: float,
    most: int,
) -> tuple[int, float, int, float, float]:
    """How many of ``most`` requests may go on the account at ``now`` (its pause over, and
    each N/S of ``rates`` holding at most N - k requests later than now - S - guard; one let go
    by pruning is past every window); when none, the seconds until one may; the number and
    time of its latest request (0 and -inf when none); and until when it is paused. ``most`` is
    at most every N."""
    bounds = [(rate.limit, now - rate.seconds - guard) for rate in rates]
    parameters: dict[str, float] = {"key": key, "most": most}
    for i, (limit, start) in enumerate(bounds):
        parameters |= {f"n{i}": limit, f"t{i}": start}
    found = db.execute(_query(len(rates), most > 1), parameters).fetchone()
    paused, last, at = found[:3]
    room, wait = (most, 0.0) if paused <= now else (0, paused - now)
    if last is not None and rates:
        if most > 1:
            room = min(room, *found[3:])
            if room == 0:  # how long until one may: as for a claim
                found = db.execute(_query(len(rates), False), parameters).fetchone()
        if room == 0 or most == 1:
            for (_, start), first in zip(bounds, found[3:], strict=True):
                if first is not None:  # the N-th latest is in the window: nothing may go
                    room, wait = 0, max(wait, first - start)
    return room, wait, (last or 0), (float("-inf") if at is None else at), float(paused)


def _prune(db: sqlite3.Connection, key: int, now: float) -> None:
    """Let go of the account's requests past its reach at ``now``: the rows before the first
    one still inside (times never decrease with numbers, so only the few let go are read)."""
    db.execute(
        "DELETE FROM requests WHERE account = :key AND seq < coalesce((SELECT seq FROM requests "
        "WHERE account = :key AND at >= :now - (SELECT reach FROM accounts WHERE id = :key) "
        "- :stale ORDER BY seq LIMIT 1), 9223372036854775807)",
        {"key": key, "now": now, "stale": _STALE},
    )

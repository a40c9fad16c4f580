"""The model every other module shares: rows, rejections, outcomes, answers, changes, stats.

Plain data, no pandas, no I/O: the async core (limiter, engine, transport) and the file-facing
modules (loading, validation, report) meet here.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Awaitable, Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing: `run --help` parses
if TYPE_CHECKING:  # rates with Rate, and imports no more of the model than it needs
    from datetime import datetime
    from typing import Any, TypeVar

    K = TypeVar("K", bound=Hashable)
    V = TypeVar("V")

# The longest window a rate may have: a month. Longer is no limit anyone states, and a window of
# 1e308 seconds, finite as a number, overflows to infinity as soon as two are added.
MAX_WINDOW = 31 * 24 * 3600


@dataclass(frozen=True, slots=True)
class Rate:
    """At most ``limit`` requests in any window of ``seconds`` seconds."""

    limit: int
    seconds: float

    def __post_init__(self) -> None:
        if self.limit < 1:
            raise ValueError(f"rate limit must be at least 1 request, got {self.limit}")
        if not 0 < self.seconds <= MAX_WINDOW:  # false for NaN too
            raise ValueError(
                f"rate window must be a positive number of seconds up to {MAX_WINDOW} "
                f"(31 days), got {self.seconds}"
            )

    @classmethod
    def parse(cls, text: str) -> Rate:
        """Parse ``"N/SECONDS"`` such as ``"10/2"`` or ``"1000/3600"``."""
        count, sep, seconds = text.strip().partition("/")
        try:
            if not sep:
                raise ValueError
            return cls(int(count), float(seconds))
        except ValueError:
            raise ValueError(
                f"invalid rate {text!r}: expected N/SECONDS with N a whole number of requests "
                f"and SECONDS a positive number up to {MAX_WINDOW} (31 days), e.g. 10/2"
            ) from None

    @property
    def per_second(self) -> float:
        return self.limit / self.seconds

    def __str__(self) -> str:
        return f"{self.limit}/{self.seconds:g}"


# The columns a report adds after the input's own, each with what it holds (the reference docs
# are made from it): a file that has them (at least ``row`` and ``status``) is a report, and as
# an input its result columns are recognised and not sent.
RESULT_COLUMN_MEANINGS: Mapping[str, str] = {
    "row": "the data row's number in your file, from 1 (blank rows not counted)",
    "status": "how the row ended: one of the statuses below",
    "http_status": "the last HTTP status received",
    "attempts": "requests sent for this row",
    "error": "why it failed, is invalid or is unverified (or a note on a row that succeeded: "
    "`outcome unknown, retried`)",
    "duration_ms": "from the row's first request to its last answer",
    "finished_at": "UTC time it finished",
    "before": "JSON of the fields the row changes, as they were (read from SmartLead first)",
    "after": "JSON of the same fields as the row sets them (or, by `plan`, would set them)",
}
RESULT_COLUMNS = tuple(RESULT_COLUMN_MEANINGS)
# An input column named like a result column (the status operation's ``status``) is echoed in
# the report under this prefix (``wanted_status``), and read back under its own name.
ECHO_PREFIX = "wanted_"


def echoed(column: str) -> str:
    """The name of input column ``column`` in a report (a lead's custom field ``Status`` too)."""
    return f"{ECHO_PREFIX}{column}" if column.lower() in RESULT_COLUMNS else column


def unechoed(column: str) -> str:
    """The input column a report's column ``column`` echoes (itself, unless renamed)."""
    name = column.removeprefix(ECHO_PREFIX)
    return name if column != name and name.lower() in RESULT_COLUMNS else column


class Status(enum.StrEnum):
    """How a row ended: the report's ``status``. Each one's meaning is in ``_MEANINGS`` below."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    INVALID = "invalid"
    NOT_ATTEMPTED = "not_attempted"
    DRY_RUN = "dry_run"
    UNCHANGED = "unchanged"
    MISMATCH = "mismatch"
    UNVERIFIED = "unverified"
    SUPPRESSED = "suppressed"
    DRIFTED = "drifted"

    @property
    def meaning(self) -> str:
        return _MEANINGS[self]


_MEANINGS: dict[Status, str] = {
    Status.SUCCEEDED: "SmartLead accepted every request of the row",
    Status.FAILED: "not applied, or not known to be: refused by SmartLead (any 4xx but 408 and "
    "429), still failing after `--max-attempts` tries, cancelled in flight (outcome unknown), "
    "its campaign missing (404) or unreadable for the backup, or refused before sending given "
    "the campaign's current state; `error` says why",
    Status.INVALID: "the row's cells cannot be sent as they are: never sent; `error` lists every "
    "reason",
    Status.NOT_ATTEMPTED: "not sent because the run stopped first (key rejected, outage, "
    "interrupted...); `--resume` or `retry` sends it",
    Status.DRY_RUN: "would be sent: a dry run's or a plan's row (nothing was sent)",
    Status.UNCHANGED: "every field already had the wanted value (a lead: the campaign holds it "
    "already, or an earlier row of the file is the same lead, named in `error`): nothing was "
    "sent",
    Status.MISMATCH: "applied, but `--verify` read back other values (the fields that differ "
    "are in `error`); counts as a failure",
    Status.UNVERIFIED: "applied, but `--verify` could not read it back (refused, still throttled "
    "or failing after `--max-attempts` tries, or a wait longer than `--max-wait`; `error` says "
    "why): whether it holds is not known; counts as a failure",
    Status.SUPPRESSED: "a lead on the `--suppress` list (its address, or its domain): never "
    "sent; `error` names the entry",
    Status.DRIFTED: "not sent: its campaign no longer has the values expected of it (a "
    "rollback's: those the run set; a saved plan's: its `before`), as someone changed it since, "
    "so it was left as it is; `error` names each field, its value now and the one expected; "
    "counts as a failure (`rollback --force` restores it anyway)",
}


# What an error says of a row whose request may have been applied though no answer said so (a
# timeout, a dropped connection, a run cut short): a lead's backup keeps such a row's lead.
OUTCOME_UNKNOWN = "outcome unknown"

# The statuses that leave nothing to do: a run whose rows all end so exits 0.
FINE = frozenset({Status.SUCCEEDED, Status.DRY_RUN, Status.UNCHANGED, Status.SUPPRESSED})


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one row ended."""

    status: Status
    http_status: int | None = None
    attempts: int = 0
    error: str = ""
    duration_ms: int | None = None
    finished_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Numbering:
    """The one way rows are numbered everywhere (a ``Row``, the report's ``row``, the journal,
    the events, the log): each row's 1-based data row number in its input file. A table read
    from an earlier report (``retry``) keeps its rows' numbers in that file: ``numbers``, by
    their position in the table."""

    numbers: Sequence[int] | None = None

    def __call__(self, position: int) -> int:
        """The number of the row at ``position`` (from 1) of the table read."""
        return self.numbers[position - 1] if self.numbers is not None else position

    def span(self, offset: int, size: int) -> Sequence[int]:
        """The numbers of the ``size`` rows after the first ``offset`` of the table read."""
        if self.numbers is None:
            return range(offset + 1, offset + size + 1)
        return self.numbers[offset : offset + size]


@dataclass(frozen=True, slots=True)
class Row:
    """A valid row: the campaign to update and the exact JSON body to send."""

    number: int  # its number (``Numbering``): the 1-based data row number in the input file
    campaign_id: int
    payload: Mapping[str, Any]
    account: str | None = None  # the ``account`` cell, stripped ("" when blank); None: no column
    applied: Outcome | None = None  # --verify resumed: how the stopped run ended it; read back


@dataclass(frozen=True, slots=True)
class Rejection:
    """An invalid row and every reason it cannot be sent."""

    number: int
    campaign_id: int | None
    error: str


@dataclass(frozen=True, slots=True)
class Validation:
    rows: tuple[Row, ...]
    rejections: tuple[Rejection, ...]

    @property
    def total(self) -> int:
        return len(self.rows) + len(self.rejections)


@dataclass(frozen=True, slots=True)
class Answer:
    """One request's result: an HTTP answer, or a transport failure (``status`` is None)."""

    status: int | None
    body: str = ""
    retry_after: float | None = None  # from the Retry-After header or the body's retry_after
    transport_error: str | None = None  # "timed out after 30s", "connection dropped: ..."
    outcome_unknown: bool = False  # the request may have reached the server: timeout, drop
    limit: int | None = None  # X-RateLimit-Limit: requests the server allows in its window
    remaining: int | None = None  # X-RateLimit-Remaining: requests left in the server's window
    reset: float | None = None  # X-RateLimit-Reset: seconds until that budget renews
    location: str | None = None  # a 3xx's Location header, key redacted (never followed)
    refused: bool = False  # the connection was refused: nothing listens at that address
    too_large: int | None = None  # the body was longer than this many bytes: left unread


@dataclass(frozen=True, slots=True)
class Change:
    before: Any  # the current value as GET shows it (None when unknown)
    after: Any  # the value the row sends


class Changes(Mapping[str, Change]):
    """What one row would change, field by field: a read-only mapping that holds every
    change's ``before`` and ``after`` in one tuple and its fields' names once for every row
    that changes the same fields (a dict of Change objects is ~280 bytes a row; this ~120, and a
    long run holds one for each row it sends)."""

    __slots__ = ("_names", "_sides")

    _names: tuple[str, ...]
    _sides: tuple[Any, ...]

    def __init__(self, changes: Mapping[str, Change] | None = None) -> None:
        found = changes or {}
        self._names = _names(tuple(found))
        self._sides = tuple(side for c in found.values() for side in (c.before, c.after))

    def __getitem__(self, name: str) -> Change:
        try:
            place = 2 * self._names.index(name)
        except ValueError:
            raise KeyError(name) from None
        return Change(self._sides[place], self._sides[place + 1])

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __repr__(self) -> str:
        return f"Changes({dict(self)!r})"

    def sides(self) -> Iterator[tuple[str, Any, Any]]:
        """Each field's name, before and after, in order (no ``Change`` made for each)."""
        sides = self._sides
        return zip(self._names, sides[::2], sides[1::2], strict=True)


_NAMES_MOST = 1_000  # distinct sets of changed fields remembered
_named: dict[tuple[str, ...], tuple[str, ...]] = {}


def _names(names: tuple[str, ...]) -> tuple[str, ...]:
    """One tuple for every row that changes the fields ``names``, in this order."""
    return remembered(_named, names, lambda: names, _NAMES_MOST)


def remembered(cache: dict[K, V], key: K, make: Callable[[], V], most: int) -> V:
    """``cache[key]``, made by ``make`` the first time: one object for every equal key. Past
    ``most`` keys, a new one is made each time and not kept (memory stays bounded)."""
    if key in cache:
        return cache[key]
    made = make()
    if len(cache) < most:
        cache[key] = made
    return made


@dataclass(slots=True)
class RunStats:
    """Every request of a run (or of one account's part of it): its writes and its reads (the
    current state before sending, ``--verify`` after), all of which count in the key's budget;
    the clock runs from the first request to the last answer, so the reads' time is in the
    elapsed time too. Counted as they go through the account's connection."""

    requests: int = 0  # writes and reads
    reads: int = 0  # of the requests, GETs: reading the current state, or --verify
    throttled: int = 0  # answers of 429
    retries: int = 0
    first_request: float | None = None  # the run's clock
    last_answer: float | None = None
    aborted: str | None = None  # why the run stopped early, if it did
    limits: tuple[Rate, ...] = ()  # the limits held in the end (a lower one may be learned)
    others: int = 0  # requests other processes sent on the account meanwhile (the state store)

    @property
    def sending_seconds(self) -> float:
        if self.first_request is None or self.last_answer is None:
            return 0.0
        return max(0.0, self.last_answer - self.first_request)

    @property
    def requests_per_second(self) -> float:
        seconds = self.sending_seconds
        return self.requests / seconds if seconds > 0 else 0.0


def _utc_now() -> datetime:
    from datetime import UTC, datetime  # (not needed to start: `--help` imports this module)

    return datetime.now(UTC)


async def _sleep(seconds: float) -> None:
    import anyio

    await anyio.sleep(seconds)


@dataclass(frozen=True, slots=True)
class Clock:
    """Time as a run sees it: ``monotonic`` seconds (rate windows, retry delays, elapsed time),
    the ``wall`` time (UTC: reports, journals, file names) and ``sleep``. Every command takes
    one and passes it down to the limiter, the engine, the reads, the progress and the journal,
    so that a test runs whole runs on a fake clock; ``REAL_CLOCK`` is the real one."""

    monotonic: Callable[[], float] = time.monotonic
    wall: Callable[[], datetime] = _utc_now
    sleep: Callable[[float], Awaitable[None]] = _sleep

    def offset(self) -> float:
        """Wall-clock seconds (Unix time, which every process of the machine shares) less the
        monotonic clock, now: what turns one into the other."""
        return self.wall().timestamp() - self.monotonic()


REAL_CLOCK = Clock()


def count(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` and ``noun``, made plural (by ``plural``, else an added "s") unless ``n`` is 1."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"

"""Live progress: a bar on a terminal, a line every few seconds in a log (cron, --quiet).

Both read one :class:`Snapshot` of the run (every account's figures together:
``sending.watching``). The ETA is the larger of two measures, not guesswork: the requests left at
the rate the limits allow, and at the rate measured lately (latency or a small pool may hold a
run below its limits); never before the retries' waits are over.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from bulkrunner.limits.limiter import SlidingWindowLimiter
from bulkrunner.output.events import emit, events

log = logging.getLogger("bulkrunner")


@dataclass(frozen=True, slots=True)
class Snapshot:
    total: int  # rows to send: those found already as wanted are not
    succeeded: int
    failed: int
    retrying: int  # rows waiting for their next attempt
    rate: float  # requests per second over the last few seconds
    limits: str  # the limits held, e.g. "10/2, 60/60, 1000/3600"
    eta: float  # seconds the rows left need: the limits, the rate lately, the retries' waits
    next_retry: float | None = None  # seconds until the first row waiting for a retry is due
    unchanged: int = 0  # rows found already as wanted: not sent
    not_attempted: int = 0  # rows not sent because the run stopped (not failures)

    @property
    def done(self) -> int:
        return self.succeeded + self.failed

    def line(self) -> str:
        return (
            f"{self.done}/{self.total} {'row' if self.total == 1 else 'rows'} done: "
            f"{self.succeeded} succeeded, {self.failed} "
            f"failed, {self.retrying} retrying{self._next()}{self._apart()}; "
            f"{self.rate:.1f} requests/s within {self.limits}; about {_clock(self.eta)} left"
        )

    def _next(self) -> str:
        return f" (next in {_clock(self.next_retry)})" if self.next_retry is not None else ""

    def _apart(self) -> str:
        """The rows counted apart from those to send: ``; 3 already as wanted, not sent``."""
        apart = []
        if self.unchanged:
            apart.append(f"{self.unchanged} already as wanted, not sent")
        if self.not_attempted:
            apart.append(f"{self.not_attempted} not sent, the run stopped")
        return "".join(f"; {each}" for each in apart)


def estimate(
    limiter: SlidingWindowLimiter,
    left: int,
    retry_waits: Sequence[float],
    now: float,
    rate: float = 0.0,
) -> float:
    """Seconds until the ``left`` requests can have been sent: the larger of what the limits
    allow at best and what ``rate`` (requests per second measured lately; 0: not known yet)
    says, where latency or a small pool holds the run below its limits; never before the last
    row waiting for a retry is due."""
    measured = left / rate if rate > 0 else 0.0
    return max([limiter.eta(left, now), measured, *retry_waits])


MEASURED_SPAN = 10.0  # seconds of requests the rate lately is measured over


def measured_rate(limiter: SlidingWindowLimiter, first: float | None, now: float) -> float:
    """Requests per second ``limiter`` granted lately: over the last ``MEASURED_SPAN`` seconds,
    or since the first request (at ``first``) when that is more recent; 0 before a second of
    sending, too short to tell."""
    if first is None or now - first < 1.0:
        return 0.0
    return limiter.sending_rate(now, span=min(MEASURED_SPAN, now - first))


class Display(Protocol):
    def show(self, snapshot: Snapshot, now: float) -> None: ...

    def __enter__(self) -> Display: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...


class Bar:
    """A rich progress bar on stderr."""

    def __init__(self, console: Console | None = None) -> None:
        self._progress = Progress(
            TextColumn("[bold]sending"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[counts]}"),
            TextColumn("{task.fields[rate]}"),
            TextColumn("ETA {task.fields[eta]}"),
            console=console or Console(stderr=True),
            transient=False,
        )
        self._task = self._progress.add_task("sending", total=None, counts="", rate="", eta="")

    def show(self, snapshot: Snapshot, now: float) -> None:
        self._progress.update(
            self._task,
            total=snapshot.total,
            completed=snapshot.done,
            counts=f"[green]✓ {snapshot.succeeded}[/] [red]✗ {snapshot.failed}[/] "
            f"[yellow]↻ {snapshot.retrying}[/]{_apart(snapshot)}",
            rate=f"{snapshot.rate:.1f}/s within {snapshot.limits}",
            eta=_clock(snapshot.eta),
        )

    def __enter__(self) -> Bar:
        self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._progress.stop()


class LogLines:
    """One progress line in the log every ``interval`` seconds (cron, --quiet)."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._last: float | None = None

    def show(self, snapshot: Snapshot, now: float) -> None:
        if self._last is None:
            self._last = now
        elif now - self._last >= self.interval:
            self._last = now
            if events.isEnabledFor(logging.INFO):  # --log-format json: the figures as fields
                emit(
                    "progress",
                    total=snapshot.total,
                    succeeded=snapshot.succeeded,
                    failed=snapshot.failed,
                    retrying=snapshot.retrying,
                    unchanged=snapshot.unchanged,
                    not_attempted=snapshot.not_attempted,
                    rate=round(snapshot.rate, 2),
                    eta=round(snapshot.eta),
                    next_retry=None if snapshot.next_retry is None else round(snapshot.next_retry),
                    message=snapshot.line(),
                )
            else:
                log.info("progress: %s", snapshot.line())

    def __enter__(self) -> LogLines:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        return None


def _apart(snapshot: Snapshot) -> str:
    """The bar's rows counted apart from those to send."""
    unchanged = f" [dim]= {snapshot.unchanged} as wanted[/]" if snapshot.unchanged else ""
    stopped = f" [dim]· {snapshot.not_attempted} not sent[/]" if snapshot.not_attempted else ""
    return unchanged + stopped


def _clock(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"

"""Live progress: a bar on a terminal, a line every few seconds in a log (cron, --quiet).

Both read one :class:`Snapshot` of the run (every account's figures together:
``sending.watching``). The ETA comes from the rate limit, not from guesswork: the requests left
at the rate the limits allow, and the retries' waits.
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
    total: int
    succeeded: int
    failed: int
    retrying: int  # rows waiting for their next attempt
    rate: float  # requests per second over the last few seconds
    limits: str  # the limits held, e.g. "10/2, 60/60, 1000/3600"
    eta: float  # seconds the rows left need at best: the limits, and the retries' waits
    next_retry: float | None = None  # seconds until the first row waiting for a retry is due

    @property
    def done(self) -> int:
        return self.succeeded + self.failed

    def line(self) -> str:
        return (
            f"{self.done}/{self.total} {'row' if self.total == 1 else 'rows'} done: "
            f"{self.succeeded} succeeded, {self.failed} "
            f"failed, {self.retrying} retrying{self._next()}; {self.rate:.1f} requests/s within "
            f"{self.limits}; about {_clock(self.eta)} left"
        )

    def _next(self) -> str:
        return f" (next in {_clock(self.next_retry)})" if self.next_retry is not None else ""


def estimate(
    limiter: SlidingWindowLimiter, left: int, retry_waits: Sequence[float], now: float
) -> float:
    """Seconds until the ``left`` rows can have been sent, at best: what the limits allow, and
    never before the last row waiting for a retry is due."""
    return max([limiter.eta(left, now), *retry_waits])


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
            f"[yellow]↻ {snapshot.retrying}[/]",
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


def _clock(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"

"""What the progress display shows of a run while it sends: every account's figures together.

A run's figures are of the whole run, its earlier batches and the one at hand, over all its
accounts: rows to send (those found already as wanted are counted apart, not as succeeded),
done, failed and waiting to retry, those the run stopped before sending (not failures), the
requests per second lately, and the time left, which is that of the slowest account (the
accounts send at the same time), each the larger of what its limits allow and what its rate
lately says, counting the retries' waits. How they are shown is ``output.progress``'s.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass

import anyio

from bulkrunner.config.run_config import RunConfig
from bulkrunner.model import Clock, Status
from bulkrunner.output.progress import (
    Bar,
    Display,
    LogLines,
    Snapshot,
    estimate,
    measured_rate,
)
from bulkrunner.sending.pipeline import Pipeline


@dataclass(frozen=True, slots=True)
class Figures:
    """One account's progress: its rows to send, succeeded, failed and waiting, those found
    already as wanted and those the run stopped before sending, and its ETA."""

    total: int
    succeeded: int
    failed: int
    waiting: int
    unchanged: int
    not_attempted: int
    rate: float
    eta: float
    waits: Sequence[float]


def figures(pipeline: Pipeline, now: float) -> Figures:
    """``pipeline``'s progress at ``now`` (the run's clock). Its rows to send are those of the
    run less those found already as wanted (not sent, so not "succeeded"); rows the run stopped
    before sending are not failures (they wait for --resume or retry)."""
    config, engine, planned = pipeline.config, pipeline.engine, pipeline.plan
    earlier = pipeline.earlier  # the rows of the batches before, by status
    succeeded, failed, waiting = engine.progress() if engine else (0, 0, 0)
    waits = engine.retry_waits(now) if engine else []
    unchanged = earlier[Status.UNCHANGED] + (len(planned.unchanged) if planned else 0)
    failed += len(planned.refused) if planned else 0
    failed += sum(n for status, n in earlier.items() if status not in _NOT_FAILED)
    stopped = earlier[Status.NOT_ATTEMPTED]
    total = max(pipeline.total, earlier.total() + len(pipeline.rows)) - unchanged
    done = earlier[Status.SUCCEEDED] + succeeded
    later = max(0, pipeline.total - earlier.total() - len(pipeline.rows))  # batches not read
    left = requests_left(
        total - done - failed - stopped,
        succeeded,
        config.verify,
        per_row=pipeline.per_row,
        verify_reads=pipeline.verify_per_row,
    )
    limiter = pipeline.connection.limiter
    rate = measured_rate(limiter, pipeline.stats.first_request, now)
    eta = estimate(limiter, left + pipeline.reads_later(later), waits, now, rate)
    return Figures(total, done, failed, waiting, unchanged, stopped, rate, eta, waits)


# Statuses a row of an earlier batch may have that are not failures: the run's progress counts
# them apart (succeeded, already as wanted, not sent because the run stopped).
_NOT_FAILED = frozenset({Status.SUCCEEDED, Status.UNCHANGED, Status.NOT_ATTEMPTED})


def snapshot(pipelines: Sequence[Pipeline], now: float) -> Snapshot:
    """The whole run's progress at ``now``: every account's figures together."""
    each = [figures(pipeline, now) for pipeline in pipelines]
    waits = [wait for one in each for wait in one.waits]
    limiters = [pipeline.connection.limiter for pipeline in pipelines]
    limits = [", ".join(map(str, limiter.effective_rates)) for limiter in limiters]
    if len(pipelines) > 1:
        limits = [f"{p.connection.name} {held}" for p, held in zip(pipelines, limits, strict=True)]
    return Snapshot(
        sum(one.total for one in each),
        sum(one.succeeded for one in each),
        sum(one.failed for one in each),
        sum(one.waiting for one in each),
        sum(one.rate for one in each),
        "; ".join(limits),
        max((one.eta for one in each), default=0.0),
        min(waits, default=None),
        unchanged=sum(one.unchanged for one in each),
        not_attempted=sum(one.not_attempted for one in each),
    )


async def watch(config: RunConfig, pipelines: Sequence[Pipeline], clock: Clock) -> None:
    """Show progress until cancelled: a bar on a terminal, log lines otherwise. The display is
    refreshed in real time; its figures are of the run's clock."""
    bar = sys.stderr.isatty() and not config.quiet and config.log_format == "text"
    display: Display = Bar() if bar else LogLines(config.progress_interval)
    with display:
        try:
            while True:
                now = clock.monotonic()
                display.show(snapshot(pipelines, now), now)
                await anyio.sleep(0.25 if bar else 1.0)
        finally:
            if bar:  # the last frame shows how the run ended
                now = clock.monotonic()
                display.show(snapshot(pipelines, now), now)


def requests_left(
    rows: int,
    succeeded: int,
    verify: bool,
    *,
    per_row: float = 1.0,
    verify_reads: float = 1,
) -> int:
    """The requests still to come (retries not counted): ``per_row`` requests for each of
    ``rows`` not yet done (the average a row of the operation becomes) and, with ``verify``,
    ``verify_reads`` reads back for each of them and of the ``succeeded`` rows. The reads before
    sending are already in the limiters' windows: the ETA counts them as they are."""
    writes = round(rows * per_row)
    return writes + round((rows + succeeded) * verify_reads) if verify else writes

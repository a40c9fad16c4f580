"""What ``bulkrunner run`` and ``bulkrunner validate`` do, from a RunConfig to an exit code.

load ─▶ validate ─▶ (dry run | engine over HTTP, maybe against the embedded simulator)
     ─▶ report (one line per input row) ─▶ summary ─▶ exit code
"""

from __future__ import annotations

import asyncio
import enum
import logging
import os
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import aiohttp

from bulkrunner.config import API_KEY_ENV, RunConfig
from bulkrunner.engine import Engine, Outcome, RunStats, Status
from bulkrunner.errors import UsageError
from bulkrunner.limiter import SlidingWindowLimiter
from bulkrunner.loading import load_input
from bulkrunner.report import (
    Summary,
    build_report,
    check_report_path,
    default_report_path,
    write_report,
)
from bulkrunner.sender import HttpSender
from bulkrunner.validation import Row, Validation, validate

if TYPE_CHECKING:
    from bulkrunner.simulator import FaultPlan

log = logging.getLogger("bulkrunner")

DEMO_API_KEY = "demo-key-for-the-simulator"
DEMO_FAULT_SHARE = 0.07  # of rows whose first request the --simulate demo answers 429 or 503
DEMO_SEED = 2024
_SHOWN_INVALID = 20


class ExitCode(enum.IntEnum):
    OK = 0  # every row succeeded (or every row is a dry run)
    ROWS_FAILED = 1  # the run finished, but some rows failed or were invalid
    USAGE = 2  # bad invocation or unreadable input: nothing was sent
    ABORTED = 3  # the run stopped early (key rejected, interrupted)


def exit_code(outcomes: Mapping[int, Outcome], aborted: bool) -> ExitCode:
    if aborted:
        return ExitCode.ABORTED
    good = {Status.SUCCEEDED, Status.DRY_RUN}
    return ExitCode.OK if all(o.status in good for o in outcomes.values()) else ExitCode.ROWS_FAILED


def validate_job(config: RunConfig, out: TextIO) -> ExitCode:
    """Load and validate only; print every invalid row. Sends nothing."""
    validation = validate(load_input(config.input), config.vocabulary)
    for rejection in validation.rejections:
        print(f"{config.input} row {rejection.number}: {rejection.error}", file=out)
    print(
        f"{config.input}: {validation.total} rows, {len(validation.rows)} valid, "
        f"{len(validation.rejections)} invalid",
        file=out,
    )
    return ExitCode.ROWS_FAILED if validation.rejections else ExitCode.OK


def run_job(
    config: RunConfig,
    out: TextIO,
    environ: Mapping[str, str] = os.environ,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> ExitCode:
    """Run one job end to end; raises UsageError before anything is sent."""
    api_key = environ.get(API_KEY_ENV, "")
    if not (api_key or config.dry_run or config.simulate):
        raise UsageError(
            f"{API_KEY_ENV} is not set: export your SmartLead API key in it "
            "(or use --dry-run, or --simulate to try the embedded simulator)"
        )
    frame = load_input(config.input)
    validation = validate(frame, config.vocabulary)
    report_path = config.report or default_report_path(config.input, now())
    check_report_path(report_path)
    _warn_invalid(config.input, validation)

    outcomes: dict[int, Outcome] = {
        r.number: Outcome(Status.INVALID, error=r.error) for r in validation.rejections
    }
    stats = RunStats()
    interrupted = False
    if config.dry_run:
        outcomes.update({row.number: Outcome(Status.DRY_RUN) for row in validation.rows})
    else:
        log.info(
            "sending %d rows (%d invalid, not sent) with %d workers within %s",
            len(validation.rows),
            len(validation.rejections),
            config.concurrency,
            ", ".join(map(str, config.rates)),
        )
        sending = _Sending(config, api_key)
        try:
            asyncio.run(sending.run(validation.rows))
        except KeyboardInterrupt:
            interrupted = True
            log.error("interrupted: rows not yet sent are reported not_attempted")
        outcomes.update(sending.outcomes(validation.rows))
        stats = sending.stats
        if interrupted and stats.aborted is None:
            stats.aborted = "run interrupted"

    report = build_report(frame, outcomes)
    try:
        write_report(report, report_path, [str(c) for c in frame.columns])
    except OSError as exc:
        fallback = Path.cwd() / f"bulkrunner-report-{now():%Y%m%dT%H%M%SZ}.csv"
        log.error("cannot write the report to %s (%s); writing %s", report_path, exc, fallback)
        write_report(report, fallback, [str(c) for c in frame.columns])
        report_path = fallback
    for line in Summary.of(outcomes, stats, config.rates, report_path).lines():
        print(line, file=out)
    return exit_code(outcomes, stats.aborted is not None)


def _warn_invalid(path: Path, validation: Validation) -> None:
    for rejection in validation.rejections[:_SHOWN_INVALID]:
        log.warning(
            "%s row %d is invalid and will not be sent: %s", path, rejection.number, rejection.error
        )
    hidden = len(validation.rejections) - _SHOWN_INVALID
    if hidden > 0:
        log.warning("... and %d more invalid rows (see the report)", hidden)


@dataclass
class _Sending:
    """Runs the engine on its own event loop; keeps it reachable when Ctrl-C cuts the loop short."""

    config: RunConfig
    api_key: str
    engine: Engine | None = None

    @property
    def stats(self) -> RunStats:
        return self.engine.stats if self.engine else RunStats()

    def outcomes(self, rows: Sequence[Row]) -> dict[int, Outcome]:
        if self.engine is None:
            return {row.number: Outcome(Status.NOT_ATTEMPTED) for row in rows}
        return self.engine.outcomes()

    async def run(self, rows: Sequence[Row]) -> None:
        config = self.config
        if not config.simulate:
            await self._send(rows, config.base_url, self.api_key)
            return
        from bulkrunner.simulator import Simulator, SimulatorConfig

        simulated = SimulatorConfig(
            api_key=DEMO_API_KEY,
            vocabulary=config.vocabulary,
            rates=config.rates,
            faults=demo_faults([row.campaign_id for row in rows]),
        )
        async with Simulator(simulated) as simulator:
            log.info(
                "simulating SmartLead at %s (with injected 429 and 503 answers)", simulator.base_url
            )
            await self._send(rows, simulator.base_url, DEMO_API_KEY)

    async def _send(self, rows: Sequence[Row], base_url: str, api_key: str) -> None:
        config = self.config
        connector = aiohttp.TCPConnector(limit=config.concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:
            self.engine = Engine(
                HttpSender(session, base_url, api_key, config.timeout),
                SlidingWindowLimiter(config.rates),
                concurrency=config.concurrency,
                max_attempts=config.max_attempts,
            )
            await self.engine.run(rows)


def demo_faults(campaign_ids: Sequence[int], seed: int = DEMO_SEED) -> FaultPlan:
    """The --simulate demo's faults: a few campaigns' first request answered 429 or 503."""
    from bulkrunner.simulator import FaultPlan

    count = min(len(campaign_ids), max(2, round(DEMO_FAULT_SHARE * len(campaign_ids))))
    chosen = random.Random(seed).sample(sorted(campaign_ids), count)
    scripted = {cid: ["429" if i % 2 == 0 else "503"] for i, cid in enumerate(chosen)}
    return FaultPlan(scripted=scripted, retry_after=2.0)

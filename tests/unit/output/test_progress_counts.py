"""Progress that counts what a run does: its rows to send (rows found already as wanted are not
"succeeded"), rows the run stopped before sending apart from failures, and an ETA that is the
larger of what the limits allow and what the rate measured lately says. Whole sessions run
against the simulator on a fake clock; the figures are those the display draws last."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import anyio
import pytest
from rich.console import Console

from bulkrunner.config.run_config import RunConfig
from bulkrunner.limits.limiter import SlidingWindowLimiter
from bulkrunner.model import Rate, Row, Status
from bulkrunner.operations.base import Wire
from bulkrunner.operations.settings import SETTINGS
from bulkrunner.output.progress import Bar, Snapshot, estimate, measured_rate
from bulkrunner.sending.pipeline import Pipeline
from bulkrunner.sending.watching import figures, snapshot
from bulkrunner.simulator import FaultPlan, SimulatorConfig, SimulatorThread, default_settings
from tests.fakes import FakeClock, ScriptedSender, Sent, connection

KEY = "sk-progress-SENTINEL-77"
IDS = list(range(301, 309))


def rows(wanted: dict[int, int]) -> list[Row]:
    return [
        Row(n, cid, {"sending_limit": limit}) for n, (cid, limit) in enumerate(wanted.items(), 1)
    ]


def sent(clock: FakeClock, config: RunConfig, faults: FaultPlan, batch: list[Row]) -> Sent:
    simulated = SimulatorConfig(api_key=KEY, campaigns=set(IDS), faults=faults)
    with SimulatorThread(simulated, clock=clock) as sim:
        return Sent(replace(config, base_url=sim.base_url), KEY, batch, clock.clock).run()


def test_rows_already_as_wanted_are_counted_apart_not_as_succeeded(tmp_path: Path) -> None:
    clock = FakeClock()
    wanted = {cid: default_settings(cid)["sending_limit"] for cid in IDS[:3]}  # as they are
    wanted |= {cid: 7 for cid in IDS[3:5]}
    config = RunConfig(input=tmp_path / "in.csv", rates=(Rate(100, 1),), no_backup=False)
    done = sent(clock, config, FaultPlan(), rows(wanted))
    assert [o.status for o in done.outcomes.values()].count(Status.UNCHANGED) == 3
    shown = snapshot(list(done.session.pipelines.values()), clock())
    assert (shown.total, shown.succeeded, shown.failed, shown.unchanged) == (2, 2, 0, 3)
    assert shown.line().startswith(
        "2/2 rows done: 2 succeeded, 0 failed, 0 retrying; 3 already as wanted, not sent; "
    )


def test_rows_the_run_stopped_before_sending_are_not_drawn_as_failures(tmp_path: Path) -> None:
    """The third write is answered 429 with Retry-After 900, past --max-wait 60: the run stops
    there; the rows after it were never sent, and are not failures."""
    clock = FakeClock()
    faults = FaultPlan(scripted={IDS[2]: ["429"]}, retry_after=900)
    config = RunConfig(input=tmp_path / "in.csv", rates=(Rate(100, 1),), concurrency=1, max_wait=60)
    done = sent(clock, config, faults, rows(dict.fromkeys(IDS, 9)))
    statuses = [o.status for o in done.outcomes.values()]
    assert done.session.stats.aborted
    assert statuses.count(Status.NOT_ATTEMPTED) >= 5
    shown = snapshot(list(done.session.pipelines.values()), clock())
    assert shown.succeeded == statuses.count(Status.SUCCEEDED) == 2
    assert shown.failed == statuses.count(Status.FAILED) < 2
    assert shown.not_attempted == statuses.count(Status.NOT_ATTEMPTED)
    assert f"; {shown.not_attempted} not sent, the run stopped;" in shown.line()


def test_the_eta_is_the_larger_of_the_limits_and_the_rate_measured_lately() -> None:
    """Limits of 100 a second, but one request a second went out lately (latency, a pool of
    one): 50 requests left take about 50 seconds, not half a second."""
    clock = FakeClock(start=0.0)
    limiter = SlidingWindowLimiter([Rate(100, 1)], guard=0, clock=clock, sleep=clock.sleep)

    async def one_a_second() -> None:
        for _ in range(12):
            await limiter.acquire()
            await clock.sleep(1.0)

    anyio.run(one_a_second)
    now = clock()
    rate = measured_rate(limiter, 0.0, now)
    assert rate == pytest.approx(1.0, rel=0.15)
    assert limiter.eta(50, now) < 1
    assert estimate(limiter, 50, [], now, rate) == pytest.approx(50 / rate)
    # faster than the limits allow, the limits say: a burst measured is no promise
    assert estimate(limiter, 500, [], now, 1000.0) == pytest.approx(limiter.eta(500, now))


def test_the_figures_of_a_pipeline_take_its_rate_lately(tmp_path: Path) -> None:
    clock = FakeClock(start=0.0)
    through = connection(ScriptedSender(), clock, rates=[Rate(100, 1)])
    pipeline = Pipeline(RunConfig(input=tmp_path / "in.csv"), through, SETTINGS, Wire(), total=60)

    async def one_a_second() -> None:
        for _ in range(10):
            grant = await through.limiter.acquire()
            through.stats.first_request = through.stats.first_request or grant.at
            await clock.sleep(1.0)

    anyio.run(one_a_second)
    shown = figures(pipeline, clock())
    assert shown.rate == pytest.approx(1.0, rel=0.15)
    assert shown.eta == pytest.approx(60 / shown.rate)  # 60 rows left, one request each


def test_no_rate_is_measured_in_the_first_second() -> None:
    clock = FakeClock(start=0.0)
    limiter = SlidingWindowLimiter([Rate(100, 1)], clock=clock, sleep=clock.sleep)
    assert measured_rate(limiter, None, 5.0) == 0.0
    assert measured_rate(limiter, 4.5, 5.0) == 0.0


def test_the_line_and_the_bar_name_the_rows_counted_apart() -> None:
    shown = Snapshot(5, 3, 1, 0, 1.0, "10/2", 4.0, unchanged=6, not_attempted=2)
    assert shown.line() == (
        "4/5 rows done: 3 succeeded, 1 failed, 0 retrying; 6 already as wanted, not sent; "
        "2 not sent, the run stopped; 1.0 requests/s within 10/2; about 0:00:04 left"
    )
    out = io.StringIO()
    with Bar(Console(file=out, force_terminal=True, width=200)) as bar:
        bar.show(shown, now=0.0)
    drawn = out.getvalue()
    assert "4/5" in drawn
    assert "6 as wanted" in drawn
    assert "2 not sent" in drawn

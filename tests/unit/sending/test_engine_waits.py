"""The engine's bounded waits on a fake clock: a wait asked beyond --max-wait stops the run,
the outage timeout counts the wait."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from bulkrunner.model import Answer, Rate, Status
from bulkrunner.simulator import SimulatorConfig, SimulatorThread
from tests.fakes import FakeClock, ScriptedSender
from tests.hostile import RunCli
from tests.unit.sending.test_engine import engine, rows

KEY = "sk-hostile-SENTINEL+/=9f3a"  # characters a URL must encode, so both spellings are checked


async def test_a_retry_after_beyond_max_wait_stops_the_run_without_waiting() -> None:
    clock = FakeClock()
    day = Answer(429, "slow down", retry_after=86_400.0)
    sender = ScriptedSender({101: [day]})
    run = engine(sender, clock, concurrency=1, max_wait=300.0)
    outcomes = await run.run(rows(3))
    assert run.stats.aborted == (
        "run aborted: the server asked to wait 86400s (Retry-After), more than --max-wait 300"
    )
    assert max(clock.sleeps, default=0.0) < 300  # nobody waited for the day
    assert outcomes[1].status is Status.FAILED
    assert "slow down" in outcomes[1].error
    assert {outcomes[2].status, outcomes[3].status} == {Status.NOT_ATTEMPTED}


async def test_a_retry_after_within_max_wait_is_waited_for() -> None:
    clock = FakeClock()
    sender = ScriptedSender({101: [Answer(503, "busy", retry_after=250.0)]})
    run = engine(sender, clock, concurrency=1, max_wait=300.0)
    outcomes = await run.run(rows(1))
    assert run.stats.aborted is None
    assert outcomes[1].status is Status.SUCCEEDED


async def test_an_x_ratelimit_reset_beyond_max_wait_stops_the_run_after_the_row() -> None:
    clock = FakeClock()
    spent = Answer(200, '{"ok": true}', remaining=0, reset=86_400.0)
    sender = ScriptedSender({101: [spent]})
    run = engine(sender, clock, concurrency=1, max_wait=300.0)
    outcomes = await run.run(rows(3))
    assert run.stats.aborted == (
        "run aborted: the server asked to wait 86400s (X-RateLimit-Reset), more than --max-wait 300"
    )
    assert outcomes[1].status is Status.SUCCEEDED
    assert [o.status for o in (outcomes[2], outcomes[3])] == [Status.NOT_ATTEMPTED] * 2
    assert max(clock.sleeps, default=0.0) < 300


async def test_the_outage_timeout_counts_the_wait_before_the_next_try() -> None:
    clock = FakeClock()
    busy = Answer(503, "busy", retry_after=250.0)
    sender = ScriptedSender({101: [busy] * 5})
    run = engine(sender, clock, clock.sleep, concurrency=1, outage_timeout=100)
    outcomes = await run.run(rows(1))
    assert run.stats.aborted is not None
    assert run.stats.aborted.startswith(
        "run aborted: only retryable errors came back for 250s, counting the 250s wait"
    )
    assert 250.0 not in clock.sleeps  # it did not sleep past the timeout to find out
    assert len(sender.calls) == 1
    assert outcomes[1].status is Status.FAILED


def announcing(limit: int) -> Answer:
    """A success whose headers announce the server's limit (and its budget spent)."""
    return Answer(200, '{"ok": true}', limit=limit, remaining=0, reset=3600.0)


async def test_an_announced_limit_that_would_wait_past_max_wait_stops_the_run() -> None:
    """X-RateLimit-Limit: 1, held over the only window, an hour: ten rows would take nine
    hours, each waiting out the hour. The run stops instead of making the first such wait."""
    clock = FakeClock()
    sender = ScriptedSender({101: [announcing(1)]})
    run = engine(sender, clock, concurrency=1, rates=[Rate(1000, 3600)], max_wait=300.0)
    outcomes = await run.run(rows(10))
    assert run.stats.aborted is not None
    assert run.stats.aborted.startswith("run aborted: the server asked to wait 3600s")
    assert run.stats.aborted.endswith(
        "(X-RateLimit-Limit 1, held over 3600s), more than --max-wait 300"
    )
    assert max(clock.sleeps, default=0.0) < 300  # nobody waited for the hour
    assert len(sender.calls) == 1
    assert outcomes[1].status is Status.SUCCEEDED
    assert {outcomes[n].status for n in range(2, 11)} == {Status.NOT_ATTEMPTED}


async def test_an_announced_limit_whose_waits_are_short_only_slows_the_run() -> None:
    """The same header over SmartLead's 2-second window: a request every 2 s, every row sent."""
    clock = FakeClock()
    sender = ScriptedSender({101: [announcing(1)]})
    run = engine(
        sender, clock, concurrency=1, rates=[Rate(10, 2), Rate(1000, 3600)], max_wait=300.0
    )
    outcomes = await run.run(rows(10))
    assert run.stats.aborted is None
    assert {outcome.status for outcome in outcomes.values()} == {Status.SUCCEEDED}
    assert run.connection.limiter.learned == Rate(1, 2)
    assert clock.now - 1000.0 == pytest.approx(9 * 2.0, abs=0.1)


def test_an_announced_limit_too_slow_for_max_wait_stops_a_cli_run_with_nothing_sent(
    tmp_path: Path, cli_here: RunCli
) -> None:
    """The simulator allows 1 request an hour and says so; the client holds SmartLead's
    published limits, so the 1 is taken over their shortest window (2 s), further off than
    --max-wait 1. The read before sending learns the limit; no change is sent; exit 3,
    resumable."""
    source = tmp_path / "plan.csv"
    source.write_text("campaign_id,sending_limit\n" + "".join(f"{n},7\n" for n in range(1, 11)))
    simulated = SimulatorConfig(api_key=KEY, rates=(Rate(1, 3600),), campaigns=set(range(1, 11)))
    with SimulatorThread(simulated) as sim:
        done = cli_here(
            tmp_path,
            KEY,
            *("run", str(source), "--report", "r.csv", "--base-url", sim.base_url),
            *("--max-wait", "1"),
        )
        posts = sim.state.posts()
    assert done.returncode == 3, done.stderr
    assert "(X-RateLimit-Limit 1, held over 2s), more than --max-wait 1" in done.stderr
    assert "--resume" in done.stdout
    assert posts == []
    assert set(pd.read_csv(tmp_path / "r.csv")["status"]) == {"not_attempted"}

"""The real engine and CLI against the project's simulator on 127.0.0.1, with faults injected.

Every property is checked from the server's own record: which campaigns were applied and how
often, and how many requests arrived in any window. The server runs in its own thread and the
client's limiter has a guard of ``JITTER`` against scheduling noise (see ``tests.realtime``).
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence

import aiohttp
import pytest

from bulkrunner.limits.limiter import SlidingWindowLimiter
from bulkrunner.model import Answer, Rate, Row, Status
from bulkrunner.operations.base import Request
from bulkrunner.operations.fields import Vocabulary
from bulkrunner.sending.connection import Connection
from bulkrunner.sending.engine import Engine
from bulkrunner.sending.retry import Policy
from bulkrunner.sending.transport import HttpSender, limiter_tracing
from bulkrunner.simulator import FaultPlan, Simulator, SimulatorConfig, SimulatorThread
from tests.fakes import make_rows
from tests.realtime import JITTER

KEY = "integration-key"


async def run_engine(
    config: SimulatorConfig,
    rows: Sequence[Row],
    rates: Sequence[Rate],
    concurrency: int = 4,
    request_timeout: float = 5.0,
    max_attempts: int = 8,
) -> tuple[dict[int, Status], Engine, SimulatorThread]:
    with SimulatorThread(config) as simulator:
        async with aiohttp.ClientSession(trace_configs=[limiter_tracing()]) as session:
            through = Connection(
                HttpSender(session, simulator.base_url, KEY, request_timeout),
                SlidingWindowLimiter(rates, guard=JITTER),
                # keep retries quick; the policy itself is tested on its own
                Policy(max_attempts=max_attempts, backoff_base=0.01),
                concurrency,
                rng=random.Random(1),
            )
            engine = Engine(through)
            outcomes = await engine.run(rows)
    return {n: o.status for n, o in outcomes.items()}, engine, simulator


@pytest.mark.slow
@pytest.mark.parametrize("concurrency", [4, 12])
async def test_mixed_faults_every_row_applied_exactly_once(concurrency: int) -> None:
    rates = [Rate(40, 0.5)]
    faults = FaultPlan(
        probabilities={"429": 0.01, "500": 0.06, "503": 0.06, "drop": 0.04, "slow": 0.03},
        seed=concurrency,
        retry_after=0.1,
        slow_seconds=3.0,  # past the client timeout, with room: it must time out
    )
    config = SimulatorConfig(api_key=KEY, rates=rates, faults=faults)
    rows = make_rows(100)
    statuses, engine, simulator = await run_engine(
        # A normal answer must never time out, even on a loaded machine: a write applied and
        # then retried would be applied twice. Only the injected slow answers time out.
        config,
        rows,
        rates,
        concurrency=concurrency,
        request_timeout=2.0,
    )
    state = simulator.state

    assert set(statuses.values()) == {Status.SUCCEEDED}
    assert sorted(statuses) == [row.number for row in rows]
    assert dict(state.applied) == {row.campaign_id: 1 for row in rows}
    for row in rows:
        assert state.settings[row.campaign_id]["sending_limit"] == row.payload["sending_limit"]
    injected = [r for r in state.posts() if r.fault is not None]
    assert len(injected) >= 15  # the faults really happened...
    assert engine.stats.retries == len(state.posts()) - len(rows)  # ...and each was retried
    for rate in rates:
        assert state.max_in_window(rate.seconds) <= rate.limit


@pytest.mark.slow
async def test_several_limits_hold_together_at_the_server() -> None:
    rates = [Rate(8, 0.4), Rate(30, 2.0)]
    config = SimulatorConfig(api_key=KEY, rates=rates)
    statuses, engine, simulator = await run_engine(config, make_rows(45), rates, concurrency=6)
    assert set(statuses.values()) == {Status.SUCCEEDED}
    assert engine.stats.throttled == 0  # the server never had to say no
    for rate in rates:
        assert simulator.state.max_in_window(rate.seconds) <= rate.limit


async def test_the_server_validates_the_vocabulary_sent() -> None:
    rows = [Row(1, 77, {"track_settings": ["DONT_TRACK_EMAIL_OPEN"]})]
    config = SimulatorConfig(api_key=KEY, vocabulary=Vocabulary.DOCUMENTED)
    async with Simulator(config) as simulator, aiohttp.ClientSession() as session:
        engine = Engine(
            Connection(
                HttpSender(session, simulator.base_url, KEY, 5), SlidingWindowLimiter([Rate(9, 1)])
            )
        )
        outcome = (await engine.run(rows))[1]
    assert outcome.status is Status.FAILED
    assert outcome.http_status == 400
    assert "Invalid track_settings value" in outcome.error


class HeaderBlind:
    """A sender that hides the X-RateLimit-* headers, as a server without them would."""

    def __init__(self, inner: HttpSender) -> None:
        self.inner = inner

    async def send(self, request: Request) -> Answer:
        answer = await self.inner.send(request)
        return dataclasses.replace(answer, limit=None, remaining=None, reset=None)

    async def get_campaign(self, campaign_id: int) -> Answer:
        return await self.inner.get_campaign(campaign_id)

    async def list_campaigns(self) -> Answer:
        return await self.inner.list_campaigns()

    async def read(self, path: str) -> Answer:
        return await self.inner.read(path)


async def run_against_lower_limit(
    rows: Sequence[Row], *, blind: bool, adaptive: bool = True
) -> tuple[Engine, SimulatorThread]:
    server, configured = [SERVER_RATE], [Rate(4 * SERVER_RATE.limit, SERVER_RATE.seconds)]
    with SimulatorThread(SimulatorConfig(api_key=KEY, rates=server)) as simulator:
        async with aiohttp.ClientSession() as session:
            http = HttpSender(session, simulator.base_url, KEY, 5)
            engine = Engine(
                Connection(
                    HeaderBlind(http) if blind else http,
                    SlidingWindowLimiter(configured, guard=JITTER, adaptive=adaptive),
                    Policy(max_attempts=20),
                    rng=random.Random(2),
                )
            )
            outcomes = await engine.run(rows)
    assert {o.status for o in outcomes.values()} == {Status.SUCCEEDED}
    assert dict(simulator.state.applied) == {row.campaign_id: 1 for row in rows}
    return engine, simulator


SERVER_RATE = Rate(10, 0.5)  # the server's real limit; the client is told 4 times as much


@pytest.mark.slow
async def test_a_lower_server_limit_is_learned_from_its_headers() -> None:
    engine, simulator = await run_against_lower_limit(make_rows(60), blind=False)
    assert engine.connection.limiter.learned == SERVER_RATE
    assert engine.stats.throttled <= 0.1 * engine.stats.requests
    # At most the first burst's in-flight requests beyond the limit.
    assert simulator.state.max_in_window(SERVER_RATE.seconds) <= SERVER_RATE.limit + 4


@pytest.mark.slow
async def test_without_headers_adaptive_control_draws_fewer_429s() -> None:
    rows = make_rows(40)
    adaptive, _ = await run_against_lower_limit(rows, blind=True)
    fixed, _ = await run_against_lower_limit(rows, blind=True, adaptive=False)
    assert adaptive.connection.limiter.learned is None
    print(f"429s: adaptive {adaptive.stats.throttled}, fixed {fixed.stats.throttled}")
    assert adaptive.stats.throttled < fixed.stats.throttled

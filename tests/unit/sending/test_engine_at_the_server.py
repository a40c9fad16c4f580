"""The real engine, limiter and HTTP client against the project's simulator on 127.0.0.1, with
faults injected, on virtual time (``tests.virtual_time``): the simulator is served by the
client's own loop, whose clock jumps to its next timer only when no task has work and no answer
is on its way. The server judges the client's windows on the client's time, without the
scheduling noise of real time, so the limiter's own guard is the only margin; what takes seconds
of windows, latency and timeouts takes milliseconds.

Every property is checked from the server's own record: which campaigns were applied and how
often, and how many requests arrived in any window.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence

import aiohttp
import pytest

from bulkrunner.model import Answer, Outcome, Rate, Row, Status
from bulkrunner.operations.base import Request
from bulkrunner.operations.fields import Vocabulary
from bulkrunner.sending.engine import Engine
from bulkrunner.sending.retry import Policy
from bulkrunner.sending.transport import HttpSender, limiter_tracing
from bulkrunner.simulator import FaultPlan, Simulator, SimulatorConfig
from tests.fakes import make_rows
from tests.virtual_time import connection_on_loop_time, run_virtual

KEY = "integration-key"


QUICK = Policy(backoff_base=0.01)  # quick retries: the policy itself is tested on its own


async def run_engine(
    config: SimulatorConfig,
    rows: Sequence[Row],
    rates: Sequence[Rate],
    *,
    concurrency: int = 4,
    request_timeout: float = 5.0,
    policy: Policy = QUICK,
    blind: bool = False,
    adaptive: bool = True,
    seed: int = 1,
) -> tuple[dict[int, Outcome], Engine, Simulator]:
    """``rows`` sent by an engine whose limiter is told ``rates``, to a simulator of ``config``
    served by the same loop (the running one, on virtual time), through ``HeaderBlind`` with
    ``blind``; every row's outcome, the engine and the simulator."""
    loop = asyncio.get_running_loop()
    async with (
        Simulator(config, clock=loop.time) as simulator,
        aiohttp.ClientSession(trace_configs=[limiter_tracing()]) as session,
    ):
        http = HttpSender(session, simulator.base_url, KEY, request_timeout)
        sender = HeaderBlind(http) if blind else http
        engine = Engine(
            connection_on_loop_time(
                sender, rates, policy, concurrency, seed=seed, adaptive=adaptive
            )
        )
        outcomes = await engine.run(rows)
    return outcomes, engine, simulator


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


@pytest.mark.parametrize("concurrency", [4, 12])
def test_mixed_faults_every_row_applied_exactly_once(concurrency: int) -> None:
    rates = [Rate(40, 0.5)]
    faults = FaultPlan(
        probabilities={"429": 0.01, "500": 0.06, "503": 0.06, "drop": 0.04, "slow": 0.03},
        seed=concurrency,
        retry_after=0.1,
        slow_seconds=3.0,  # past the client timeout: it must time out
    )
    config = SimulatorConfig(api_key=KEY, rates=rates, faults=faults)
    rows = make_rows(100)
    outcomes, engine, simulator = run_virtual(
        run_engine(config, rows, rates, concurrency=concurrency, request_timeout=2.0)
    )
    state = simulator.state

    assert {o.status for o in outcomes.values()} == {Status.SUCCEEDED}
    assert sorted(outcomes) == [row.number for row in rows]
    assert dict(state.applied) == {row.campaign_id: 1 for row in rows}
    for row in rows:
        assert state.settings[row.campaign_id]["sending_limit"] == row.payload["sending_limit"]
    injected = [r for r in state.posts() if r.fault is not None]
    assert len(injected) >= 15  # the faults really happened...
    assert engine.stats.retries == len(state.posts()) - len(rows)  # ...and each was retried
    for rate in rates:
        assert state.max_in_window(rate.seconds) <= rate.limit


def test_several_limits_hold_together_at_the_server() -> None:
    rates = [Rate(8, 0.4), Rate(30, 2.0)]
    config = SimulatorConfig(api_key=KEY, rates=rates)
    outcomes, engine, simulator = run_virtual(
        run_engine(config, make_rows(45), rates, concurrency=6)
    )
    assert {o.status for o in outcomes.values()} == {Status.SUCCEEDED}
    assert engine.stats.throttled == 0  # the server never had to say no
    for rate in rates:
        assert simulator.state.max_in_window(rate.seconds) <= rate.limit


def test_the_server_validates_the_vocabulary_sent() -> None:
    rows = [Row(1, 77, {"track_settings": ["DONT_TRACK_EMAIL_OPEN"]})]
    config = SimulatorConfig(api_key=KEY, vocabulary=Vocabulary.DOCUMENTED)
    outcome = run_virtual(run_engine(config, rows, [Rate(9, 1)]))[0][1]
    assert outcome.status is Status.FAILED
    assert outcome.http_status == 400
    assert "Invalid track_settings value" in outcome.error


SERVER_RATE = Rate(10, 0.5)  # the server's real limit; the client is told 4 times as much


def run_against_lower_limit(
    rows: Sequence[Row], *, blind: bool, adaptive: bool = True
) -> tuple[Engine, Simulator]:
    config = SimulatorConfig(api_key=KEY, rates=[SERVER_RATE])
    told = [Rate(4 * SERVER_RATE.limit, SERVER_RATE.seconds)]
    outcomes, engine, simulator = run_virtual(
        run_engine(
            config,
            rows,
            told,
            policy=Policy(max_attempts=20),
            blind=blind,
            adaptive=adaptive,
            seed=2,
        )
    )
    assert {o.status for o in outcomes.values()} == {Status.SUCCEEDED}
    assert dict(simulator.state.applied) == {row.campaign_id: 1 for row in rows}
    return engine, simulator


def test_a_lower_server_limit_is_learned_from_its_headers() -> None:
    engine, simulator = run_against_lower_limit(make_rows(60), blind=False)
    assert engine.connection.limiter.learned == SERVER_RATE
    assert engine.stats.throttled <= 0.1 * engine.stats.requests
    # At most the first burst's in-flight requests beyond the limit.
    assert simulator.state.max_in_window(SERVER_RATE.seconds) <= SERVER_RATE.limit + 4


def test_without_headers_adaptive_control_draws_fewer_429s() -> None:
    rows = make_rows(40)
    adaptive, _ = run_against_lower_limit(rows, blind=True)
    fixed, _ = run_against_lower_limit(rows, blind=True, adaptive=False)
    assert adaptive.connection.limiter.learned is None
    print(f"429s: adaptive {adaptive.stats.throttled}, fixed {fixed.stats.throttled}")
    assert adaptive.stats.throttled < fixed.stats.throttled

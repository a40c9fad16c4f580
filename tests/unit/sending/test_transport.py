"""HttpSender against aioresponses: what goes on the wire, and each answer as an Answer."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aioresponses import aioresponses
from yarl import URL

from bulkrunner.limits.limiter import SlidingWindowLimiter
from bulkrunner.model import Answer, Rate
from bulkrunner.sending.transport import HttpSender, limiter_tracing
from bulkrunner.simulator import Simulator, SimulatorConfig
from tests.fakes import settings_request

KEY = "sk-SENTINEL-0123456789"
BASE = "http://127.0.0.1:9/api/v1"
URL_7 = re.compile(r"^http://127\.0\.0\.1:9/api/v1/campaigns/7/settings\?api_key=.*$")


@pytest.fixture
async def sender() -> AsyncIterator[HttpSender]:
    async with aiohttp.ClientSession() as session:
        yield HttpSender(session, BASE + "/", KEY, timeout=5)


async def test_posts_json_with_the_key_in_the_query(
    sender: HttpSender, mocked: aioresponses
) -> None:
    mocked.post(URL_7, status=200, body='{"success": true, "data": {}}')
    answer = await sender.send(settings_request(7, {"track_settings": [], "sending_limit": 5}))
    assert answer == Answer(200, '{"success": true, "data": {}}')
    (((method, url), calls),) = mocked.requests.items()
    assert method == "POST"
    assert URL(str(url)).path == "/api/v1/campaigns/7/settings"
    assert URL(str(url)).query["api_key"] == KEY
    assert json.loads(calls[0].kwargs["data"]) == {"track_settings": [], "sending_limit": 5}
    assert calls[0].kwargs["headers"]["Content-Type"] == "application/json"


async def test_retry_after_header_wins_over_the_body(
    sender: HttpSender, mocked: aioresponses
) -> None:
    body = '{"error": {"code": "RATE_LIMIT_EXCEEDED", "retry_after": 30}}'
    mocked.post(URL_7, status=429, body=body, headers={"Retry-After": "12"})
    answer = await sender.send(settings_request(7, {"sending_limit": 5}))
    assert (answer.status, answer.retry_after) == (429, 12.0)


async def test_retry_after_from_the_body_alone(sender: HttpSender, mocked: aioresponses) -> None:
    mocked.post(URL_7, status=429, body='{"error": {"retry_after": 30}}')
    answer = await sender.send(settings_request(7, {"sending_limit": 5}))
    assert (answer.status, answer.retry_after) == (429, 30.0)


async def test_a_plain_text_error_body(sender: HttpSender, mocked: aioresponses) -> None:
    mocked.post(URL_7, status=503, body="Service Unavailable", content_type="text/plain")
    answer = await sender.send(settings_request(7, {"sending_limit": 5}))
    assert (answer.status, answer.body, answer.retry_after) == (503, "Service Unavailable", None)


async def test_a_body_that_is_not_utf8_does_not_raise(
    sender: HttpSender, mocked: aioresponses
) -> None:
    mocked.post(URL_7, status=500, body=b"\xff\xfe broken")
    answer = await sender.send(settings_request(7, {"sending_limit": 5}))
    assert answer.status == 500
    assert "broken" in answer.body


async def test_a_timeout_is_an_answer_with_unknown_outcome(
    sender: HttpSender, mocked: aioresponses
) -> None:
    mocked.post(URL_7, exception=TimeoutError())
    answer = await sender.send(settings_request(7, {"sending_limit": 5}))
    assert answer == Answer(None, transport_error="timed out after 5s", outcome_unknown=True)


async def test_a_dropped_connection(sender: HttpSender, mocked: aioresponses) -> None:
    mocked.post(URL_7, exception=aiohttp.ServerDisconnectedError())
    answer = await sender.send(settings_request(7, {"sending_limit": 5}))
    assert answer == Answer(
        None, transport_error="connection dropped by the server", outcome_unknown=True
    )


async def test_aiohttp_messages_that_embed_the_url_are_redacted(
    sender: HttpSender, mocked: aioresponses
) -> None:
    leaky = aiohttp.ClientPayloadError(
        f"broken payload from {BASE}/campaigns/7/settings?api_key={KEY}"
    )
    mocked.post(URL_7, exception=leaky)
    answer = await sender.send(settings_request(7, {"sending_limit": 5}))
    assert answer.status is None
    assert answer.transport_error is not None
    assert KEY not in answer.transport_error
    assert "api_key=REDACTED" in answer.transport_error


async def test_a_refused_connection_is_an_answer_not_an_exception() -> None:
    # Port 9 (discard) on loopback: nothing listens there, so the connection is refused.
    async with aiohttp.ClientSession() as session:
        answer = await HttpSender(session, BASE, KEY, timeout=5).send(settings_request(7, {"x": 1}))
    assert answer.status is None
    assert answer.transport_error is not None
    assert answer.transport_error.startswith("cannot connect")
    assert KEY not in answer.transport_error


async def test_the_limiter_hooks_stamp_each_write_and_learn_each_round_trip() -> None:
    # The limiter's clock reads, in order: grant, headers written, answer received.
    ticks = iter([10.0, 10.5, 10.8, 20.0, 20.1, 20.2])
    limiter = SlidingWindowLimiter([Rate(2, 10)], guard=0.0, clock=lambda: next(ticks))
    config = SimulatorConfig(api_key=KEY)
    async with (
        Simulator(config) as simulator,
        aiohttp.ClientSession(trace_configs=[limiter_tracing()]) as session,
    ):
        sender = HttpSender(session, simulator.base_url, KEY, timeout=5)
        await limiter.acquire()
        assert (await sender.send(settings_request(1, {"sending_limit": 5}))).status == 200
        await limiter.acquire()
        assert (await sender.get_campaign(1)).status == 200
    assert len(simulator.state.requests) == 2
    # Round trips of 0.3 s and 0.1 s from the writes (not 0.8 s from the first grant): a guard
    # of 1.3 x 0.2 x (2+1)/(2-1) = 0.78 s for requests in flight.
    assert limiter.guard == pytest.approx(0.78)
    # The window is full; with two round trips known, its oldest slot is held until the first
    # request's answer (10.8), the latest the server can have counted it.
    assert limiter.wait_time(20.2) == pytest.approx(10.8 + 10 - 20.2)

"""The embedded SmartLead simulator, exercised over loopback HTTP with aiohttp."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import urllib.request
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from bulkrunner.limits.rates import max_in_window
from bulkrunner.model import Rate
from bulkrunner.operations.fields import Vocabulary
from bulkrunner.simulator import (
    FaultPlan,
    Simulator,
    SimulatorConfig,
    SimulatorThread,
    default_schedule,
    default_settings,
)
from bulkrunner.simulator.ratelimit import ServerRateLimit

KEY = "s3cret-simulator-key"


@pytest.fixture(autouse=True)
def _no_server_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Faults, drops and shutdowns must not make aiohttp log errors or tracebacks."""
    yield
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass(frozen=True)
class Reply:
    status: int
    headers: Mapping[str, str]
    content_type: str
    body: Any  # parsed JSON, or the text of a non-JSON answer


class Client:
    """Talks to one running simulator."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self.session = session
        self.base_url = base_url

    async def post(
        self,
        campaign_id: int | str,
        body: object = None,
        *,
        data: bytes | None = None,
        key: str | None = KEY,
        time_limit: float | None = None,
    ) -> Reply:
        payload = data if data is not None else json.dumps(body).encode()
        return await self.call(
            "POST",
            f"/campaigns/{campaign_id}/settings",
            data=payload,
            key=key,
            time_limit=time_limit,
        )

    async def get(self, path: str, *, key: str | None = KEY) -> Reply:
        return await self.call("GET", path, key=key)

    async def call(
        self,
        method: str,
        path: str,
        *,
        data: bytes | None = None,
        key: str | None = KEY,
        time_limit: float | None = None,
    ) -> Reply:
        params = {} if key is None else {"api_key": key}
        headers = {"Content-Type": "application/json"}
        async with self.session.request(
            method,
            self.base_url + path,
            params=params,
            data=data,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=time_limit),
        ) as response:
            text = await response.text()
            is_json = response.content_type == "application/json"
            body = json.loads(text) if is_json else text
            return Reply(response.status, response.headers, response.content_type, body)


@asynccontextmanager
async def serving(
    config: SimulatorConfig | None = None, clock: FakeClock | None = None
) -> AsyncIterator[tuple[Simulator, Client]]:
    simulator = Simulator(config or SimulatorConfig(api_key=KEY), clock=clock or FakeClock())
    async with simulator, aiohttp.ClientSession() as session:
        yield simulator, Client(session, simulator.base_url)


def script(*faults: str, **plan: Any) -> SimulatorConfig:
    """A configuration whose campaign 5 suffers ``faults`` on its successive POSTs."""
    return SimulatorConfig(api_key=KEY, faults=FaultPlan(scripted={5: faults}, **plan))


# --- keys, success, reading back -------------------------------------------------------------


@pytest.mark.parametrize("key", [None, "wrong-key", ""])
async def test_a_missing_or_wrong_key_is_refused_with_401(key: str | None) -> None:
    async with serving() as (simulator, client):
        post = await client.post(7, {"sending_limit": 50}, key=key)
        get = await client.get("/campaigns/", key=key)

    assert (post.status, post.body) == (401, {"message": "Invalid API Key"})
    assert (get.status, get.body) == (401, {"message": "Invalid API Key"})
    assert simulator.state.settings == {}
    assert [r.status for r in simulator.state.requests] == [401, 401]


async def test_a_post_stores_the_sent_fields_and_get_shows_them() -> None:
    async with serving() as (simulator, client):
        post = await client.post(7, {"sending_limit": 50, "track_settings": ["DONT_EMAIL_OPEN"]})
        one = await client.get("/campaigns/7")
        listed = await client.get("/campaigns/")
        unslashed = await client.get("/campaigns")

    assert (post.status, post.body) == (200, {"success": True, "data": {}})
    expected = {
        **default_settings(7),
        "sending_limit": 50,
        "track_settings": ["DONT_EMAIL_OPEN"],
    }
    assert simulator.state.settings == {7: expected}
    assert one.status == 200
    schedule = default_schedule(7)
    assert one.body == {
        "id": 7,
        "name": "Campaign 7",
        "status": "ACTIVE",
        **expected,
        "max_leads_per_day": 50,
        "scheduler_cron_value": schedule.cron(),
        "schedule_start_time": schedule.start_time,
    }
    assert listed.body == unslashed.body == [one.body]
    assert simulator.state.applied == {7: 1}
    assert [(r.method, r.campaign_id, r.applied) for r in simulator.state.posts()] == [
        ("POST", 7, True)
    ]


async def test_the_list_shows_every_listed_campaign_and_every_touched_one() -> None:
    config = SimulatorConfig(api_key=KEY, campaigns={3, 1, 2})
    async with serving(config) as (_, client):
        await client.post(2, {"client_id": 9})
        listed = await client.get("/campaigns/")
        filtered = await client.get("/campaigns/?client_id=9")

    assert [c["id"] for c in listed.body] == [1, 2, 3]
    assert listed.body[0]["sending_limit"] == default_settings(1)["sending_limit"]
    assert [c["id"] for c in filtered.body] == [2]


async def test_without_a_campaign_list_only_touched_campaigns_are_listed() -> None:
    async with serving() as (_, client):
        before = await client.get("/campaigns/")
        await client.post(42, {"send_as_plain_text": True})
        after = await client.get("/campaigns/")

    assert before.body == []
    assert [(c["id"], c["send_as_plain_text"]) for c in after.body] == [(42, True)]


def test_default_settings_are_deterministic_and_valid() -> None:
    assert default_settings(12) == default_settings(12)
    settings = default_settings(12)
    assert settings["track_settings"] == []
    assert settings["stop_lead_settings"] == "REPLY_TO_AN_EMAIL"
    assert 0 <= settings["follow_up_percentage"] <= 100


# --- vocabulary and validation ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("vocabulary", "name", "status"),
    [
        (Vocabulary.DOCUMENTED, "DONT_EMAIL_OPEN", 200),
        (Vocabulary.DOCUMENTED, "DONT_TRACK_EMAIL_OPEN", 400),
        (Vocabulary.LONG, "DONT_TRACK_EMAIL_OPEN", 200),
        (Vocabulary.LONG, "DONT_EMAIL_OPEN", 400),
        (Vocabulary.LONG, "DONT_TRACK_REPLY_TO_AN_EMAIL", 200),
        (None, "DONT_EMAIL_OPEN", 200),
        (None, "DONT_TRACK_EMAIL_OPEN", 200),
    ],
)
async def test_post_accepts_only_the_configured_vocabulary(
    vocabulary: Vocabulary | None, name: str, status: int
) -> None:
    config = SimulatorConfig(api_key=KEY, vocabulary=vocabulary)
    async with serving(config) as (simulator, client):
        reply = await client.post(1, {"track_settings": [name]})

    assert reply.status == status
    if status == 400:
        assert reply.body == {"error": f"Invalid track_settings value - {name}"}
        assert simulator.state.applied == {}


@pytest.mark.parametrize(
    ("vocabulary", "name"),
    [(Vocabulary.DOCUMENTED, "OPEN_AN_EMAIL"), (Vocabulary.LONG, "OPENED_EMAIL")],
)
async def test_stop_lead_settings_in_the_other_vocabulary_is_a_flat_400(
    vocabulary: Vocabulary, name: str
) -> None:
    async with serving(SimulatorConfig(api_key=KEY, vocabulary=vocabulary)) as (_, client):
        reply = await client.post(1, {"stop_lead_settings": name})

    assert (reply.status, reply.body) == (
        400,
        {"error": f"Invalid stop_lead_settings value - {name}"},
    )


async def test_long_names_are_stored_in_the_documented_vocabulary() -> None:
    body = {
        "track_settings": ["DONT_TRACK_LINK_CLICK", "DONT_TRACK_REPLY_TO_AN_EMAIL"],
        "stop_lead_settings": "CLICK_ON_A_LINK",
    }
    async with serving(SimulatorConfig(api_key=KEY, vocabulary=None)) as (simulator, client):
        reply = await client.post(4, body)
        shown = await client.get("/campaigns/4")

    assert reply.status == 200
    stored = simulator.state.settings[4]
    assert stored["track_settings"] == ["DONT_LINK_CLICK", "DONT_TRACK_REPLY_TO_AN_EMAIL"]
    assert stored["stop_lead_settings"] == "CLICKED_LINK"
    assert shown.body["stop_lead_settings"] == "CLICKED_LINK"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"sending_limt": 5}, "sending_limt"),
        ({"sending_limit": None}, "sending_limit"),
        ({"sending_limit": "50"}, "sending_limit"),
        ({"sending_limit": True}, "sending_limit"),
        ({"sending_limit": 5.0}, "sending_limit"),
        ({"enable_ai_esp_matching": 1}, "enable_ai_esp_matching"),
        ({"send_as_plain_text": "true"}, "send_as_plain_text"),
        ({"track_settings": "DONT_EMAIL_OPEN"}, "track_settings"),
        ({"track_settings": [1]}, "track_settings"),
        ({"stop_lead_settings": ["REPLY_TO_AN_EMAIL"]}, "stop_lead_settings"),
        ({"unsubscribe_text": 5}, "unsubscribe_text"),
        ({"follow_up_percentage": 101}, "follow_up_percentage"),
        ({"follow_up_percentage": -1}, "follow_up_percentage"),
        ({"sending_limit": -1}, "sending_limit"),
        ({"client_id": 0}, "client_id"),
        ({"sending_limit": 10, "bogus": 1}, "bogus"),
    ],
)
async def test_invalid_fields_are_refused_with_a_nested_422(body: object, field: str) -> None:
    async with serving() as (simulator, client):
        reply = await client.post(1, body)

    assert reply.status == 422
    error = reply.body["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert f"'{field}'" in error["message"]
    assert error["details"]["field"] == field
    assert simulator.state.settings == {}
    assert simulator.state.posts()[0].applied is False


async def test_an_unknown_field_names_the_allowed_ones() -> None:
    async with serving() as (_, client):
        reply = await client.post(1, {"sending_limt": 5})

    assert reply.body["error"]["message"] == "Unknown field 'sending_limt'"
    assert "sending_limit" in reply.body["error"]["details"]["allowed"]


@pytest.mark.parametrize(
    "body",
    [
        {"follow_up_percentage": 0},
        {"follow_up_percentage": 100},
        {"sending_limit": 0, "client_id": 1, "unsubscribe_text": ""},
        {"track_settings": []},
    ],
)
async def test_values_on_the_bounds_are_accepted(body: dict[str, Any]) -> None:
    async with serving() as (simulator, client):
        reply = await client.post(1, body)

    assert reply.status == 200
    assert simulator.state.settings[1].items() >= body.items()


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"{}", "No settings to update"),
        (b"[]", "Invalid JSON body"),
        (b'"text"', "Invalid JSON body"),
        (b"not json", "Invalid JSON body"),
        (b"", "Invalid JSON body"),
        (b"\xff\xfe{", "Invalid JSON body"),
    ],
)
async def test_bad_bodies_are_refused_with_a_flat_400(data: bytes, error: str) -> None:
    async with serving() as (simulator, client):
        reply = await client.post(1, data=data)

    assert (reply.status, reply.body) == (400, {"error": error})
    assert simulator.state.applied == {}


async def test_campaigns_that_do_not_exist_are_404() -> None:
    async with serving(SimulatorConfig(api_key=KEY, campaigns={1})) as (simulator, client):
        missing = await client.post(2, {"sending_limit": 5})
        missing_get = await client.get("/campaigns/2")
        zero = await client.post(0, {"sending_limit": 5})
        not_a_number = await client.post("abc", {"sending_limit": 5})
        existing = await client.post(1, {"sending_limit": 5})
        elsewhere = await client.get("/webhooks")

    for reply in (missing, missing_get, zero, not_a_number):
        assert (reply.status, reply.body) == (404, {"error": "Campaign not found"})
    assert existing.status == 200
    assert elsewhere.status == 404
    assert simulator.state.settings.keys() == {1}
    assert [r.campaign_id for r in simulator.state.requests] == [2, 2, 0, None, 1, None]


# --- rate limit ------------------------------------------------------------------------------


async def test_the_sliding_window_answers_429_and_rejections_do_not_consume_budget() -> None:
    clock = FakeClock(1000.0)
    config = SimulatorConfig(api_key=KEY, rates=(Rate(2, 10),))
    async with serving(config, clock) as (simulator, client):
        first = await client.post(1, {"sending_limit": 1})
        clock.now = 1001.0
        second = await client.post(1, {"sending_limit": 2})
        clock.now = 1002.5
        refused = await client.post(1, {"sending_limit": 3})
        clock.now = 1009.9
        refused_again = await client.get("/campaigns/")
        clock.now = 1010.0  # the first arrival leaves the window
        third = await client.post(1, {"sending_limit": 4})
        refused_last = await client.post(1, {"sending_limit": 5})

    assert (first.status, second.status, third.status) == (200, 200, 200)
    assert first.headers["X-RateLimit-Limit"] == "2"
    assert first.headers["X-RateLimit-Remaining"] == "1"
    assert first.headers["X-RateLimit-Reset"] == "10"
    assert second.headers["X-RateLimit-Remaining"] == "0"
    assert "Retry-After" not in first.headers

    assert refused.status == 429
    assert refused.headers["Retry-After"] == "8"  # 1000 + 10 - 1002.5 = 7.5, rounded up
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert refused.headers["X-RateLimit-Reset"] == "8"
    assert refused.body == {
        "error": {
            "code": "RATE_LIMIT_EXCEEDED",
            "message": "Rate limit exceeded, retry after 8 seconds.",
            "retry_after": 8,
        }
    }
    assert refused_again.status == 429
    assert refused_again.headers["Retry-After"] == "1"  # 0.1 s, announced as at least 1
    assert refused_last.status == 429
    assert refused_last.headers["Retry-After"] == "1"  # the second arrival leaves at 1011

    assert simulator.state.settings[1]["sending_limit"] == 4
    assert simulator.state.applied == {1: 3}
    assert simulator.state.max_in_window(10) == 5  # every arrival counts, refused or not
    assert [r.arrival for r in simulator.state.requests] == [
        1000.0,
        1001.0,
        1002.5,
        1009.9,
        1010.0,
        1010.0,
    ]


async def test_several_rates_apply_at_once_and_headers_name_the_tightest() -> None:
    clock = FakeClock(0.0)
    config = SimulatorConfig(api_key=KEY, rates=(Rate(2, 1), Rate(3, 10)))
    async with serving(config, clock) as (_, client):
        replies = [await client.get("/campaigns/") for _ in range(3)]
        clock.now = 1.0
        fourth = await client.get("/campaigns/")
        clock.now = 2.0
        fifth = await client.get("/campaigns/")

    assert [r.status for r in replies] == [200, 200, 429]
    assert replies[1].headers["X-RateLimit-Limit"] == "2"
    assert replies[2].headers["Retry-After"] == "1"
    assert fourth.status == 200
    assert fourth.headers["X-RateLimit-Limit"] == "3"
    assert fourth.headers["X-RateLimit-Remaining"] == "0"
    assert fourth.headers["X-RateLimit-Reset"] == "9"
    assert (fifth.status, fifth.headers["Retry-After"]) == (429, "8")


def test_the_server_limit_fills_every_window_but_never_overfills_one() -> None:
    rates = (Rate(10, 2), Rate(25, 10))
    limiter = ServerRateLimit(rates)
    rng = random.Random(5)
    now, admitted = 0.0, []
    for _ in range(3000):
        now += rng.expovariate(20.0)  # offered: about 20 per second
        if limiter.admit(now).admitted:
            admitted.append(now)

    for rate in rates:
        assert max_in_window(admitted, rate.seconds) == rate.limit
    assert len(admitted) >= 25 * int(now // 10)


async def test_requests_without_a_valid_key_still_count_toward_the_limit() -> None:
    config = SimulatorConfig(api_key=KEY, rates=(Rate(1, 60),))
    async with serving(config) as (_, client):
        unauthorized = await client.get("/campaigns/", key="wrong")
        limited = await client.get("/campaigns/")

    assert (unauthorized.status, limited.status) == (401, 429)


class SleepingClock(FakeClock):
    """A fake clock whose sleep moves it forward, recording each wait."""

    def __init__(self, now: float = 1000.0) -> None:
        super().__init__(now)
        self.sleeps: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


async def test_inbound_jitter_delays_when_the_limit_counts_each_request() -> None:
    clock = SleepingClock(1000.0)
    config = SimulatorConfig(
        api_key=KEY, rates=(Rate(1, 1),), jitter=0.5, jitter_seed=7, limit_retry_after=30
    )
    draws = random.Random(7)
    jitter = [draws.uniform(0.0, 0.5) for _ in range(3)]
    simulator = Simulator(config, clock=clock, sleep=clock.sleep)
    async with simulator, aiohttp.ClientSession() as session:
        client = Client(session, simulator.base_url)
        first = await client.post(1, {"sending_limit": 1})  # sent at 1000, counted at 1000 + j0
        # Sent while the first is still in the window, counted after it has left.
        clock.now = 1000.0 + jitter[0] + 1.0 - jitter[1] / 2
        second = await client.post(1, {"sending_limit": 2})
        sent_third = clock.now
        third = await client.post(1, {"sending_limit": 3})

    records = simulator.state.requests
    assert clock.sleeps == jitter  # each request waited its seeded draw, all in [0, 0.5]
    assert [r.jitter for r in records] == jitter
    assert records[0].arrival == 1000.0 + jitter[0]
    assert records[1].arrival == 1000.0 + jitter[0] + 1.0 + jitter[1] / 2
    assert records[2].arrival == sent_third + jitter[2]
    assert (first.status, second.status, third.status) == (200, 200, 429)
    assert third.headers["Retry-After"] == "30"  # the limit's own 429, as configured
    assert third.body["error"]["retry_after"] == 30


@pytest.mark.parametrize(
    "wrong", [{"jitter": -0.1}, {"jitter": float("inf")}, {"limit_retry_after": -1.0}]
)
def test_negative_or_endless_jitter_and_limit_retry_after_are_refused(
    wrong: dict[str, float],
) -> None:
    with pytest.raises(ValueError, match=next(iter(wrong))):
        SimulatorConfig(api_key=KEY, **wrong)  # type: ignore[arg-type]


# --- injected faults -------------------------------------------------------------------------


async def test_scripted_faults_happen_in_order_then_stop() -> None:
    async with serving(script("429", "500", "503", "ok", "drop", retry_after=2.5)) as (
        simulator,
        client,
    ):
        replies = [await client.post(5, {"sending_limit": n}) for n in range(4)]
        with pytest.raises(aiohttp.ClientConnectionError):
            await client.post(5, {"sending_limit": 4})
        after = await client.post(5, {"sending_limit": 5})
        other = await client.post(6, {"sending_limit": 6})

    rate_limited, failed, unavailable, fine = replies
    assert rate_limited.status == 429
    assert rate_limited.headers["Retry-After"] == "3"
    assert rate_limited.body["error"]["code"] == "RATE_LIMIT_EXCEEDED"
    assert rate_limited.body["error"]["retry_after"] == 3
    assert failed.status == 500
    assert failed.body == {"error": {"code": "INTERNAL_ERROR", "message": "Internal server error"}}
    assert (unavailable.status, unavailable.body) == (503, "Service Unavailable")
    assert unavailable.content_type == "text/plain"
    assert fine.status == after.status == other.status == 200

    posts = simulator.state.posts()
    assert [r.fault for r in posts] == ["429", "500", "503", None, "drop", None, None]
    assert [r.status for r in posts] == [429, 500, 503, 200, None, 200, 200]
    assert [r.applied for r in posts] == [False, False, False, True, False, True, True]
    assert simulator.state.applied == {5: 2, 6: 1}
    assert simulator.state.settings[5]["sending_limit"] == 5


async def test_an_injected_429_counts_as_an_admitted_arrival() -> None:
    config = SimulatorConfig(
        api_key=KEY, rates=(Rate(1, 60),), faults=FaultPlan(scripted={5: ["429"]})
    )
    async with serving(config) as (_, client):
        injected = await client.post(5, {"sending_limit": 1})
        limited = await client.post(6, {"sending_limit": 1})

    assert injected.headers["Retry-After"] == "1"
    assert limited.headers["Retry-After"] == "60"


@pytest.mark.parametrize("applies", [False, True])
async def test_a_slow_answer_times_the_client_out_and_is_still_recorded(applies: bool) -> None:
    config = script("slow", slow_seconds=0.2, slow_applies=applies)
    async with serving(config) as (simulator, client):
        with pytest.raises(TimeoutError):
            await client.post(5, {"sending_limit": 77}, time_limit=0.05)
        during = simulator.state.posts()

    assert [(r.fault, r.applied) for r in during] == [("slow", applies)]
    assert simulator.state.applied == ({5: 1} if applies else {})
    assert (5 in simulator.state.settings) is applies
    assert [(r.fault, r.status) for r in simulator.state.requests] == [("slow", None)]


@pytest.mark.parametrize(("applies", "status"), [(False, 504), (True, 200)])
async def test_a_slow_answer_arrives_late_to_a_patient_client(applies: bool, status: int) -> None:
    config = script("slow", slow_seconds=0.01, slow_applies=applies)
    async with serving(config) as (simulator, client):
        reply = await client.post(5, {"sending_limit": 77})

    assert reply.status == status
    assert [(r.status, r.applied) for r in simulator.state.posts()] == [(status, applies)]


async def test_shutting_down_ends_pending_slow_answers() -> None:
    config = script("slow", slow_seconds=30.0)
    simulator = Simulator(config)
    async with aiohttp.ClientSession() as session:
        async with simulator:
            client = Client(session, simulator.base_url)
            pending = asyncio.ensure_future(client.post(5, {"sending_limit": 1}))
            for _ in range(1000):
                if simulator.state.requests:
                    break
                await asyncio.sleep(0.001)
        with pytest.raises(aiohttp.ClientConnectionError):
            await pending

    assert [(r.fault, r.status, r.applied) for r in simulator.state.requests] == [
        ("slow", None, False)
    ]


async def probabilistic_faults(seed: int) -> list[str | None]:
    plan = FaultPlan(probabilities={"500": 0.3, "503": 0.2, "429": 0.1}, seed=seed)
    async with serving(SimulatorConfig(api_key=KEY, faults=plan)) as (simulator, client):
        for n in range(40):
            await client.post(n + 1, {"sending_limit": n})
    return [r.fault for r in simulator.state.posts()]


async def test_probabilistic_faults_are_reproducible_with_a_seed() -> None:
    first = await probabilistic_faults(seed=11)
    second = await probabilistic_faults(seed=11)

    assert first == second
    assert {None, "500", "503"} <= set(first)
    assert not {"slow", "drop"} & set(first)


async def test_probabilities_apply_once_the_script_runs_out() -> None:
    plan = FaultPlan(probabilities={"500": 1.0}, scripted={5: ["ok", "503"]})
    async with serving(SimulatorConfig(api_key=KEY, faults=plan)) as (_, client):
        statuses = [(await client.post(5, {"sending_limit": 1})).status for _ in range(3)]
        other = await client.post(6, {"sending_limit": 1})

    assert statuses == [200, 503, 500]
    assert other.status == 500


@pytest.mark.parametrize(
    "plan",
    [
        {"probabilities": {"500": 0.6, "503": 0.5}},
        {"probabilities": {"timeout": 0.1}},
        {"probabilities": {"500": -0.1}},
        {"scripted": {1: ["ok", "404"]}},
        {"retry_after": -1.0},
        {"slow_seconds": float("nan")},
    ],
)
def test_an_impossible_fault_plan_is_refused(plan: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"fault|retry_after|slow_seconds"):
        FaultPlan(**plan)


# --- recording -------------------------------------------------------------------------------


async def test_every_request_is_recorded_once_and_never_with_the_key() -> None:
    config = SimulatorConfig(api_key=KEY, faults=FaultPlan(scripted={3: ["500"]}))
    async with serving(config) as (simulator, client):
        replies = await asyncio.gather(
            *(client.post(n % 5 + 1, {"sending_limit": n}) for n in range(20)),
            client.post(1, {"sending_limit": 1}, key="wrong-" + KEY),
            client.get("/campaigns/"),
            client.get("/campaigns/1"),
        )

    assert len(simulator.state.requests) == len(replies) == 23
    assert sum(simulator.state.applied.values()) == 19
    for record in simulator.state.requests:
        assert KEY not in repr(record)
        assert "?" not in record.path
        assert record.status is not None


def test_the_thread_runner_serves_synchronous_callers() -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with SimulatorThread(SimulatorConfig(api_key=KEY)) as simulator:
        assert simulator.base_url == f"http://127.0.0.1:{simulator.port}/api/v1"
        request = urllib.request.Request(
            f"{simulator.base_url}/campaigns/9/settings?api_key={KEY}",
            data=json.dumps({"sending_limit": 12}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with opener.open(request, timeout=5) as response:
            assert json.load(response) == {"success": True, "data": {}}
        assert simulator.state.applied == {9: 1}

    assert simulator.state.settings[9]["sending_limit"] == 12
    with pytest.raises(RuntimeError, match="not running"):
        _ = simulator.base_url
    with pytest.raises(RuntimeError, match="only be started once"):
        simulator.start()


def test_summary_reports_the_fullest_window_and_the_429s() -> None:
    from bulkrunner.simulator import RequestRecord as Record
    from bulkrunner.simulator import SimulatorState

    state = SimulatorState()
    for arrival, status, fault in [
        (0.0, 200, None),
        (0.1, 429, "429"),
        (0.2, 429, None),
        (1.5, None, "drop"),
    ]:
        state.requests.append(
            Record(arrival, "POST", "/api/v1/campaigns/1/settings", 1, status, fault, status == 200)
        )
    state.applied[1] += 1
    assert state.summary([Rate(2, 1)]) == [
        "served 4 requests: 1 x 200, 2 x 429, 1 x dropped",
        "429s: 1 from the rate limit, 1 injected; 1 campaign applied, 1 time in all",
        "limit 2/1: at most 3 requests arrived in any 1s window",
        "arrivals spanned 1.50s (2.00/s)",
    ]


def test_the_summary_of_requests_that_all_arrived_at_once_has_no_rate_to_show() -> None:
    """A fake clock that never moves: the summary divides by no zero-second span."""
    from bulkrunner.simulator import RequestRecord, SimulatorState

    state = SimulatorState()
    for _ in range(5):
        state.requests.append(
            RequestRecord(7.0, "GET", "/api/v1/campaigns/", None, 429, None, False)
        )

    assert state.summary([Rate(1, 1)]) == [
        "served 5 requests: 5 x 429",
        "429s: 5 from the rate limit, 0 injected; 0 campaigns applied, 0 times in all",
        "limit 1/1: at most 5 requests arrived in any 1s window",
    ]

"""The engine with a scripted sender and a fake clock: retries, pauses and aborts, no real time."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest

from bulkrunner.limits.limiter import SlidingWindowLimiter
from bulkrunner.limits.rates import max_in_window
from bulkrunner.model import Answer, Outcome, Rate, Row, Status
from bulkrunner.operations.base import Request
from bulkrunner.sending.connection import Connection
from bulkrunner.sending.engine import Engine
from bulkrunner.sending.retry import Policy
from tests.fakes import FakeClock, RecordingSleep, ScriptedSender, connection, target
from tests.heap import own_heap

OK = Answer(200, '{"success": true, "data": {}}')
UNAVAILABLE = Answer(503, "Service Unavailable")
THROTTLED = Answer(429, '{"error": {"code": "RATE_LIMIT_EXCEEDED", "retry_after": 30}}', 30.0)


def rows(count: int) -> list[Row]:
    return [Row(n, 100 + n, {"sending_limit": n}) for n in range(1, count + 1)]


def engine(
    sender: ScriptedSender,
    clock: FakeClock,
    sleep: Callable[[float], Awaitable[None]] | None = None,
    rates: list[Rate] | None = None,
    concurrency: int = 4,
    **policy: Any,
) -> Engine:
    """An engine of a connection whose limiter sleeps on ``clock`` and whose retries wait on
    ``sleep`` (recording the delays asked for)."""
    through = connection(
        sender,
        clock,
        sleep or RecordingSleep(),
        rates or [Rate(1000, 1)],
        concurrency=concurrency,
        **policy,
    )
    return Engine(through)


async def test_every_row_is_sent_once_and_succeeds() -> None:
    clock = FakeClock()
    sender = ScriptedSender()
    outcomes = await engine(sender, clock).run(rows(25))
    assert sorted(cid for cid, _ in sender.calls) == [100 + n for n in range(1, 26)]
    assert all(o.status is Status.SUCCEEDED and o.attempts == 1 for o in outcomes.values())
    assert all(o.http_status == 200 and o.finished_at is not None for o in outcomes.values())


async def test_a_retryable_answer_is_retried_after_the_backoff() -> None:
    clock, sleep = FakeClock(), RecordingSleep()
    sender = ScriptedSender({101: [UNAVAILABLE, UNAVAILABLE]})
    run = engine(sender, clock, sleep)
    outcomes = await run.run(rows(3))
    assert outcomes[1] == Outcome(
        Status.SUCCEEDED, 200, 3, "", outcomes[1].duration_ms, outcomes[1].finished_at
    )
    rng = random.Random(0)
    assert sleep.delays == [rng.uniform(0, 2), rng.uniform(0, 4)]  # full jitter, 2^attempt cap
    assert (run.stats.requests, run.stats.retries, run.stats.throttled) == (5, 2, 0)


async def test_a_429_pauses_everyone_for_retry_after() -> None:
    clock, sleep = FakeClock(start=0.0), RecordingSleep()
    sender = ScriptedSender({101: [THROTTLED]}, clock=clock)
    run = engine(sender, clock, sleep, concurrency=1)
    outcomes = await run.run(rows(3))
    assert sleep.delays == [30.0]  # Retry-After is a floor under the backoff
    # Row 1 was sent at t=0 and throttled; nothing at all was sent again before t=30.
    assert sender.times[0] == 0.0
    assert min(sender.times[1:]) >= 30.0
    assert outcomes[1].attempts == 2
    assert run.stats.throttled == 1
    assert {o.status for o in outcomes.values()} == {Status.SUCCEEDED}


async def test_a_row_fails_after_max_attempts_with_the_last_error() -> None:
    clock = FakeClock()
    sender = ScriptedSender({101: [Answer(500, '{"error": "boom"}')] * 10})
    outcomes = await engine(sender, clock, max_attempts=3).run(rows(2))
    assert outcomes[1].status is Status.FAILED
    assert outcomes[1].attempts == 3
    assert outcomes[1].error == "gave up after 3 attempts; last error: HTTP 500: boom"
    assert outcomes[2].status is Status.SUCCEEDED


@pytest.mark.parametrize("status", [400, 404, 422])
async def test_a_client_error_fails_the_row_at_once(status: int) -> None:
    clock = FakeClock()
    sender = ScriptedSender({102: [Answer(status, '{"error": "Campaign not found"}')]})
    outcomes = await engine(sender, clock).run(rows(3))
    assert outcomes[2] == Outcome(
        Status.FAILED,
        status,
        1,
        f"HTTP {status}: Campaign not found",
        outcomes[2].duration_ms,
        outcomes[2].finished_at,
    )
    assert [o.status for n, o in sorted(outcomes.items()) if n != 2] == [Status.SUCCEEDED] * 2


@pytest.mark.parametrize("status", [401, 403])
async def test_a_rejected_key_aborts_the_run(status: int) -> None:
    clock = FakeClock()
    sender = ScriptedSender({101: [Answer(status, '{"message": "Invalid API Key"}')]})
    run = engine(sender, clock, concurrency=1)
    outcomes = await run.run(rows(50))
    assert len(sender.calls) == 1  # nothing more is sent once the key is known to be bad
    assert outcomes[1].status is Status.FAILED
    assert outcomes[1].error == f"HTTP {status}: Invalid API Key"
    assert {outcomes[n].status for n in range(2, 51)} == {Status.NOT_ATTEMPTED}
    assert run.stats.aborted == f"run aborted: HTTP {status}: Invalid API Key"


async def test_an_abort_wakes_the_workers_waiting_for_a_window_slot() -> None:
    """Workers queued in the limiter when the key is rejected stop waiting: a run that aborts
    does not sit out the rate windows first (with this limiter's sleep, it would never end)."""
    clock = FakeClock()

    async def endless(seconds: float) -> None:
        await anyio.sleep_forever()

    sender = ScriptedSender({101: [Answer(401, "Unauthorized")]})
    limiter = SlidingWindowLimiter([Rate(2, 100)], clock=clock, sleep=endless)
    run = Engine(connection(sender, clock, limiter=limiter, concurrency=4))
    with anyio.fail_after(30):  # a hang guard, not a measurement: without the fix it never ends
        outcomes = await run.run(rows(6))
    assert len(sender.calls) == 2  # the two slots of the window; the others never got one
    assert outcomes[1].status is Status.FAILED
    assert [outcomes[n].status for n in range(3, 7)] == [Status.NOT_ATTEMPTED] * 4


async def test_an_abort_leaves_rows_waiting_for_a_retry_failed_not_lost() -> None:
    clock = FakeClock()
    gate = asyncio.Event()

    async def blocked_sleep(seconds: float) -> None:
        await gate.wait()

    sender = ScriptedSender({101: [UNAVAILABLE], 103: [Answer(401, "Unauthorized")]})
    run = Engine(connection(sender, clock, blocked_sleep, concurrency=1))
    outcomes = await run.run(rows(5))
    assert outcomes[1].status is Status.FAILED
    assert outcomes[1].attempts == 1
    assert "before the next attempt; last error: HTTP 503: Service Unavailable" in outcomes[1].error
    assert [outcomes[n].status for n in (2, 3, 4, 5)] == [
        Status.SUCCEEDED,
        Status.FAILED,
        Status.NOT_ATTEMPTED,
        Status.NOT_ATTEMPTED,
    ]


async def test_a_row_waiting_to_retry_holds_no_worker() -> None:
    clock = FakeClock()
    gate = asyncio.Event()
    order: list[int] = []

    async def gated_sleep(seconds: float) -> None:
        await gate.wait()

    class Recording(ScriptedSender):
        async def send(self, request: Request) -> Answer:
            campaign_id, _ = target(request)
            order.append(campaign_id)
            answer = await super().send(request)
            if len(order) == 4:
                gate.set()  # release the retry only once the other rows were all sent
            return answer

    sender = Recording({101: [UNAVAILABLE]})
    run = Engine(connection(sender, clock, gated_sleep, concurrency=1))
    outcomes = await run.run(rows(4))
    # With one worker, rows 2-4 went while row 1 waited for its retry.
    assert order == [101, 102, 103, 104, 101]
    assert {o.status for o in outcomes.values()} == {Status.SUCCEEDED}


async def test_outcomes_account_for_every_row_when_the_run_is_cancelled() -> None:
    clock = FakeClock()
    sender = ScriptedSender()
    run = engine(sender, clock, rates=[Rate(2, 1)], concurrency=2)
    task = asyncio.ensure_future(run.run(rows(20)))
    while len(sender.calls) < 6:  # noqa: ASYNC110 - let the run make some progress
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    outcomes = run.outcomes()
    assert sorted(outcomes) == list(range(1, 21))
    sent = {cid for cid, _ in sender.calls}
    for number, outcome in outcomes.items():
        if outcome.status is Status.NOT_ATTEMPTED:
            assert 100 + number not in sent
            assert outcome.attempts == 0
        else:  # answered, or cut off in flight: either way the server may have applied it
            assert 100 + number in sent
            assert outcome.attempts == 1
            assert outcome.status is Status.SUCCEEDED or "outcome unknown" in outcome.error


class BlockingSender(ScriptedSender):
    """Never answers for the campaigns in ``stuck``: a request the server sits on."""

    def __init__(self, stuck: set[int]) -> None:
        super().__init__()
        self.stuck = stuck

    async def send(self, request: Request) -> Answer:
        campaign_id, payload = target(request)
        if campaign_id in self.stuck:
            self.calls.append((campaign_id, dict(payload)))
            await asyncio.Event().wait()  # forever, until cancelled
        return await super().send(request)


async def test_a_request_abandoned_in_flight_is_failed_outcome_unknown_not_unsent() -> None:
    clock = FakeClock()
    sender = BlockingSender(stuck={101, 103})
    run = engine(sender, clock, concurrency=2)
    task = asyncio.ensure_future(run.run(rows(4)))
    while {cid for cid, _ in sender.calls} != {101, 102, 103}:  # noqa: ASYNC110
        await asyncio.sleep(0)
    run.stop("run interrupted")  # the first Ctrl-C: nothing new is sent...
    task.cancel()  # ...and the grace period runs out with two requests unanswered
    with pytest.raises(asyncio.CancelledError):
        await task
    outcomes = run.outcomes()
    assert outcomes[2].status is Status.SUCCEEDED
    for number in (1, 3):  # the server may have applied these: never "not attempted"
        assert outcomes[number].status is Status.FAILED
        assert outcomes[number].attempts == 1
        assert outcomes[number].error == (
            "run interrupted while a request was in flight: outcome unknown"
        )
    assert outcomes[4] == Outcome(Status.NOT_ATTEMPTED, error="run interrupted")
    assert run.stats.requests == 3  # the abandoned requests were sent


@pytest.mark.parametrize("concurrency", [1, 4, 16])
async def test_workers_share_one_limiter(concurrency: int) -> None:
    clock = FakeClock()
    sender = ScriptedSender({107: [UNAVAILABLE] * 2, 150: [THROTTLED]}, clock=clock)
    rates = [Rate(10, 2), Rate(60, 60)]
    outcomes = await engine(sender, clock, rates=rates, concurrency=concurrency).run(rows(150))
    assert len(sender.times) == 153
    for rate in rates:
        assert max_in_window(sorted(sender.times), rate.seconds) <= rate.limit
    assert {o.status for o in outcomes.values()} == {Status.SUCCEEDED}


async def test_no_rows_is_a_finished_run() -> None:
    assert await engine(ScriptedSender(), FakeClock()).run([]) == {}


def test_bad_options_are_refused() -> None:
    limiter = SlidingWindowLimiter([Rate(1, 1)])
    with pytest.raises(ValueError, match="concurrency"):
        Connection(ScriptedSender(), limiter, concurrency=0)
    with pytest.raises(ValueError, match="max_attempts"):
        Policy(max_attempts=0)


async def test_no_more_workers_start_than_there_are_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[int] = []
    work = Engine._work

    async def counted(self: Engine, *args: object) -> None:
        started.append(1)
        await work(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(Engine, "_work", counted)
    clock = FakeClock()
    outcomes = await engine(ScriptedSender(), clock, concurrency=1000).run(rows(3))
    assert len(started) == 3
    assert all(o.status is Status.SUCCEEDED for o in outcomes.values())


async def test_a_rows_request_is_made_when_it_is_sent_and_let_go_when_it_finishes() -> None:
    """A long run does not hold every row's request body at once: at most those in flight."""
    import gc
    import weakref
    from collections.abc import Mapping
    from typing import Any

    from bulkrunner.operations.base import Wire
    from bulkrunner.operations.settings import Settings

    class Body(dict[str, Any]):  # a dict that a weak reference can watch
        pass

    made: list[weakref.ref[Body]] = []

    class Watched(Settings):
        def requests(
            self, campaign_id: int, payload: Mapping[str, Any], wire: Wire
        ) -> list[Request]:
            body = Body(payload)
            made.append(weakref.ref(body))
            return [Request("POST", self.path(campaign_id), body)]

    alive: list[int] = []

    class Counting(ScriptedSender):
        async def send(self, request: Request) -> Answer:
            gc.collect()
            alive.append(sum(ref() is not None for ref in made))
            return await super().send(request)

    sender = Counting({102: [UNAVAILABLE]})
    run = engine(sender, FakeClock(), concurrency=2)
    run.operation = Watched()
    with own_heap():  # each send collects: only what the run made
        # a dozen rows hold four times what may be alive at once
        outcomes = await run.run(rows(12))
        assert {o.status for o in outcomes.values()} == {Status.SUCCEEDED}
        assert len(alive) == 13  # row 2 twice
        # the 2 rows in flight and the one waiting for its retry; before, all 12 from the first on
        assert max(alive) <= 3
        gc.collect()
        assert all(ref() is None for ref in made)


async def test_the_rows_an_abort_leaves_unsent_share_one_outcome() -> None:
    """Outcomes are frozen: the rows never sent (up to every row of a long run) hold one."""
    sender = ScriptedSender({101: [Answer(401, '{"message": "Invalid API Key"}')]})
    run = engine(sender, FakeClock(), concurrency=1)
    outcomes = await run.run(rows(50))
    unsent = [outcomes[n] for n in range(2, 51)]
    assert unsent[0] == Outcome(Status.NOT_ATTEMPTED, error=run.stats.aborted or "")
    assert all(outcome is unsent[0] for outcome in unsent)

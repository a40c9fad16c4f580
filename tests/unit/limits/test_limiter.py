"""The limiter on a fake clock: count grants per window, never time real sleeps."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable

import pytest

from bulkrunner.limits.limiter import SlidingWindowLimiter, answer_received, request_written
from bulkrunner.limits.rates import ideal_seconds, max_in_window
from bulkrunner.limits.windows import _kth_latest
from bulkrunner.model import Rate
from tests.fakes import FakeClock

LIMIT_SETS = [
    [Rate(10, 2)],
    [Rate(1, 0.5)],
    [Rate(10, 2), Rate(60, 60)],
    [Rate(10, 2), Rate(60, 60), Rate(1000, 3600)],
    [Rate(5, 1), Rate(7, 2)],
    [Rate(50, 1)],
    [Rate(3, 10), Rate(20, 7)],
]


async def grant_times(rates: list[Rate], requests: int, workers: int, guard: float) -> list[float]:
    clock = FakeClock()
    limiter = SlidingWindowLimiter(rates, guard=guard, clock=clock, sleep=clock.sleep)
    times: list[float] = []
    queue = list(range(requests))

    async def worker() -> None:
        while queue:
            queue.pop()
            times.append((await limiter.acquire()).at)
            await asyncio.sleep(0)  # a "request" in flight lets the other workers run

    await asyncio.gather(*(worker() for _ in range(workers)))
    return sorted(times)


@pytest.mark.parametrize("rates", LIMIT_SETS, ids=lambda rs: "+".join(map(str, rs)))
@pytest.mark.parametrize("workers", [1, 4, 16])
async def test_no_window_ever_holds_more_than_its_limit(rates: list[Rate], workers: int) -> None:
    times = await grant_times(rates, requests=250, workers=workers, guard=0.0)
    assert len(times) == 250
    for rate in rates:
        assert max_in_window(times, rate.seconds) <= rate.limit


@pytest.mark.parametrize("rates", LIMIT_SETS, ids=lambda rs: "+".join(map(str, rs)))
async def test_the_ceiling_is_reached_not_a_fraction_of_it(rates: list[Rate]) -> None:
    times = await grant_times(rates, requests=250, workers=4, guard=0.0)
    # With no guard, the limiter grants on the fastest schedule the limits allow.
    assert times[-1] - times[0] == pytest.approx(ideal_seconds(250, rates))


async def test_the_guard_widens_each_window_by_a_little() -> None:
    times = await grant_times([Rate(10, 2)], requests=101, workers=4, guard=0.01)
    assert max_in_window(times, 2.01) <= 10
    assert times[-1] - times[0] == pytest.approx(10 * 2.01)


async def test_a_leaky_bucket_would_fail_the_same_count() -> None:
    # The counting check above is not vacuous: aiolimiter-style draining, which lets N through
    # at once and then one every S/N, puts nearly 2N in one window.
    n, s = 10, 2.0
    leaky = [0.0] * n + [(k + 1) * s / n for k in range(n)]
    assert max_in_window(sorted(leaky), s) == 2 * n - 1


async def test_the_default_guard_keeps_the_long_run_rate_at_99_percent() -> None:
    clock = FakeClock()
    limiter = SlidingWindowLimiter([Rate(50, 1)], clock=clock, sleep=clock.sleep)
    times = [(await limiter.acquire()).at for _ in range(1000)]
    assert max_in_window(times, 1.0) <= 50
    # The first window's burst is free; every later request waits for the window to turn over.
    long_run_rate = (len(times) - 50) / (times[-1] - times[0])
    assert long_run_rate >= 0.99 * 50


async def test_pause_holds_everyone_back() -> None:
    clock = FakeClock(start=0.0)
    limiter = SlidingWindowLimiter([Rate(100, 1)], clock=clock, sleep=clock.sleep)
    assert (await limiter.acquire()).at == 0.0
    limiter.pause(30)
    limiter.pause(5)  # a shorter pause never cuts an earlier one short
    assert (await limiter.acquire()).at == pytest.approx(30.0)
    assert clock.sleeps == [pytest.approx(30.0)]


async def test_waiters_are_served_in_arrival_order() -> None:
    clock = FakeClock(start=0.0)
    limiter = SlidingWindowLimiter([Rate(1, 1)], guard=0.0, clock=clock, sleep=clock.sleep)
    order: list[int] = []

    async def take(i: int) -> None:
        await limiter.acquire()
        order.append(i)

    await asyncio.gather(*(take(i) for i in range(6)))
    assert order == list(range(6))
    assert clock.now == pytest.approx(5.0)


def test_rates_parse_and_reject() -> None:
    assert Rate.parse("10/2") == Rate(10, 2.0)
    assert Rate.parse(" 1000/3600 ") == Rate(1000, 3600.0)
    for bad in ("10", "ten/2", "10/0", "0/5", "10/-1", "10/inf", "1.5/2"):
        with pytest.raises(ValueError, match="N/SECONDS"):
            Rate.parse(bad)


async def test_seeded_requests_of_an_earlier_run_still_count() -> None:
    clock = FakeClock(start=100.0)
    limiter = SlidingWindowLimiter([Rate(10, 2)], guard=0.0, clock=clock, sleep=clock.sleep)
    limiter.seed([1.5] * 8, in_flight=2)  # 8 sent 1.5 s ago, 2 in flight at the kill
    first = await limiter.acquire()
    assert first.at == pytest.approx(100.5)  # the 8 leave the window first
    times = [first.at] + [(await limiter.acquire()).at for _ in range(30)]
    assert max_in_window(sorted([98.5] * 8 + [100.0] * 2 + times), 2.0) <= 10


async def test_eta_follows_the_windows_from_where_they_stand() -> None:
    clock = FakeClock(start=0.0)
    limiter = SlidingWindowLimiter(
        [Rate(10, 2), Rate(60, 60)], guard=0.0, clock=clock, sleep=clock.sleep
    )
    assert limiter.eta(10, 0.0) == 0.0  # a fresh burst goes at once
    assert limiter.eta(54, 0.0) == pytest.approx(10.0)  # 5 more windows of 2 s
    for _ in range(10):
        await limiter.acquire()
    assert limiter.eta(1, 0.5) == pytest.approx(1.5)  # wait for the first window to turn
    assert limiter.eta(100, 0.0) == pytest.approx(60 + 2 * 4)  # the minute limit binds


# --- slots stamped at the write, a guard learned from round-trip times ------------------------


async def test_a_slot_counts_from_when_the_request_was_written_not_granted() -> None:
    clock = FakeClock()
    limiter = SlidingWindowLimiter([Rate(2, 1)], guard=0.0, clock=clock, sleep=clock.sleep)
    first = await limiter.acquire()
    clock.now += 0.3  # the request waits 0.3 s (a connection being opened) before it is written
    request_written()
    await limiter.acquire()
    request_written()
    third = await limiter.acquire()
    # The server counts the first request from its write at +0.3 s, so the third must wait
    # for that slot to leave the window, not for the grant's.
    assert third.at == pytest.approx(first.at + 0.3 + 1.0)


async def round_trips(limiter: SlidingWindowLimiter, clock: FakeClock, rtts: list[float]) -> None:
    """Send one request per round-trip time, each answered ``rtt`` after its write."""
    for rtt in rtts:
        await limiter.acquire()
        request_written()
        clock.now += rtt
        answer_received(200)


async def test_the_guard_grows_to_cover_the_spread_of_round_trip_times() -> None:
    clock = FakeClock()
    limiter = SlidingWindowLimiter([Rate(1000, 2)], guard=0.005, clock=clock, sleep=clock.sleep)
    await round_trips(limiter, clock, [0.080] * 20)
    assert limiter.guard == 0.005  # steady round trips: the configured guard, a floor, holds
    # Round trips between 80 and 180 ms: the one-way jitter may be up to 100 ms.
    await round_trips(limiter, clock, [0.080 + 0.100 * k / 40 for k in range(41)])
    assert 0.100 <= limiter.guard <= 0.135
    # Windows now leave that much room: after a burst of 1000, the next waits 2 s + the guard.
    clock.now += 10.0
    burst = [await limiter.acquire() for _ in range(1000)]
    assert {grant.at for grant in burst} == {clock.now}
    nxt = await limiter.acquire()
    assert nxt.at == pytest.approx(burst[0].at + 2.0 + limiter.guard)


async def test_few_round_trips_give_a_wider_guard_than_their_plain_spread() -> None:
    clock = FakeClock()
    limiter = SlidingWindowLimiter([Rate(10, 2)], guard=0.0, clock=clock, sleep=clock.sleep)
    await round_trips(limiter, clock, [0.05, 0.15, 0.10])
    # Three draws spread over 0.1 s understate the jitter's width: 1.3 x 0.1 x (3+1)/(3-1).
    assert limiter.guard == pytest.approx(0.26)


async def test_server_errors_and_lost_answers_do_not_teach_the_guard() -> None:
    clock = FakeClock()
    limiter = SlidingWindowLimiter([Rate(1000, 2)], guard=0.005, clock=clock, sleep=clock.sleep)
    await round_trips(limiter, clock, [0.05, 0.15])
    assert limiter.guard == pytest.approx(0.39)  # 1.3 x 0.1 x (2+1)/(2-1)
    for status in (503, None, 504):
        await limiter.acquire()
        request_written()
        clock.now += 30.0  # a slow 503 or 504, a timed-out request
        answer_received(status)
    assert limiter.guard == pytest.approx(0.39)


async def test_the_learned_guard_is_capped_at_a_quarter_of_the_shortest_window() -> None:
    clock = FakeClock()
    limiter = SlidingWindowLimiter(
        [Rate(10, 2), Rate(60, 60)], guard=0.005, clock=clock, sleep=clock.sleep
    )
    await round_trips(limiter, clock, [0.05, 5.0])  # a 5 s answer (a slow server)
    assert limiter.guard == 0.5


async def test_a_429_widens_the_guard_as_well_as_cutting_the_rate() -> None:
    clock = FakeClock()
    limiter = SlidingWindowLimiter([Rate(10, 2)], guard=0.01, clock=clock, sleep=clock.sleep)
    await round_trips(limiter, clock, [0.05] * 5)
    limiter.throttled()
    assert limiter.guard == pytest.approx(0.02)
    assert limiter.adaptive is not None
    assert limiter.adaptive.throttles == 1
    limiter.throttled()
    assert limiter.guard == pytest.approx(0.04)
    await round_trips(limiter, clock, [0.05] * 5)  # steady round trips do not narrow it back
    assert limiter.guard == pytest.approx(0.04)
    for _ in range(10):
        limiter.throttled()
    assert limiter.guard == pytest.approx(0.5)  # at most a quarter of the 2 s window


# --- an answered request holds its window until its answer, less the fastest round trip -------


Delay = Callable[[random.Random], float]


async def served(
    limiter: SlidingWindowLimiter, clock: FakeClock, count: int, way_in: Delay, way_back: Delay
) -> list[float]:
    """One worker sends ``count`` requests: the server counts each ``way_in`` after its write and
    the answer comes ``way_back`` later. Returns the times the server counted them."""
    rng = random.Random(7)
    counted: list[float] = []
    for _ in range(count):
        await limiter.acquire()
        request_written()
        clock.now += way_in(rng)
        counted.append(clock.now)
        clock.now += way_back(rng)
        answer_received(200)
    return counted


def window_turn(counted: list[float], limit: int) -> float:
    """The mean time, as the server counted, from each request to the one ``limit`` later."""
    turns = [later - earlier for earlier, later in zip(counted, counted[limit:], strict=False)]
    return sum(turns) / len(turns)


async def test_a_request_the_server_counted_late_holds_its_window_until_its_answer() -> None:
    clock = FakeClock()
    limiter = SlidingWindowLimiter([Rate(10, 1)], clock=clock, sleep=clock.sleep)
    fast: Delay = lambda rng: 0.001  # noqa: E731
    steady = await served(limiter, clock, 40, fast, fast)
    clock.now += 5.0
    # One request of a burst is held back 200 ms before the server counts it (the server, or
    # the network, stalled): one request in 50, which the spread of round trips leaves out.
    stalled = iter([0.001] * 3 + [0.200] + [0.001] * 36)
    burst = await served(limiter, clock, 40, lambda rng: next(stalled), fast)
    assert max_in_window(sorted(steady + burst), 1.0) <= 10


async def test_each_request_holds_its_window_for_its_own_delay_not_the_widest() -> None:
    clock = FakeClock()
    limiter = SlidingWindowLimiter([Rate(10, 1)], clock=clock, sleep=clock.sleep)
    counted = await served(
        limiter, clock, 300, lambda rng: rng.uniform(0.0, 0.050), lambda rng: 0.001
    )
    assert max_in_window(counted, 1.0) <= 10
    # Holding every window for the widest delay, and its margin, turns them every 1.06 s.
    assert window_turn(counted, 10) <= 1.05


async def test_steady_round_trips_cost_a_window_little_more_than_the_least_guard() -> None:
    # Loopback: 50 ms of the server's latency on the way back, well under a millisecond of noise.
    clock = FakeClock()
    limiter = SlidingWindowLimiter([Rate(10, 1)], clock=clock, sleep=clock.sleep)
    counted = await served(
        limiter,
        clock,
        300,
        lambda rng: rng.uniform(0.0, 0.0005),
        lambda rng: 0.050 + rng.uniform(0.0, 0.0005),
    )
    assert max_in_window(counted, 1.0) <= 10
    assert window_turn(counted, 10) <= 1.005  # 0.995 of the ceiling


@pytest.mark.parametrize("spread", [0.020, 0.050])
async def test_a_way_back_faster_than_usual_does_not_hide_a_slow_way_in(spread: float) -> None:
    # An answer bounds when the server counted its request only as well as the fastest round
    # trip stands for the fastest way in and back; with both ways varying, it may not.
    for seed in range(20):
        clock = FakeClock()
        limiter = SlidingWindowLimiter([Rate(10, 1)], clock=clock, sleep=clock.sleep)
        rng = random.Random(seed)
        counted: list[float] = []
        for _ in range(300):
            await limiter.acquire()
            request_written()
            clock.now += rng.uniform(0.0, spread)
            counted.append(clock.now)
            clock.now += rng.uniform(0.0, spread)
            answer_received(200)
        assert max_in_window(counted, 1.0) <= 10, seed


@pytest.mark.parametrize("seed", range(20))
def test_the_kth_latest_of_two_shifted_lists(seed: int) -> None:
    rng = random.Random(seed)
    a = sorted(rng.uniform(0, 10) for _ in range(rng.randint(0, 12)))
    b = sorted(rng.uniform(0, 10) for _ in range(rng.randint(0, 12)))
    da, db = rng.uniform(-3, 3), rng.uniform(-3, 3)
    both = sorted([x + da for x in a] + [x + db for x in b])
    for k in range(1, len(both) + 1):
        assert _kth_latest(a, da, b, db, k) == both[-k]


async def test_a_limit_far_above_the_rate_holds_a_minute_of_requests_not_all_of_them() -> None:
    """--rate 1000000/1 (no limit in the way): the window lets go of requests long past it,
    instead of keeping the last million a long run sent."""
    clock = FakeClock()
    limiter = SlidingWindowLimiter([Rate(1_000_000, 1)], clock=clock, sleep=clock.sleep)
    for _ in range(20_000):  # 100 requests a second for 200 s
        await limiter.acquire()
        clock.now += 0.01
    (window,) = limiter._windows
    assert len(window.pending) <= 100 * 62
    assert window.wait(clock(), 0.0, 0.0) == 0.0


@pytest.mark.parametrize("per_second", [5, 400, 2_000])
async def test_the_sending_rate_is_measured_above_the_grant_times_it_keeps(
    per_second: int,
) -> None:
    """The progress line's rate (over 10 s) and the rate a 429 cuts from (over 1 s) are the
    rate sent, even when a span holds more grants than the limiter keeps times of."""
    clock = FakeClock()
    limiter = SlidingWindowLimiter([Rate(1_000_000, 1)], clock=clock, sleep=clock.sleep)
    for _ in range(per_second * 12):
        await limiter.acquire()
        clock.now += 1 / per_second
    between = clock() - 0.5 / per_second  # halfway between two grants: no grant on an edge
    for span in (1.0, 10.0):
        assert limiter.sending_rate(between, span=span) == pytest.approx(per_second, rel=0.01)


async def test_its_own_429s_pause_is_waited_whatever_max_wait_another_commands_longer_is_not() -> (
    None
):
    """--max-wait bounds the waits a server asks for: this process's own 429 asked for what it
    asked (held to --max-wait where the answer is read), so even a 1 s pause past a --max-wait
    of 0.5 s is waited; a pause longer than --max-wait recorded by another command stops it."""
    from bulkrunner.errors import WaitTooLong

    clock = FakeClock()
    limiter = SlidingWindowLimiter([Rate(10, 1)], clock=clock, sleep=clock.sleep)
    limiter.pause(1.0)  # this process's 429, without Retry-After: its own second
    await limiter.acquire(max_wait=0.5)
    assert clock.sleeps == [1.0]
    limiter.paused_until = clock.now + 30  # as the state store tells of another command's
    with pytest.raises(WaitTooLong, match="a 429 on this account asked to wait 30s"):
        await limiter.acquire(max_wait=5)

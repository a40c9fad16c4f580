"""Adaptive rate control on a fake clock: the rate after k throttles, recovery after quiet time."""

from __future__ import annotations

import itertools

import pytest

from bulkrunner.errors import WaitTooLong
from bulkrunner.limits.adaptive import BETA, AdaptiveRate
from bulkrunner.limits.limiter import SlidingWindowLimiter
from bulkrunner.limits.rates import max_in_window
from bulkrunner.model import Rate
from tests.fakes import FakeClock


def test_no_throttle_no_limit() -> None:
    assert AdaptiveRate(ceiling=40).rate(now=123.0) is None


@pytest.mark.parametrize("throttles", [1, 2, 3, 5, 8])
def test_each_throttle_cuts_the_rate_to_seventy_percent(throttles: int) -> None:
    control = AdaptiveRate(ceiling=40)
    for _ in range(throttles):
        control.on_throttle(now=100.0, sending_rate=40.0)
    assert control.rate(100.0) == pytest.approx(max(0.5, 40 * BETA**throttles))
    assert control.throttles == throttles


def test_the_rate_never_falls_below_the_floor() -> None:
    control = AdaptiveRate(ceiling=40, floor=2.0)
    for _ in range(30):
        control.on_throttle(now=0.0, sending_rate=40.0)
    assert control.rate(0.0) == 2.0


def test_recovery_is_cubic_fast_then_flat_then_probing() -> None:
    control = AdaptiveRate(ceiling=100)
    control.on_throttle(now=0.0, sending_rate=20.0)  # last_max 20, drops to 14
    k = (20 * (1 - BETA) / 0.4) ** (1 / 3)
    rates = {t: control.rate(t) for t in (0.0, k / 2, k, k + 1.0, k + 4.0)}
    assert rates[0.0] == pytest.approx(14.0)
    assert rates[k / 2] == pytest.approx(20 - 6 / 8)  # most of the way back already
    assert rates[k] == pytest.approx(20.0)  # flat at the rate that was throttled
    assert rates[k + 1.0] == pytest.approx(20.4)  # then probing above it, slowly...
    assert rates[k + 4.0] == pytest.approx(20 + 0.4 * 64)  # ...and faster
    assert control.rate(k + 20.0) is None  # past the configured ceiling: stands aside


def test_a_throttle_is_measured_against_the_rate_actually_sent() -> None:
    control = AdaptiveRate(ceiling=40)
    control.on_throttle(now=0.0, sending_rate=12.0)
    assert control.rate(0.0) == pytest.approx(12 * BETA)
    control.on_throttle(now=0.0, sending_rate=30.0)  # the allowed rate, not a burst, counts
    assert control.rate(0.0) == pytest.approx(12 * BETA * BETA)


async def test_the_limiter_spaces_requests_at_the_adapted_rate() -> None:
    clock = FakeClock(start=0.0)
    limiter = SlidingWindowLimiter([Rate(40, 1)], clock=clock, sleep=clock.sleep)
    for _ in range(10):
        await limiter.acquire()
    limiter.throttled()  # 10 in the last second were too many
    assert limiter.adaptive is not None
    assert limiter.adaptive.rate(clock.now) == pytest.approx(7.0)
    times = [(await limiter.acquire()).at for _ in range(5)]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # 7/s right after the throttle, recovering towards (never past, this soon) the 10/s it drew
    assert times[0] == pytest.approx(1 / 7.0)  # the burst ended at t=0
    assert all(1 / 10.0 < gap < 1 / 7.0 for gap in gaps)
    assert gaps == sorted(gaps, reverse=True)


async def test_an_announced_lower_limit_is_held_over_the_shortest_window() -> None:
    clock = FakeClock(start=0.0)
    limiter = SlidingWindowLimiter([Rate(40, 1), Rate(1000, 3600)], clock=clock, sleep=clock.sleep)
    first = await limiter.acquire()
    assert not limiter.observe(10, 9, 1.0, first)
    assert limiter.learned == Rate(10, 1)
    assert limiter.effective_rates == (Rate(40, 1), Rate(1000, 3600), Rate(10, 1))
    times = [first.at] + [(await limiter.acquire()).at for _ in range(99)]
    assert max_in_window(times, 1.0) <= 10
    limiter.observe(25, 3, 1.0, first)  # a higher limit never loosens a learned one
    assert limiter.learned == Rate(10, 1)


async def test_an_announced_limit_a_configured_window_holds_already_is_not_learned() -> None:
    """`--rate 8/4` (with the published 10/2 beside it) and a server announcing 8: 8/4 holds
    8 in any 2 s already; a learned 8/2 would only be one more limit to name in the summary."""
    clock = FakeClock(start=0.0)
    rates = [Rate(10, 2), Rate(8, 4), Rate(60, 60)]
    limiter = SlidingWindowLimiter(rates, clock=clock, sleep=clock.sleep)
    first = await limiter.acquire()
    assert not limiter.observe(8, 7, 4.0, first)
    assert limiter.learned is None
    assert limiter.effective_rates == tuple(rates)
    limiter.observe(7, 6, 4.0, first)  # below every configured limit: held over 2 s
    assert limiter.learned == Rate(7, 2)


async def test_a_slot_an_announced_limit_puts_past_max_wait_is_refused_not_waited_for() -> None:
    clock = FakeClock(start=0.0)
    limiter = SlidingWindowLimiter([Rate(1000, 3600)], guard=0.0, clock=clock, sleep=clock.sleep)
    first = await limiter.acquire(300)
    limiter.observe(1, 0, 3600.0, first)  # "1 request", held over the hour
    with pytest.raises(WaitTooLong) as caught:
        await limiter.acquire(300)
    assert (caught.value.seconds, caught.value.asked_by) == (
        3600.0,
        "X-RateLimit-Limit 1, held over 3600s",
    )
    assert clock.sleeps == []
    assert (await limiter.acquire()).at == 3600.0  # without a bound, the hour is waited for


async def test_a_long_wait_the_configured_limits_make_is_not_the_servers_to_refuse() -> None:
    clock = FakeClock(start=0.0)
    limiter = SlidingWindowLimiter([Rate(2, 3600)], guard=0.0, clock=clock, sleep=clock.sleep)
    first = await limiter.acquire(300)
    await limiter.acquire(300)
    limiter.observe(1, 0, 3600.0, first)  # lower than 2, but the hour is waited for anyway
    assert (await limiter.acquire(300)).at == 3600.0


async def test_a_spent_budget_pauses_only_when_the_windows_have_room() -> None:
    clock = FakeClock(start=0.0)
    limiter = SlidingWindowLimiter([Rate(5, 1)], guard=0.0, clock=clock, sleep=clock.sleep)
    grants = [await limiter.acquire() for _ in range(3)]
    # The answer to the 1st request says 2 left; the 2nd and 3rd were sent since: none left.
    assert limiter.observe(None, 2, 0.8, grants[0])
    assert limiter.wait_time(clock.now) == pytest.approx(0.8)
    clock.now += 1.0
    for _ in range(5):
        await limiter.acquire()
    # Now the configured window is full anyway: the server's 0 is expected, nothing extra.
    assert not limiter.observe(None, 0, 1.0, grants[0])

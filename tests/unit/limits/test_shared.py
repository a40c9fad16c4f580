"""Limiters sharing an account's budget through the state store's ledger (``limits.shared``,
``records.budget.AccountBudget``), on a timeline the test drives: several "processes" (each its
own connection to one store, its own limiter) never overfill the account's windows together, a
pause one is told holds them all, a limiter starts with what the store holds, and only its own
account's. Whole commands sharing a store: ``tests/unit/commands/test_shared_budget.py``."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import math
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path

import pytest

from bulkrunner.config.folders import account_id
from bulkrunner.limits.limiter import SlidingWindowLimiter
from bulkrunner.limits.rates import ideal_seconds, max_in_window
from bulkrunner.limits.shared import LEASE, BudgetLost, Share, Sharing
from bulkrunner.model import Rate
from bulkrunner.records.budget import AccountBudget, Ledger
from bulkrunner.records.store import StateStore

ACME = account_id("https://server.smartlead.ai/api/v1", "sk-acme-shared-0101")
OTHER = account_id("https://server.smartlead.ai/api/v1", "sk-other-shared-0202")
WALL = 1_800_000_000.0  # the ledger's clock (wall-clock seconds) when the timeline is at 0


class Timeline:
    """A clock for several tasks at once: ``sleep`` waits until the timeline reaches its end,
    and ``drive`` moves the timeline to the earliest end asked for once every task is waiting
    (as trio's autojump clock does), so that tasks sleeping together wait together."""

    def __init__(self) -> None:
        self.now = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + max(0.0, seconds), next(self._order), woken))
        await woken

    async def drive(self, until: asyncio.Future[None]) -> None:
        while not until.done():
            for _ in range(50):  # every task that can run, runs
                await asyncio.sleep(0)
            if self._sleepers:
                at, _, woken = heapq.heappop(self._sleepers)
                self.now = max(self.now, at)
                woken.set_result(None)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def stores(folder: Path) -> Iterator[list[StateStore]]:
    """Three connections to one store: three processes' worth."""
    with ExitStack() as stack:
        yield [stack.enter_context(StateStore.open(folder)) for _ in range(3)]


def limiter(
    store: StateStore | None,
    timeline: Timeline,
    rates: Sequence[Rate],
    account: str = ACME,
    guard: float = 0.0,
) -> SlidingWindowLimiter:
    """A process's limiter on ``account``, sharing its budget through ``store`` (None: not)."""
    budget = None if store is None else AccountBudget(Ledger(store), account, lambda: WALL)
    return SlidingWindowLimiter(
        rates, guard=guard, clock=timeline, sleep=timeline.sleep, budget=budget
    )


async def send_all(
    timeline: Timeline, limiters: Sequence[SlidingWindowLimiter], each: int
) -> list[list[float]]:
    """``each`` requests through every limiter at once, four workers each; each limiter's
    grant times (when its requests go)."""
    granted: list[list[float]] = [[] for _ in limiters]

    async def worker(n: int, left: list[int]) -> None:
        while left:
            left.pop()
            granted[n].append((await limiters[n].acquire()).at)

    async def everyone() -> None:
        queues = [list(range(each)) for _ in limiters]
        await asyncio.gather(
            *(worker(n, queues[n]) for n in range(len(limiters)) for _ in range(4))
        )

    done = asyncio.ensure_future(everyone())
    await timeline.drive(done)
    await done
    return granted


@pytest.mark.parametrize(
    "rates",
    [[Rate(10, 2), Rate(60, 60)], [Rate(1000, 1), Rate(1500, 2)]],
    ids=["claims", "reservations"],
)
async def test_processes_sharing_an_account_never_overfill_its_windows(
    stores: list[StateStore], rates: list[Rate]
) -> None:
    """Three processes on one account at once: together no window holds more than its limit,
    every request each granted is in the ledger, and they finish about when one process alone
    would have sent them all. Without the store, each fills the windows on its own."""
    each = 40 if rates[0].seconds == 2 else 1000
    reserving = Sharing(AccountBudget(Ledger(stores[0]), ACME, lambda: WALL), rates).most > 1
    assert reserving == (rates[0].limit == 1000)  # a claim each at 10/2, reservations at 1000/1
    timeline = Timeline()
    limiters = [limiter(store, timeline, rates) for store in stores]
    granted = await send_all(timeline, limiters, each)
    sent = sorted(at for times in granted for at in times)
    assert len(sent) == 3 * each
    for rate in rates:
        assert max_in_window(sent, rate.seconds) <= rate.limit
    assert len(Ledger(stores[0]).recent(ACME, 0.0)) == 3 * each  # every one recorded
    # As fast as one process sending them all (a reservation holds a window LEASE longer).
    ideal = ideal_seconds(3 * each, [Rate(r.limit, r.seconds + LEASE * reserving) for r in rates])
    assert sent[-1] - sent[0] <= ideal * 1.01 + 0.01

    alone = Timeline()
    apart = await send_all(alone, [limiter(None, alone, rates) for _ in stores], each)
    sent = sorted(at for times in apart for at in times)
    assert max_in_window(sent, rates[0].seconds) == 3 * rates[0].limit  # (what the store stops)


async def test_a_pause_one_process_is_told_holds_every_process(stores: list[StateStore]) -> None:
    """A 429's Retry-After says the account's budget is spent: every process waits it out."""
    timeline = Timeline()
    told, other = (limiter(store, timeline, [Rate(100, 1)]) for store in stores[:2])
    told.pause(30)
    told.pause(5)  # never shortens the pause
    granted = await send_all(timeline, [other], 1)
    assert granted == [[30.0]]
    assert Ledger(stores[2]).claim(ACME, [Rate(100, 1)], WALL + 29) == pytest.approx(1.0)


async def test_a_limiter_starts_with_what_the_store_holds_for_its_account_alone(
    stores: list[StateStore],
) -> None:
    """A following command (or a resumed one) counts the requests every process sent on its
    account within its windows, and no other account's."""
    Ledger(stores[0]).record(ACME, [WALL - 1.5] * 10 + [WALL - 100.0] * 5, [Rate(10, 2)])
    timeline = Timeline()
    following = limiter(stores[1], timeline, [Rate(10, 2), Rate(60, 60)])
    assert following.wait_time(0.0) == pytest.approx(0.5)  # for the ETA and what it says
    assert following.eta(10, 0.0) == pytest.approx(0.5)

    assert limiter(stores[1], timeline, [Rate(10, 2)], account=OTHER).wait_time(0.0) == 0.0
    granted = await send_all(timeline, [following], 10)
    assert min(granted[0]) == pytest.approx(0.5)
    Ledger(stores[0]).pause(ACME, WALL + 30)  # a 429 another process was answered
    paused = limiter(stores[2], timeline, [Rate(10, 2)])
    assert paused.wait_time(timeline.now) == pytest.approx(30 - timeline.now)


class ScriptedBudget:
    """A budget that grants what it is told, numbering the account's requests as if another
    process had sent ``others[k]`` requests before the k-th ask; records the guards asked with."""

    def __init__(self, others: Sequence[int] = ()) -> None:
        self.others = list(others)
        self.last = 0
        self.guards: list[float] = []
        self.asked: list[int] = []  # how many each ask was for
        self.moved: list[tuple[int, float]] = []
        self.failing = False

    def ask(
        self, rates: Sequence[Rate], now: float, guard: float, most: int, until: float
    ) -> Share:
        if self.failing:
            raise BudgetLost("/state/state.sqlite3: the state store stayed locked")
        self.guards.append(guard)
        self.asked.append(most)
        self.last += (self.others.pop(0) if self.others else 0) + most
        return Share(most, 0.0, self.last)

    def sent(self, seq: int, at: float) -> None:
        self.moved.append((seq, at))

    def pause(self, until: float) -> None:
        if self.failing:
            raise BudgetLost("/state/state.sqlite3: the state store stayed locked")

    def recent(self, since: float) -> tuple[list[float], float]:
        return [], -math.inf


def test_the_learned_guard_holds_the_budget_only_while_another_process_sends() -> None:
    """Alone, this process's own windows (held from each write until its answer) are the ones
    that bind: the budget is asked with the least guard. Once another process's requests show
    (more were numbered than this one asked for), with the learned guard, for a widest window."""
    budget = ScriptedBudget(others=[0, 0, 3, 0])
    sharing = Sharing(budget, [Rate(10, 2), Rate(60, 60)])
    for now in (0.0, 1.0, 2.0, 3.0, 62.0, 64.0):
        assert sharing.ask([Rate(10, 2)], now, 0.002, 0.05, 1) == 0.0
    assert budget.guards == [0.002, 0.002, 0.002, 0.05, 0.05, 0.002]  # others seen at 2.0
    assert sharing.others_sent == 3  # (the summary's rate counts them)


def test_reservations_are_used_until_their_lease_ends_then_given_up() -> None:
    budget = ScriptedBudget()
    sharing = Sharing(budget, [Rate(1000, 1)])
    assert sharing.most == math.floor(1000 * LEASE) == 8
    for _ in range(8):  # one ask for eight requests
        assert sharing.ask([Rate(1000, 1)], 10.0, 0.0, 0.0, 8) == 0.0
    assert len(budget.guards) == 1
    assert sharing.ask([Rate(1000, 1)], 10.001, 0.0, 0.0, 8) == 0.0  # the ninth: a new lease
    assert sharing.ask([Rate(1000, 1)], 10.02, 0.0, 0.0, 8) == 0.0  # past it: the rest given up
    assert len(budget.guards) == 3


async def test_a_reservation_asks_no_more_than_the_own_windows_let_go_before_its_lease_ends() -> (
    None
):
    """A reserved request this process cannot send before the lease ends counts as sent all
    the same, holding every process's windows in vain (at 1,000/s, one in twelve was, a tenth of
    the throughput): a limiter whose own window lets two more go asks for two, not eight."""
    budget = ScriptedBudget()
    timeline = Timeline()
    limits = SlidingWindowLimiter(
        [Rate(1000, 1)], guard=0.0, clock=timeline, sleep=timeline.sleep, budget=budget
    )
    limits.seed([0.5] * 998)
    await limits.acquire()
    await limits.acquire()
    assert budget.asked == [2]
    timeline.now = 0.5 + LEASE / 2  # half of them left the window
    await limits.acquire()
    assert budget.asked == [2, 8]


async def test_a_store_that_fails_is_let_go_of_and_the_run_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    budget = ScriptedBudget()
    timeline = Timeline()
    limits = SlidingWindowLimiter(
        [Rate(2, 1)], guard=0.0, clock=timeline, sleep=timeline.sleep, budget=budget
    )
    await limits.acquire()
    budget.failing = True
    with caplog.at_level(logging.WARNING, logger="bulkrunner"):
        granted = await send_all(timeline, [limits], 3)
        limits.pause(1.0)
    assert sorted(granted[0]) == [0.0, 1.0, 1.0]  # within its own limits still
    (said,) = [r.getMessage() for r in caplog.records]
    assert said == (
        "/state/state.sqlite3: the state store stayed locked: going on within this run's own "
        "limits only"
    )

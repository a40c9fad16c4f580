"""The shared request ledger (``bulkrunner.records.budget``) in one process, on times the test
gives: what a claim grants and records, the wait it asks for, reservations, pauses, pruning.
Several processes at once: ``test_store_processes``."""

from __future__ import annotations

import ast
import random
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from bulkrunner.config.folders import account_id
from bulkrunner.limits.rates import DEFAULT_RATES, max_in_window
from bulkrunner.model import Rate
from bulkrunner.records.budget import Ledger, Reservation
from bulkrunner.records.store import StateStore
from tests.sources import PACKAGE, nodes, python_files

ACME = account_id("https://server.smartlead.ai/api/v1", "sk-acme-key-000111")
OTHER = account_id("https://server.smartlead.ai/api/v1", "sk-other-key-222333")
T0 = 1_800_000_000.0  # wall-clock seconds, as time.time() gives them


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    with StateStore.open(tmp_path / "state") as opened:
        yield opened


def reference_wait(
    recorded: Sequence[float], rates: Sequence[Rate], now: float, guard: float
) -> float:
    """What a claim at ``now`` must wait, from the definition: for each N/S, the N-th latest
    recorded request must be S + guard before ``now``."""
    latest = sorted(recorded, reverse=True)
    return max(
        [0.0]
        + [
            latest[rate.limit - 1] + rate.seconds + guard - now
            for rate in rates
            if len(latest) >= rate.limit
        ]
    )


@pytest.mark.parametrize("seed", range(6))
def test_a_claim_grants_exactly_what_the_windows_allow(store: StateStore, seed: int) -> None:
    """Against the definition, on random limits, guards and claim times (some of them earlier
    than requests already recorded, as another process's clock read may be)."""
    rng = random.Random(seed)
    rates = [Rate(rng.randint(1, 6), rng.choice([0.5, 1.0, 2.0, 5.0])) for _ in range(2)]
    guard = rng.choice([0.0, 0.002, 0.05])
    ledger = Ledger(store)
    recorded: list[float] = []
    refused = 0
    now = T0
    for _ in range(300):
        now += rng.expovariate(8.0)
        asked = now - rng.choice([0.0, 0.0, 0.0, 0.03])  # a clock read a little before
        expected = reference_wait(recorded, rates, asked, guard)
        wait = ledger.claim(ACME, rates, asked, guard)
        assert wait == pytest.approx(expected, abs=1e-9)
        if expected <= 0:
            recorded.append(max([asked, *recorded]))  # never earlier than the latest
        else:
            refused += 1
        assert ledger.recent(ACME, 0.0) == recorded
    for rate in rates:  # the times recorded never decrease: these are the windows held
        assert max_in_window(recorded, rate.seconds + guard) <= rate.limit
    assert len(recorded) > 5
    assert refused > 50  # the windows were full many times


def test_a_claim_at_the_wait_it_was_given_is_granted(store: StateStore) -> None:
    ledger = Ledger(store)
    rates = [Rate(10, 2), Rate(60, 60)]
    for n in range(10):
        assert ledger.claim(ACME, rates, T0 + n * 0.01, guard=0.002) == 0.0
    wait = ledger.claim(ACME, rates, T0 + 0.5, guard=0.002)
    assert wait == pytest.approx(2 + 0.002 - 0.5)
    assert ledger.claim(ACME, rates, T0 + 0.5 + wait - 1e-6, guard=0.002) > 0
    assert ledger.claim(ACME, rates, T0 + 0.5 + wait, guard=0.002) == 0.0
    assert len(ledger.recent(ACME, 0.0)) == 11


def test_consecutive_commands_share_the_accounts_windows(tmp_path: Path) -> None:
    """An export, then a plan a moment later (each its own store connection, as its own
    process): the plan waits for the window the export filled, instead of drawing 429s."""
    rates = DEFAULT_RATES
    with StateStore.open(tmp_path / "state") as export:
        ledger = Ledger(export)
        assert [ledger.claim(ACME, rates, T0 + n * 0.1) for n in range(10)] == [0.0] * 10
    with StateStore.open(tmp_path / "state") as plan:
        ledger = Ledger(plan)
        assert ledger.recent(ACME, T0 - 2) == [T0 + n * 0.1 for n in range(10)]
        assert ledger.claim(ACME, rates, T0 + 1.5) == pytest.approx(0.5)
        assert ledger.claim(OTHER, rates, T0 + 1.5) == 0.0  # another account's own windows
        assert ledger.claim(ACME, rates, T0 + 2.0) == 0.0


def test_requests_recorded_without_asking_count_in_every_window(store: StateStore) -> None:
    ledger = Ledger(store)
    ledger.record(ACME, [T0 + 0.3, T0 + 0.1, T0 + 0.2], DEFAULT_RATES)
    ledger.record(ACME, [T0 + 0.15], DEFAULT_RATES)  # earlier than the latest: held to it
    assert ledger.recent(ACME, 0.0) == [T0 + 0.1, T0 + 0.2, T0 + 0.3, T0 + 0.3]
    assert ledger.recent(ACME, T0 + 0.2) == [T0 + 0.2, T0 + 0.3, T0 + 0.3]
    assert ledger.claim(ACME, [Rate(4, 1)], T0 + 1.0) == pytest.approx(0.1)


def test_a_pause_holds_every_claim_on_the_account_and_is_never_shortened(
    store: StateStore,
) -> None:
    """A 429's Retry-After: the account's budget is spent for every process."""
    ledger = Ledger(store)
    ledger.pause(ACME, T0 + 30)
    ledger.pause(ACME, T0 + 10)
    assert ledger.claim(ACME, DEFAULT_RATES, T0) == pytest.approx(30)
    held = Reservation(0, T0 + 29, 1.0, paused=1.0)  # the wait is the pause's
    assert ledger.reserve(ACME, DEFAULT_RATES, T0 + 29, most=5) == held
    assert ledger.claim(OTHER, DEFAULT_RATES, T0) == 0.0
    assert ledger.claim(ACME, DEFAULT_RATES, T0 + 30) == 0.0


def test_a_reservation_grants_what_every_window_has_room_for(store: StateStore) -> None:
    ledger = Ledger(store)
    rates = [Rate(10, 2), Rate(15, 60)]
    first = ledger.reserve(ACME, rates, T0, most=4, until=T0 + 0.01)
    assert first == Reservation(4, T0 + 0.01, last=4)  # the account's requests numbered 1-4
    assert ledger.recent(ACME, 0.0) == [T0 + 0.01] * 4  # recorded at the latest they may go
    assert ledger.reserve(ACME, rates, T0 + 0.1, most=50).granted == 6  # 10/2 is full
    late = ledger.reserve(ACME, rates, T0 + 0.2, most=3)
    assert (late.granted, late.last) == (0, 10)
    assert late.wait == pytest.approx(2 - 0.2 + 0.01)
    assert ledger.reserve(ACME, rates, T0 + 2.01, most=8).granted == 4  # 10/2 has 4 again
    assert ledger.reserve(ACME, rates, T0 + 2.2, most=8).granted == 1  # 15/60: one left
    assert len(ledger.recent(ACME, 0.0)) == 15
    with pytest.raises(ValueError, match="until >= now"):
        ledger.reserve(ACME, rates, T0 + 3, most=1, until=T0 + 2)


def test_a_reservation_counts_each_request_still_in_the_window(store: StateStore) -> None:
    ledger = Ledger(store)
    rates = [Rate(4, 1)]
    for at in (T0, T0 + 0.6, T0 + 0.7, T0 + 0.8):
        assert ledger.claim(ACME, rates, at) == 0.0
    assert ledger.reserve(ACME, rates, T0 + 1.05, most=4).granted == 1  # 3 still in it
    assert ledger.reserve(ACME, rates, T0 + 1.65, most=4).granted == 1  # .7, .8, 1.05
    assert ledger.reserve(ACME, rates, T0 + 1.85, most=4).granted == 2  # 1.05, 1.65
    # a reservation is one record of its requests: part of one may have left the window
    assert ledger.reserve(OTHER, rates, T0, most=3).granted == 3
    assert ledger.claim(OTHER, rates, T0 + 0.5) == 0.0
    assert ledger.reserve(OTHER, rates, T0 + 0.9, most=4).wait == pytest.approx(0.1)
    assert ledger.reserve(OTHER, rates, T0 + 1.0, most=4).granted == 3
    assert ledger.recent(OTHER, 0.0) == [T0] * 3 + [T0 + 0.5] + [T0 + 1.0] * 3


@pytest.mark.parametrize("seed", range(6))
def test_requests_sent_any_time_within_their_reservations_hold_every_window(
    tmp_path: Path, seed: int
) -> None:
    """Three processes (three connections), their clocks read a little apart, reserving a few
    requests each and sending them at any moment until their reservation ends: the requests as
    sent never exceed a window."""
    rng = random.Random(seed)
    rates = [Rate(8, 1), Rate(20, 5)]
    guard = 0.0
    stores = [StateStore.open(tmp_path / "state") for _ in range(3)]
    ledgers = [Ledger(store) for store in stores]
    sent: list[float] = []
    refused = 0
    now = T0
    for _ in range(400):
        now += rng.expovariate(40.0)
        ledger = rng.choice(ledgers)
        asked = now - rng.uniform(0.0, 0.02)
        lease = rng.choice([0.0, 0.01, 0.05, 0.2])
        got = ledger.reserve(ACME, rates, asked, guard, most=rng.randint(1, 5), until=now + lease)
        sent += [rng.uniform(now, got.until) for _ in range(got.granted)]
        refused += not got.granted
    for store in stores:
        store.close()
    sent.sort()
    assert len(sent) > 30
    assert refused > 100  # the windows were full many times
    for rate in rates:
        assert max_in_window(sent, rate.seconds) <= rate.limit


def test_the_ledger_keeps_only_what_a_window_can_still_count(store: StateStore) -> None:
    """Three hours of requests: it holds about the last hour (SmartLead's widest window, which
    every limiter holds) and a minute; what it holds covers the widest window any limiter on
    the account asked for."""
    ledger = Ledger(store)
    rates = [Rate(50, 1)]
    now = T0
    for _ in range(3 * 3600 // 2):  # one request every 2 s
        now += 2
        assert ledger.claim(ACME, rates, now) == 0.0
    kept = ledger.recent(ACME, 0.0)
    assert 3600 + 60 <= now - kept[0] <= 3600 + 60 + 64 * 2
    assert ledger.claim(OTHER, [Rate(100, 7200)], now) == 0.0  # a limiter of two hours
    for _ in range(3 * 3600 // 2):
        now += 2
        ledger.claim(OTHER, rates, now)  # its next claims hold only 50/1: the two hours stay
    assert now - ledger.recent(OTHER, 0.0)[0] >= 7200 + 60
    assert ledger.reserve(ACME, rates, now, most=5).granted == 5  # five requests, one row
    held = len(ledger.recent(ACME, 0.0)) + len(ledger.recent(OTHER, 0.0))
    assert ledger.prune(now + 7200 + 61) == held
    assert ledger.claim(ACME, rates, now + 8000) == 0.0  # numbered afresh, counted as ever
    assert ledger.recent(ACME, 0.0) == [now + 8000]


def test_no_statement_numbers_its_parameters() -> None:
    """Python's sqlite3 takes ``?1`` for a named parameter: given a sequence it warns from 3.12
    and refuses from 3.14. Statements name theirs (``:key``) or leave them bare (``?``)."""
    numbered = [
        f"{path.relative_to(PACKAGE)}:{node.lineno}"
        for path in python_files()
        for node in nodes(path)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and re.search(r"\b(SELECT|INSERT|UPDATE|DELETE|WHERE)\b", node.value)
        and re.search(r"\?\d", node.value)
    ]
    assert numbered == []

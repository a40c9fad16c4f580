"""The reads around sending (the current settings before, --verify after) spend the key's budget
like the POSTs: they are counted where the server counts them, skipped when nothing needs them,
and a plan that one of them pushes past a window is told so before anything is sent.

Counts are compared with what the simulator recorded; time only through a fake clock, or as
cause and effect on one clock (an answer comes after its request arrived).
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pandas as pd
import pytest
from aiohttp import web

from bulkrunner.cli.app import main
from bulkrunner.config.run_config import RunConfig
from bulkrunner.limits.limiter import SlidingWindowLimiter
from bulkrunner.limits.rates import (
    DEFAULT_GUARD,
    DEFAULT_RATES,
    crossing,
    ideal_seconds,
    send_times,
)
from bulkrunner.model import Answer, Rate, Row, RunStats, Status
from bulkrunner.operations.base import Request
from bulkrunner.output.summary import Summary
from bulkrunner.sending.reads import read_current
from bulkrunner.sending.verify import MATCHES, ReadBack, verify
from bulkrunner.sending.watching import requests_left
from bulkrunner.simulator import SimulatorConfig, SimulatorThread, default_settings
from tests.fakes import FakeClock, Sent, connection
from tests.heap import own_heap
from tests.hostile import RawServer, RunCli, ServerThread, silent

KEY = "sk-preflight-SENTINEL-77"


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch, no_ambient_settings: None) -> None:
    monkeypatch.setenv("SMARTLEAD_API_KEY", KEY)


def plan(tmp_path: Path) -> Path:
    path = tmp_path / "plan.csv"
    path.write_text(
        "campaign_id,sending_limit\n"
        "11,150\n"
        "12,60\n"
        f"13,{default_settings(13)['sending_limit']}\n"  # already as wanted
    )
    return path


# --- when a plan crosses a window: a pure function of the counts and the windows -------------


@pytest.mark.parametrize(
    ("reads", "writes", "rates", "note"),
    [
        # The case: 60 rows at the default limits, and the read before them.
        (
            1,
            60,
            DEFAULT_RATES,
            "61 requests at 60/60: about 61 s (60 would take about 11 s); "
            "the read of current settings is one of them",
        ),
        (1, 59, DEFAULT_RATES, None),  # 60 fit in the minute
        (0, 61, DEFAULT_RATES, "61 requests at 60/60: about 61 s (60 would take about 11 s)"),
        (
            3,
            60,
            DEFAULT_RATES,
            "63 requests at 60/60: about 61 s (60 would take about 11 s); "
            "3 reads of current settings are among them",
        ),
        (
            1,
            74,
            DEFAULT_RATES,
            "75 requests at 60/60: about 63 s (60 would take about 11 s); "
            "the read of current settings is one of them",
        ),  # 15 over: a quarter of 60
        (1, 75, DEFAULT_RATES, None),  # 16 over: not a handful, just a long run
        (1, 119, DEFAULT_RATES, None),
        (1, 10, DEFAULT_RATES, None),  # 11 at 10/2: the last waits 2 s, not worth a line
        (
            1,
            1000,
            DEFAULT_RATES,
            "1001 requests at 1000/3600: about 61 min (1000 would take about 17 min); "
            "the read of current settings is one of them",
        ),
        (0, 1, DEFAULT_RATES, None),
        (
            1,
            3,
            [Rate(2, 0.2), Rate(3, 6)],
            "4 requests at 3/6: about 7 s (3 would take about 1 s); "
            "the read of current settings is one of them",
        ),
    ],
)
def test_a_plan_a_handful_past_a_window_is_told_what_that_costs(
    reads: int, writes: int, rates: list[Rate], note: str | None
) -> None:
    assert crossing(reads, writes, rates, guard=0.010) == note


def test_the_guard_is_part_of_each_window() -> None:
    without = crossing(1, 60, DEFAULT_RATES, guard=0.0)
    assert without is not None
    assert without.startswith("61 requests at 60/60: about 60 s")  # 60.0 s; held 60.01 s: 61


def every_send_time(count: int, rates: list[Rate]) -> list[float]:
    """The schedule as defined: request k goes when, for each N/S, request k - N is S old."""
    times: list[float] = []
    for k in range(count):
        times.append(max([0.0, *(times[k - r.limit] + r.seconds for r in rates if k >= r.limit)]))
    return times


def test_the_send_times_are_those_of_the_schedule_request_by_request() -> None:
    rng = random.Random(11)
    seconds = [0.002, 0.5, 1.0, 2.0, 3.5, 60.0]
    for _ in range(400):
        rates = [Rate(rng.randint(1, 40), rng.choice(seconds)) for _ in range(rng.randint(0, 3))]
        count = rng.randint(1, 2_000)
        every = every_send_time(count, rates)
        at = [rng.randrange(count) for _ in range(rng.randint(1, 5))]
        assert send_times(rates, at) == [every[number] for number in at]
        assert ideal_seconds(count, rates) == (every[-1] if rates else 0.0)


def test_the_ideal_time_of_millions_of_requests_takes_no_memory_for_each() -> None:
    """A million-row run's summary compared its two million requests with the limits by listing
    the time of each: 40 MB more at the very end of the run."""
    import tracemalloc

    tracemalloc.start()
    try:
        assert ideal_seconds(2_000_001, [Rate(1_000_000, 1)]) == 2.0
        # request 60,020 is the 21st of those 60/60 lets go at 60,000 s; 10/2 spreads them
        assert ideal_seconds(60_021, [Rate(10, 2), Rate(60, 60)]) == 60_004.0
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # about 84 KB; the second's 6,002 runs of requests at one time, all held, took 440 KB
    assert peak < 200_000


# --- the reads are counted, with their time ---------------------------------------------------


class Reads:
    """Answers the list call and campaign reads from scripts, at a fake clock's time."""

    def __init__(self, clock: FakeClock, listing: list[Answer], took: float) -> None:
        self.clock = clock
        self.listing = listing
        self.took = took  # seconds each answer takes

    async def send(self, request: Request) -> Answer:
        raise AssertionError("nothing is sent while reading")

    async def list_campaigns(self) -> Answer:
        await self.clock.sleep(self.took)
        return self.listing.pop(0)

    async def get_campaign(self, campaign_id: int) -> Answer:
        await self.clock.sleep(self.took)
        return Answer(200, json.dumps({"id": campaign_id, "max_leads_per_day": 60}))

    async def read(self, path: str) -> Answer:
        return Answer(404, '{"error": "Not found"}')


async def test_reads_before_sending_are_requests_of_the_run_with_their_time() -> None:
    clock = FakeClock(start=100.0)
    throttled = Answer(429, "slow down", retry_after=3.0)
    sender = Reads(clock, [throttled, Answer(200, "[]")], took=0.5)
    reading = connection(sender, clock, max_attempts=4, max_wait=60, concurrency=1)
    stats = reading.stats
    current = await read_current(reading, [11, 12], one_by_one=True)
    assert sorted(current.campaigns) == [11, 12]
    # The list call twice (a 429, then the list), then each campaign on its own.
    assert (stats.requests, stats.reads, stats.throttled, stats.retries) == (4, 4, 1, 1)
    assert stats.first_request == 100.0
    assert stats.last_answer == clock.now  # the last read's answer
    assert stats.sending_seconds == clock.now - 100.0 > 0


async def test_verify_reads_are_requests_of_the_run_and_their_time_is_elapsed_time() -> None:
    clock = FakeClock(start=100.0)
    # As the engine leaves it: two POSTs, the last answered at 105.
    stats = RunStats(requests=2, first_request=100.0, last_answer=105.0)
    clock.now = 105.0
    sender = Reads(clock, [], took=2.0)
    rows = [Row(1, 11, {"sending_limit": 60}), Row(2, 12, {"sending_limit": 61})]
    reading = connection(sender, clock, concurrency=1)
    reading.stats = stats
    found = await verify(reading, rows)
    assert found == {1: MATCHES, 2: ReadBack(False, "sending_limit: sent 61, server has 60")}
    assert (stats.requests, stats.reads) == (4, 2)
    assert stats.last_answer == 109.0  # two reads of 2 s each, one after the other
    assert stats.sending_seconds == 9.0


async def test_verify_never_waits_past_max_wait_for_a_slot_the_servers_limit_holds() -> None:
    clock = FakeClock(start=100.0)
    limiter = SlidingWindowLimiter([Rate(1000, 3600)], clock=clock, sleep=clock.sleep)
    limiter.observe(1, 0, 3600.0, await limiter.acquire())  # the last POST's answer: "1"
    sender = Reads(clock, [], took=2.0)
    rows = [Row(1, 11, {"sending_limit": 60}), Row(2, 12, {"sending_limit": 61})]
    reading = connection(sender, clock, limiter=limiter, concurrency=1, max_wait=300)
    found = await verify(reading, rows)
    reason = (
        "the server asked to wait 3600s (X-RateLimit-Limit 1, held over 3600s), "
        "more than --max-wait 300"
    )
    assert found == {1: ReadBack(None, reason), 2: ReadBack(None, reason)}
    assert clock.sleeps == []


async def test_the_eta_counts_the_read_before_sending_and_the_reads_back_to_come() -> None:
    clock = FakeClock(start=0.0)
    limiter = SlidingWindowLimiter(DEFAULT_RATES, clock=clock, sleep=clock.sleep)
    sixty = requests_left(60, 0, verify=False)
    # 10 every 2 s and the guard
    assert limiter.eta(sixty, clock()) == pytest.approx(5 * (2 + DEFAULT_GUARD))
    await limiter.acquire()  # the read of the current settings
    # the 61st waits out the minute
    assert limiter.eta(sixty, clock()) == pytest.approx(60 + DEFAULT_GUARD)
    # --verify: 20 rows still to send, each then read back, and 10 sent, still to read back.
    assert requests_left(20, 10, verify=True) == 50
    # A row of two requests (email accounts added and removed), read back twice (the campaign
    # and its accounts) under --verify:
    assert requests_left(20, 10, verify=True, per_row=2.0, verify_reads=2) == 100
    # 30 rows with --verify are 60 requests after the read: past the minute's 60.
    assert limiter.eta(requests_left(30, 0, verify=True), clock()) == pytest.approx(
        60 + DEFAULT_GUARD
    )
    assert limiter.eta(requests_left(30, 0, verify=False), clock()) == pytest.approx(
        3 * (2 + DEFAULT_GUARD)
    )


def test_the_ceiling_figure_of_a_run_at_the_ceiling_counts_its_read() -> None:
    # The 300 rows at the default limits: the read first, so the 300th POST is the
    # 301st request, at 300 s. Counting only the POSTs, that read as 83% of the ceiling.
    stats = RunStats(requests=301, reads=1, first_request=0.0, last_answer=300.0)
    assert Summary({}, stats, DEFAULT_RATES, None).lines()[1:] == [
        "requests: 301 sent (300 writes, 1 read), 0 retries, 0 answered 429, "
        "in 300.0s (1.00 requests/s)",
        "rate: 100% of the ceiling "
        "(the limits 10/2, 60/60, 1000/3600 allow 301 requests in 300.0s at best)",
    ]


# --- against the simulator: the summary says what the server saw ------------------------------


def summary_counts(out: str) -> tuple[int, int, int, int]:
    """(requests, settings, reads, 429s) from the summary's requests line."""
    found = re.search(
        r"requests: (\d+) sent \((\d+) writes?, (\d+) reads?\), .*?, (\d+) answered 429", out
    )
    assert found is not None, out
    requests, settings, reads, throttled = map(int, found.groups())
    return requests, settings, reads, throttled


def test_the_summary_counts_every_request_the_server_saw(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = plan(tmp_path)
    # The account's list shows none of the campaigns: each is read on its own, for the backup.
    with SimulatorThread(SimulatorConfig(api_key=KEY)) as sim:
        code = main(
            [
                "run",
                "--input",
                str(source),
                "--report",
                str(tmp_path / "r.csv"),
                "--base-url",
                sim.base_url,
                "--rate",
                "2/0.5",
                "--verify",
            ]
        )
        seen = list(sim.state.requests)
    assert code == 0
    gets = [r.path for r in seen if r.method == "GET"]
    assert sorted(gets) == [
        "/api/v1/campaigns/",
        "/api/v1/campaigns/11",  # read before sending, and read back after
        "/api/v1/campaigns/11",
        "/api/v1/campaigns/12",
        "/api/v1/campaigns/12",
        "/api/v1/campaigns/13",  # already as wanted: not sent, not verified
    ]
    out = capsys.readouterr().out
    throttled = sum(1 for r in seen if r.status == 429)
    assert summary_counts(out) == (len(seen), len(seen) - len(gets), len(gets), throttled)
    best = ideal_seconds(len(seen), [Rate(2, 0.5)])
    assert f"allow {len(seen)} requests in {best:.1f}s at best" in out


def test_nothing_is_read_first_when_nothing_needs_the_current_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = plan(tmp_path)
    with SimulatorThread(SimulatorConfig(api_key=KEY, campaigns={11, 12, 13})) as sim:
        code = main(
            [
                "run",
                "--input",
                str(source),
                "--report",
                str(tmp_path / "r.csv"),
                "--base-url",
                sim.base_url,
                "--no-skip-unchanged",
                "--no-backup",
                "--verify",
            ]
        )
        seen = list(sim.state.requests)
    assert code == 0
    posted = sorted(r.path for r in sim.state.posts())
    assert posted == [f"/api/v1/campaigns/{n}/settings" for n in (11, 12, 13)]
    # Only the reads back that --verify asked for; no list call before sending.
    assert sorted(r.path for r in seen if r.method == "GET") == [
        "/api/v1/campaigns/11",
        "/api/v1/campaigns/12",
        "/api/v1/campaigns/13",
    ]
    captured = capsys.readouterr()
    assert summary_counts(captured.out) == (6, 3, 3, 0)
    assert "not reading the current settings" in captured.err


def test_with_either_option_alone_the_current_settings_are_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = plan(tmp_path)
    with SimulatorThread(SimulatorConfig(api_key=KEY, campaigns={11, 12, 13})) as sim:
        for n, option in enumerate(("--no-skip-unchanged", "--no-backup")):
            report = str(tmp_path / f"{n}.csv")
            args = ["run", "--input", str(source), "--report", report, "--base-url", sim.base_url]
            assert main([*args, option]) == 0
        lists = [r for r in sim.state.requests if r.path == "/api/v1/campaigns/"]
    assert len(lists) == 2  # skipping unchanged rows, or backing up, needs them


def test_the_verify_phase_is_in_the_elapsed_time(tmp_path: Path) -> None:
    rows = [Row(1, 11, {"sending_limit": 150}), Row(2, 12, {"sending_limit": 60})]
    with SimulatorThread(SimulatorConfig(api_key=KEY)) as sim:
        config = RunConfig(input=tmp_path / "plan.csv", base_url=sim.base_url, verify=True)
        sent = Sent(config, KEY, rows).run()
        seen = list(sim.state.requests)
    assert {o.status for o in sent.outcomes.values()} == {Status.SUCCEEDED}  # read back: as sent
    stats = sent.session.stats
    assert (stats.requests, stats.reads) == (len(seen), len(seen) - 2)
    assert stats.first_request is not None
    assert stats.last_answer is not None
    # One clock (time.monotonic) for the client and the simulator in this process: the run's
    # first request was granted before anything arrived, and its last answer came after the
    # last read back arrived.
    assert stats.first_request <= min(r.arrival for r in seen)
    assert stats.last_answer >= max(r.arrival for r in seen)


def test_a_plan_one_read_past_a_window_is_told_before_sending(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = plan(tmp_path)

    async def handler(request: web.Request) -> web.StreamResponse:
        if request.method == "GET" and request.path.endswith("/campaigns/"):
            campaigns = [{"id": cid, "max_leads_per_day": 1} for cid in (11, 12, 13)]
            return web.json_response(campaigns)
        return web.json_response({"message": "Invalid API Key"}, status=401)  # stops the run

    with ServerThread(handler) as server:
        args = ["run", "--input", str(source), "--report", str(tmp_path / "r.csv")]
        limits = ["--rate", "2/0.2", "--rate", "3/6", "--concurrency", "1"]
        code = main([*args, "--base-url", server.url, *limits])
        methods = [method for method, _ in server.requests]
    assert code == 3
    assert methods[0] == "GET"  # the list: every campaign shows, so nothing more to read
    assert set(methods[1:]) == {"POST"}
    err = capsys.readouterr().err
    note = (
        "4 requests at 3/6: about 7 s (3 would take about 1 s); "
        "the read of current settings is one of them"
    )
    assert note in err
    assert err.index(note) < err.index("run aborted")  # said before anything was sent
    assert KEY not in err


def test_the_campaigns_read_are_let_go_once_planned_before_the_backup_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What reading found is planned, then let go: the backup and the sending need only the
    plan, and holding every campaign read beside them was most of a long run's peak memory."""
    import gc
    import weakref
    from typing import Any

    from bulkrunner.records.backup import record_backup as backing_up
    from bulkrunner.sending.reads import Current
    from bulkrunner.sending.reads import read_current as reading

    found: list[weakref.ref[Current]] = []
    alive: list[bool] = []

    async def watched_read(*args: Any, **kwargs: Any) -> Current:
        current = await reading(*args, **kwargs)
        found.append(weakref.ref(current))
        return current

    def watched_backup(*args: Any, **kwargs: Any) -> Any:
        gc.collect()
        alive.append(found[0]() is not None)
        return backing_up(*args, **kwargs)

    monkeypatch.setattr("bulkrunner.sending.pipeline.read_current", watched_read)
    monkeypatch.setattr("bulkrunner.sending.backups.record_backup", watched_backup)
    rows = [Row(1, 11, {"sending_limit": 150}), Row(2, 12, {"sending_limit": 60})]
    with SimulatorThread(SimulatorConfig(api_key=KEY)) as sim:
        report = tmp_path / "report.csv"
        config = RunConfig(input=tmp_path / "plan.csv", base_url=sim.base_url, report=report)
        with own_heap():  # the collection costs only what the run made
            sent = Sent(config, KEY, rows).run()
    assert (tmp_path / "report.csv.backup.parquet").exists()
    assert alive == [False]
    assert {o.status.value for o in sent.outcomes.values()} == {"succeeded"}


def test_a_plan_holds_each_rows_changes_read_only_in_one_tuple() -> None:
    """A long run holds the changes of every row it sends until its report is written: as
    a read-only mapping over one tuple of befores and afters, not a dict of Change objects."""
    from bulkrunner.model import Change, Outcome, Status
    from bulkrunner.sending.plan import plan
    from bulkrunner.sending.reads import Current

    rows = [
        Row(1, 11, {"sending_limit": 5, "track_settings": []}),
        Row(2, 12, {"sending_limit": 6}),
        Row(3, 13, {"track_settings": ["DONT_LINK_CLICK"], "sending_limit": 7}),
    ]
    current = Current(
        campaigns={
            11: {"id": 11, "max_leads_per_day": 3, "track_settings": []},
            12: {"id": 12, "max_leads_per_day": 6},
            13: {"id": 13, "track_settings": ["DONT_EMAIL_OPEN"]},
        }
    )
    planned = plan(rows, current, skip=True)
    assert planned.changes[1] == {"sending_limit": Change(3, 5)}
    assert dict(planned.changes[3]) == {
        "track_settings": Change(["DONT_EMAIL_OPEN"], ["DONT_LINK_CLICK"]),
        "sending_limit": Change(None, 7),  # not known: sent
    }
    assert list(planned.changes[3]) == ["track_settings", "sending_limit"]  # the row's order
    assert planned.unchanged == {2: Outcome(Status.UNCHANGED)}
    assert not planned.changes[2]
    assert "track_settings" not in planned.changes[1]
    with pytest.raises(KeyError):
        planned.changes[1]["track_settings"]
    with pytest.raises(TypeError):
        planned.changes[1]["client_id"] = Change(None, 4)  # type: ignore[index]


# --- the reads before sending are bounded by --outage-timeout -------------------------------------


def test_reads_answered_503_stop_the_run_within_the_outage_timeout_with_nothing_sent(
    tmp_path: Path,
) -> None:
    """Every read answered 503: the list, then each campaign on its own, retried with backoff,
    until only retryable errors have come back for the outage timeout (waits counted) -- not
    six tries of each of a hundred campaigns."""

    async def unavailable(request: web.Request) -> web.Response:
        return web.Response(status=503, text="Service Unavailable")

    clock = FakeClock()
    start = clock.now
    rows = [Row(n, 100 + n, {"sending_limit": 10}) for n in range(1, 101)]
    with ServerThread(unavailable) as server:
        config = RunConfig(
            input=tmp_path / "plan.csv",
            base_url=server.url,
            rates=(Rate(1000, 1),),  # the limiter never waits: every wait is a retry's
            outage_timeout=600,
        )
        sent = Sent(config, KEY, rows, clock.clock).run()
        seen = list(server.requests)
    aborted = sent.session.stats.aborted
    assert aborted is not None
    assert aborted.startswith(
        "run aborted: reading the current settings, only retryable errors came back for"
    )
    assert aborted.endswith("(last: HTTP 503: Service Unavailable); SmartLead looks unavailable")
    assert clock.now - start < 600  # no wait went past the timeout
    assert {method for method, _ in seen} == {"GET"}  # nothing sent
    outcomes = sent.outcomes
    assert len(outcomes) == 100
    assert {outcome.status for outcome in outcomes.values()} == {Status.NOT_ATTEMPTED}
    assert {outcome.error for outcome in outcomes.values()} == {aborted}


def test_a_server_that_never_answers_a_read_stops_the_run_resumable(
    tmp_path: Path, cli_here: RunCli
) -> None:
    source = plan(tmp_path)
    with RawServer(silent) as server:
        done = cli_here(
            tmp_path,
            KEY,
            *("run", str(source), "--report", "r.csv", "--base-url", server.url),
            *("--timeout", "0.2", "--outage-timeout", "0.5"),
        )
    assert done.returncode == 3, done.stderr
    assert "reading the current settings, only retryable errors came back" in done.stderr
    assert "--resume" in done.stdout
    report = pd.read_csv(tmp_path / "r.csv")
    assert set(report["status"]) == {"not_attempted"}

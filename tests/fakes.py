"""Test doubles: a clock the test moves, and a sender that answers from a script; the command
line run in this process, as the tests of several files run it; a whole report written at once."""

from __future__ import annotations

import asyncio
import functools
import inspect
import io
import random
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from benchmarks.run import rate_flags
from bulkrunner.cli.app import main
from bulkrunner.config.accounts import Account
from bulkrunner.config.job_file import build_config
from bulkrunner.config.run_config import RunConfig
from bulkrunner.errors import ExitCode
from bulkrunner.limits.limiter import SlidingWindowLimiter
from bulkrunner.model import REAL_CLOCK, Answer, Changes, Clock, Outcome, Rate, Row
from bulkrunner.operations.base import Request, Wire
from bulkrunner.operations.settings import SETTINGS
from bulkrunner.sending.connection import Connection
from bulkrunner.sending.retry import Policy
from bulkrunner.sending.session import Session

if TYPE_CHECKING:
    from bulkrunner.sending.transport import Sender

WALL = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)  # when a fake clock starts, by default


def rate_alone(rate: str) -> list[str]:
    """``--rate RATE``, and SmartLead's published windows of the other lengths (which a
    ``--rate`` leaves in force) named loose enough never to bind (``benchmarks.run.alone``):
    the flags of a quick run against a simulator with no limit of its own, or held to RATE
    alone."""
    return rate_flags(Rate.parse(rate))


if TYPE_CHECKING:
    import pandas as pd


class FakeClock:
    """A clock whose ``sleep`` moves time forward instead of waiting; records every sleep. As
    a run's ``Clock`` (``.clock``), its wall time moves with it."""

    def __init__(self, start: float = 1000.0, wall: datetime = WALL) -> None:
        self.now = start
        self.start = start
        self.wall_start = wall
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(0.0, seconds)
        await asyncio.sleep(0)

    def wall(self) -> datetime:
        return self.wall_start + timedelta(seconds=self.now - self.start)

    @property
    def clock(self) -> Clock:
        """This clock as a run takes it: whole runs, in this process, without waiting."""
        return Clock(self, self.wall, self.sleep)


def connection(
    sender: Sender,
    clock: FakeClock,
    sleep: Callable[[float], Awaitable[None]] | None = None,
    rates: Sequence[Rate] = (Rate(1000, 1),),
    *,
    concurrency: int = 4,
    limiter: SlidingWindowLimiter | None = None,
    **policy: Any,
) -> Connection:
    """An account's connection to ``sender`` on ``clock``: its limiter sleeps on the clock, its
    retries on ``sleep`` (by default the clock's too)."""
    return Connection(
        sender,
        limiter or SlidingWindowLimiter(rates, clock=clock, sleep=clock.sleep),
        Policy(**policy),
        concurrency,
        Clock(clock, clock.wall, sleep or clock.sleep),
        random.Random(0),
    )


class RecordingSleep:
    """A sleep that only records the delay asked for and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await asyncio.sleep(0)


def settings_request(campaign_id: int, payload: Mapping[str, Any]) -> Request:
    """The request a settings row becomes: ``POST /campaigns/{id}/settings``."""
    (request,) = SETTINGS.requests(campaign_id, payload, Wire())
    return request


def target(request: Request) -> tuple[int, Mapping[str, Any]]:
    """The campaign a request writes to, and its body."""
    return int(request.path.split("/")[2]), request.body


class ScriptedSender:
    """Answers each campaign's successive requests from a script; 200 once the script runs out."""

    def __init__(
        self,
        script: Mapping[int, Sequence[Answer]] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.script = {cid: list(answers) for cid, answers in (script or {}).items()}
        self.clock = clock
        self.calls: list[tuple[int, dict[str, Any]]] = []
        self.times: list[float] = []
        self.per_campaign: defaultdict[int, int] = defaultdict(int)

    async def send(self, request: Request) -> Answer:
        campaign_id, payload = target(request)
        self.calls.append((campaign_id, dict(payload)))
        if self.clock is not None:
            self.times.append(self.clock())
        index = self.per_campaign[campaign_id]
        self.per_campaign[campaign_id] += 1
        await asyncio.sleep(0)
        answers = self.script.get(campaign_id, [])
        if index < len(answers):
            return answers[index]
        return Answer(200, '{"success": true, "data": {}}')

    async def get_campaign(self, campaign_id: int) -> Answer:
        return Answer(404, '{"error": "Campaign not found"}')

    async def list_campaigns(self) -> Answer:
        return Answer(200, "[]")

    async def read(self, path: str) -> Answer:
        return Answer(404, '{"error": "Not found"}')


class PathReader:
    """A sender a lead operation reads through, page by page or address by address: anything
    else it is asked is a failure of the test. A subclass answers ``read(path)``."""

    async def send(self, request: Request) -> Answer:
        raise AssertionError("nothing is written while reading")

    async def get_campaign(self, campaign_id: int) -> Answer:
        raise AssertionError("a lead operation reads no campaign")

    async def list_campaigns(self) -> Answer:
        raise AssertionError("a lead operation reads no list of campaigns")


def make_rows(count: int, first_id: int = 5000) -> list[Row]:
    """``count`` valid rows with varied, seeded settings, numbered from 1."""
    rng = random.Random(count)
    return [
        Row(
            n,
            first_id + n,
            {
                "sending_limit": rng.randint(10, 300),
                "track_settings": rng.choice([[], ["DONT_EMAIL_OPEN"]]),
                "stop_lead_settings": rng.choice(["REPLY_TO_AN_EMAIL", "CLICKED_LINK"]),
            },
        )
        for n in range(1, count + 1)
    ]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``bulkrunner ARGV`` in this process: its exit code, stdout and stderr."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def commands_on(clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """The commands the CLI runs in this process (run, retry, rollback, plan, export, doctor)
    take ``clock``, as a test calling them gives it: a whole run on the command line without
    waiting out its windows."""
    import importlib

    for module in ("run", "retry", "rollback", "plan", "export", "doctor"):
        commands = importlib.import_module(f"bulkrunner.commands.{module}")
        name = f"{module}_job"
        monkeypatch.setattr(commands, name, _on(getattr(commands, name), clock))


def _on(command: Callable[..., Any], clock: FakeClock) -> Callable[..., Any]:
    """``command``, given ``clock`` unless its caller gives one."""
    signature = _signature(command)

    @functools.wraps(command)
    def on_clock(*args: Any, **kwargs: Any) -> Any:
        if "clock" not in signature.bind_partial(*args, **kwargs).arguments:
            kwargs["clock"] = clock.clock
        return command(*args, **kwargs)

    return on_clock


_signature = functools.cache(inspect.signature)  # six a test, each test: once is enough


def one_line_error(err: str) -> str:
    """The one line ``err`` holds (no traceback), or the test fails."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def write_report(report: pd.DataFrame, path: Path, input_columns: list[str]) -> None:
    """Write a whole report (a ``build_report`` frame) to ``path`` as a run writes one."""
    from bulkrunner.output.report_writer import ReportWriter

    with ReportWriter(path, input_columns) as writer:
        writer.write(report)
        writer.commit()


def one_key(config: RunConfig, key: str) -> dict[str, Account]:
    """The one account of a run without an accounts file, with ``key``."""
    return {"": Account("", "SMARTLEAD_API_KEY", config.rates, config.base_url, key)}


class Sent:
    """A session of one account sending ``rows`` in one batch, and every row's outcome and
    planned changes once it ended (``outcomes``, ``changes``)."""

    def __init__(
        self, config: RunConfig, key: str, rows: Sequence[Row], clock: Clock = REAL_CLOCK
    ) -> None:
        self.outcomes: dict[int, Outcome] = {}
        self.changes: dict[int, Changes] = {}
        self.session = Session(
            config,
            one_key(config, key),
            [rows],
            clock,
            on_batch=self._ended,
            totals={"": len(rows)},
        )

    def _ended(self, outcomes: Mapping[int, Outcome], changes: Mapping[int, Changes]) -> None:
        self.outcomes.update(outcomes)
        self.changes.update(changes)

    def run(self) -> Sent:
        asyncio.run(self.session.run())
        return self


class JobCommands:
    """A person's commands, one after another in the test's process: each a job function
    (``run_job``, ``plan_job``, ``rollback_job``...) given ``source`` and ``report`` against
    ``sim`` (at 100/1 unless ``rate`` is given) and ``more`` flags, with ``environ`` (else
    this one's), a second apart on ``clock``; ``out`` is what the last one printed."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = dict(environ)
        self.out = ""

    def __call__(
        self,
        job: Callable[..., ExitCode],
        clock: FakeClock,
        sim: Any,
        source: Path,
        report: Path,
        environ: Mapping[str, str] | None = None,
        **more: Any,
    ) -> ExitCode:
        flags = {"input": str(source), "report": str(report), "base_url": sim.base_url, **more}
        flags.setdefault("rate", ["100/1"])
        out = io.StringIO()
        code = job(build_config({}, flags), out, environ or self.environ, clock.clock)
        clock.now += 1  # between two commands, a person lets a second pass
        self.out = out.getvalue()
        return code

"""``--verify``'s read-backs go through the run's one retry policy: a read-back answered 429 is
tried again (after its Retry-After, on the run's clock) and verifies; one that never succeeds
leaves its row ``unverified``, counted in the summary, and the run exits 1 -- never
``succeeded``. Whole runs in this process on a fake clock, against a server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import inspect
import io
import json
import os
import signal
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path

import pandas as pd
import pytest
from aiohttp import web

from bulkrunner.commands.run import run_job
from bulkrunner.config.job_file import build_config
from bulkrunner.errors import ExitCode
from bulkrunner.model import Status
from tests.fakes import FakeClock
from tests.hostile import ServerThread

KEY = "sk-verify-SENTINEL-31"
THROTTLED = {"error": "slow down"}


def server(
    read_backs: Callable[[int], web.Response | Awaitable[web.Response]],
    state: dict[str, int] | None = None,
) -> ServerThread:
    """Campaign 11 (sending limit 5 until a POST sets 60, in ``state``); its read-backs (the
    GETs of it after the POST) answered by ``read_backs(n)``, n from 1."""
    state = {"limit": 5} if state is None else state

    async def handle(request: web.Request) -> web.StreamResponse:
        if request.method == "POST":
            state["limit"] = (await request.json())["sending_limit"]
            return web.json_response({"ok": True})
        if request.path.rstrip("/").endswith("/campaigns"):
            return web.json_response([{"id": 11, "sending_limit": state["limit"]}])
        state["read_backs"] = state.get("read_backs", 0) + 1
        answer = read_backs(state["read_backs"])
        return await answer if inspect.isawaitable(answer) else answer

    return ServerThread(handle)


def campaign(limit: int) -> web.Response:
    return web.json_response({"id": 11, "max_leads_per_day": limit})


def run(
    tmp_path: Path, url: str, clock: FakeClock, **more: object
) -> tuple[ExitCode, str, pd.DataFrame]:
    source = tmp_path / "plan.csv"
    source.write_text("campaign_id,sending_limit\n11,60\n")
    report = tmp_path / "r.csv"
    flags = {
        "input": str(source),
        "report": str(report),
        "base_url": f"{url}/api/v1",
        "verify": True,
        "max_attempts": 3,
        **more,
    }
    out = io.StringIO()
    code = run_job(build_config({}, flags), out, {"SMARTLEAD_API_KEY": KEY}, clock.clock)
    return code, out.getvalue(), pd.read_csv(report, dtype=str, keep_default_na=False)


def test_a_read_back_answered_429_is_retried_after_its_retry_after_and_verifies(
    tmp_path: Path,
) -> None:
    def read_backs(n: int) -> web.Response:
        if n == 1:
            return web.json_response(THROTTLED, status=429, headers={"Retry-After": "30"})
        return campaign(60)

    clock = FakeClock()
    with server(read_backs) as reading:
        code, out, report = run(tmp_path, reading.url, clock)
        gets = [path for method, path in reading.requests if method == "GET"]
    assert code == ExitCode.OK, out
    assert report["status"].tolist() == [Status.SUCCEEDED.value]
    assert report["error"].tolist() == [""]
    assert gets.count("/api/v1/campaigns/11?api_key=" + KEY) == 2  # read back, then again
    assert max(clock.sleeps) >= 30  # the key's pause and the retry, on the fake clock
    assert "1 answered 429" in out


def test_a_read_back_that_never_succeeds_is_unverified_counted_and_exits_1(
    tmp_path: Path,
) -> None:
    def read_backs(n: int) -> web.Response:
        return web.json_response(THROTTLED, status=429, headers={"Retry-After": "5"})

    clock = FakeClock()
    with server(read_backs) as reading:
        code, out, report = run(tmp_path, reading.url, clock)
        tries = sum(path.startswith("/api/v1/campaigns/11?") for _, path in reading.requests)
    assert code == ExitCode.ROWS_FAILED, out
    assert report["status"].tolist() == [Status.UNVERIFIED.value]
    (error,) = report["error"].tolist()
    assert error == "not verified: gave up after 3 attempts; last error: HTTP 429: slow down"
    assert tries == 3  # every try the policy allows (--max-attempts 3)
    assert "rows: 1 (1 unverified)" in out


@pytest.mark.parametrize("answer", ["refused", "gone"])
def test_a_read_back_that_fails_outright_is_unverified_not_retried(
    tmp_path: Path, answer: str
) -> None:
    def read_backs(n: int) -> web.Response:
        if answer == "gone":
            return web.json_response({"error": "Campaign not found"}, status=404)
        return web.Response(text=json.dumps({"data": None}), content_type="application/json")

    with server(read_backs) as reading:
        code, _, report = run(tmp_path, reading.url, FakeClock())
        tries = sum(path.startswith("/api/v1/campaigns/11?") for _, path in reading.requests)
    assert code == ExitCode.ROWS_FAILED
    assert report["status"].tolist() == [Status.UNVERIFIED.value]
    assert tries == 1


def test_a_run_interrupted_while_reading_back_leaves_its_rows_unverified_at_once(
    tmp_path: Path,
) -> None:
    """Ctrl-C as the read-backs hang: the reads are dropped at once (they change nothing, so
    they get no grace), and a row applied but not read back is ``unverified``."""
    stop = threading.Event()
    state = {"limit": 5}

    async def hanging(n: int) -> web.Response:
        os.kill(os.getpid(), signal.SIGINT)  # the user's Ctrl-C, as the read-back is made
        await asyncio.to_thread(stop.wait, 60)  # and the read-back never answers
        return campaign(60)

    with server(hanging, state) as reading:
        try:
            code, out, report = run(tmp_path, reading.url, FakeClock(), grace=5)
        finally:
            stop.set()
    assert code == ExitCode.ABORTED, out
    assert state["limit"] == 60  # applied
    assert report["status"].tolist() == [Status.UNVERIFIED.value]
    assert report["error"].tolist() == [
        "not verified: the run stopped before it was read back (run interrupted)"
    ]

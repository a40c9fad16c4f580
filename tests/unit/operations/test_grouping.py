"""Rows grouped into requests: an operation says how rows go together (``Operation.groups``), what
a group's requests are (``group_requests``) and what the answer that accepted a group says of each
row (``attribute``); a row it says nothing of is read back to find out. Each row still ends on its
own: its outcome, its ``row_finished`` event, its journal line and its report line.

The operation here is the tests' own, ``Bulk``: up to three campaigns' settings in one request,
answered with a result per campaign (or, for some, nothing)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pandas as pd
import pytest
from aiohttp import web

from bulkrunner.config.job_file import build_config
from bulkrunner.config.paths import journal_path
from bulkrunner.config.run_config import RunConfig
from bulkrunner.errors import ExitCode
from bulkrunner.model import Answer, Outcome, Row, Status
from bulkrunner.operations.answers import parse_json
from bulkrunner.operations.base import Request, Wire
from bulkrunner.operations.settings import Settings
from bulkrunner.output.events import events
from bulkrunner.sending.engine import Engine
from tests.fakes import FakeClock, connection
from tests.hostile import ServerThread

KEY = "sk-grouping-SENTINEL-12"
PATH = "/campaigns/bulk-settings"


class Bulk(Settings):
    """Settings of up to ``size`` campaigns in one POST; the answer's ``results`` say, by
    campaign, "ok" or why not; a campaign it does not name is not known."""

    size = 3

    def groups(self, rows: Sequence[Row], wire: Wire) -> list[Sequence[Row]]:
        return [rows[at : at + self.size] for at in range(0, len(rows), self.size)]

    def group_requests(self, rows: Sequence[Row], wire: Wire) -> list[Request]:
        body = {"campaigns": [{"id": row.campaign_id, **row.payload} for row in rows]}
        return [Request("POST", PATH, body)]

    def attribute(self, rows: Sequence[Row], answer: Answer, wire: Wire) -> Mapping[int, str]:
        results = (parse_json(answer.body) or {}).get("results", {})
        said = {row.number: results.get(str(row.campaign_id)) for row in rows}
        return {n: "" if r == "ok" else r for n, r in said.items() if r is not None}


class BulkServer:
    """Campaigns' sending limits; a bulk POST applies each campaign but those in ``refused``
    and ``dropped``, and answers for each but those in ``silent`` (applied, not named) and
    ``dropped`` (neither applied nor named); ``rejected`` campaigns' requests get a 401."""

    def __init__(self, **sets: set[int]) -> None:
        self.limits = dict.fromkeys(range(301, 311), 5)
        self.refused = sets.get("refused", set())
        self.silent = sets.get("silent", set())
        self.dropped = sets.get("dropped", set())
        self.rejected = sets.get("rejected", set())
        self.bodies: list[list[int]] = []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.method == "POST":
            campaigns = (await request.json())["campaigns"]
            ids = [c["id"] for c in campaigns]
            self.bodies.append(ids)
            if self.rejected & set(ids):
                return web.json_response({"message": "Invalid API Key"}, status=401)
            results = {}
            for campaign in campaigns:
                cid = campaign["id"]
                if cid in self.refused:
                    results[str(cid)] = "campaign archived"
                elif cid not in self.dropped:
                    self.limits[cid] = campaign["sending_limit"]
                    if cid not in self.silent:
                        results[str(cid)] = "ok"
            return web.json_response({"results": results})
        if request.path.rstrip("/").endswith("/campaigns"):
            listed = [{"id": c, "sending_limit": v} for c, v in self.limits.items()]
            return web.json_response(listed)
        cid = int(request.path.rstrip("/").split("/")[-1])
        return web.json_response({"id": cid, "max_leads_per_day": self.limits[cid]})


# --- the engine: one request a group, an outcome a row -------------------------------------------


class Scripted:
    """Answers each bulk request from the script of its first campaign (then every row ok)."""

    def __init__(self, script: dict[int, list[Answer]]) -> None:
        self.script = script
        self.sent: list[list[int]] = []

    async def send(self, request: Request) -> Answer:
        ids = [c["id"] for c in request.body["campaigns"]]
        self.sent.append(ids)
        await anyio.lowlevel.checkpoint()
        if self.script.get(ids[0]):
            return self.script[ids[0]].pop(0)
        return Answer(200, json.dumps({"results": {str(i): "ok" for i in ids}}))

    async def read(self, path: str) -> Answer:
        raise AssertionError

    get_campaign = list_campaigns = read


def rows(count: int) -> list[Row]:
    return [Row(n, 300 + n, {"sending_limit": 10 * n}) for n in range(1, count + 1)]


def test_a_group_is_one_request_and_each_of_its_rows_ends_on_its_own() -> None:
    answer = {"results": {"301": "ok", "302": "campaign archived", "303": "ok"}}
    sender = Scripted({301: [Answer(503, "busy"), Answer(200, json.dumps(answer))]})
    ended: list[tuple[int, Outcome]] = []
    engine = Engine(
        connection(sender, FakeClock()),  # type: ignore[arg-type]
        operation=Bulk(),
        on_outcome=lambda row, outcome: ended.append((row.number, outcome)),
    )
    outcomes = anyio.run(engine.run, rows(7))
    assert sorted(map(sorted, sender.sent)) == [
        [301, 302, 303],
        [301, 302, 303],
        [304, 305, 306],
        [307],
    ]
    assert outcomes[2].status is Status.FAILED
    assert outcomes[2].error == "campaign archived"
    assert {n: o.status for n, o in outcomes.items() if n != 2} == dict.fromkeys(
        [1, 3, 4, 5, 6, 7], Status.SUCCEEDED
    )
    assert outcomes[1].attempts == outcomes[2].attempts == 2  # the group was tried again
    assert outcomes[4].attempts == 1
    assert sorted(number for number, _ in ended) == list(range(1, 8))  # each row, once
    assert engine.progress() == (6, 1, 0)


def test_a_row_the_answer_says_nothing_of_is_left_for_a_read_back() -> None:
    answer = {"results": {"301": "ok", "303": "ok"}}  # nothing of 302
    sender = Scripted({301: [Answer(200, json.dumps(answer))]})
    ended: list[int] = []
    engine = Engine(
        connection(sender, FakeClock()),  # type: ignore[arg-type]
        operation=Bulk(),
        on_outcome=lambda row, outcome: ended.append(row.number),
    )
    anyio.run(engine.run, rows(3))
    assert sorted(ended) == [1, 3]  # 302's outcome is not known yet: not journaled
    assert list(engine.unattributed) == [2]


# --- a whole run: read, plan, back up, send in groups, read back, journal, report -----------------


@pytest.fixture
def bulk(monkeypatch: pytest.MonkeyPatch) -> None:
    from bulkrunner.config.run_config import for_config

    def grouped(config: RunConfig) -> tuple[Settings, Wire]:
        return Bulk(), for_config(config)[1]

    monkeypatch.setattr("bulkrunner.commands.streamed.for_config", grouped)


def run(tmp_path: Path, server: BulkServer, **more: Any) -> tuple[ExitCode, pd.DataFrame]:
    from bulkrunner.commands.run import run_job

    source = tmp_path / "plan.csv"
    lines = ["campaign_id,sending_limit", *(f"{c},{c - 280}" for c in range(301, 309)), "x,1"]
    source.write_text("\n".join(lines) + "\n")
    report = tmp_path / "r.csv"
    with ServerThread(server.handle) as thread:
        flags = {"input": str(source), "report": str(report), "base_url": thread.url, **more}
        code = run_job(
            build_config({}, flags), io.StringIO(), {"SMARTLEAD_API_KEY": KEY}, FakeClock().clock
        )
    return code, pd.read_csv(report, dtype=str, keep_default_na=False)


@pytest.mark.usefixtures("bulk")
def test_a_run_sends_rows_in_groups_and_reports_each_row(tmp_path: Path) -> None:
    """Eight rows in three requests; 302 refused by the answer, 305 applied but not named
    (read back: applied), 306 neither applied nor named (read back: not applied)."""
    server = BulkServer(refused={302}, silent={305}, dropped={306})
    kept: list[dict[str, Any]] = []
    handler = _Kept(kept)
    events.addHandler(handler)
    previous = events.level
    events.setLevel(logging.INFO)
    try:
        code, report = run(tmp_path, server)
    finally:
        events.removeHandler(handler)
        events.setLevel(previous)
    assert code == ExitCode.ROWS_FAILED
    assert server.bodies == [[301, 302, 303], [304, 305, 306], [307, 308]]
    assert report["row"].tolist() == [str(n) for n in range(1, 10)]
    assert report["status"].tolist() == [
        "succeeded", "failed", "succeeded", "succeeded", "succeeded", "failed", "succeeded",
        "succeeded", "invalid",
    ]  # fmt: skip
    assert report["error"][1] == "campaign archived"
    assert report["error"][4] == ""  # read back: as sent
    assert report["error"][5].startswith(
        "not applied: the answer did not say of this row, and it reads back otherwise: "
        "sending_limit: sent 26, server has 5"
    )
    assert report["before"][0] == '{"sending_limit": 5}'  # the plan, per row
    finished = {e["row"]: e for e in kept if e["event"] == "row_finished"}
    assert sorted(finished) == list(range(1, 10))  # a row_finished for every row
    assert (finished[6]["status"], finished[9]["status"]) == ("failed", "invalid")
    assert {e["account"] for e in finished.values()} == {None}  # a run without accounts file


@pytest.mark.usefixtures("bulk")
def test_the_journal_has_a_line_for_each_row_of_a_group(tmp_path: Path) -> None:
    """The third request is refused with a 401: the run stops, and its journal holds each row
    the first two requests finished, on its own line."""
    server = BulkServer(rejected={307})
    code, report = run(tmp_path, server)
    assert code == ExitCode.ABORTED
    lines = [json.loads(line) for line in journal_path(tmp_path / "r.csv").read_text().splitlines()]
    rows_journaled = sorted(line["row"] for line in lines[1:] if line["key"])
    assert rows_journaled == [1, 2, 3, 4, 5, 6, 7, 8]
    statuses = {line["row"]: line["status"] for line in lines[1:] if line["key"]}
    assert [statuses[n] for n in (1, 6, 7, 8)] == ["succeeded", "succeeded", "failed", "failed"]
    assert report["status"].tolist()[6:8] == ["failed", "failed"]


class _Kept(logging.Handler):
    def __init__(self, kept: list[dict[str, Any]]) -> None:
        super().__init__()
        self.kept = kept

    def emit(self, record: logging.LogRecord) -> None:
        self.kept.append({"event": record.__dict__["event"], **record.__dict__["fields"]})


@pytest.mark.usefixtures("bulk")
def test_a_row_left_unknown_when_the_run_stops_is_failed_never_succeeded(tmp_path: Path) -> None:
    """302 was applied but not named; the next request is refused with a 401 and the run stops
    before reading anything back: 302's outcome is not known, so it is ``failed`` (and sent
    again by ``--resume``), not ``succeeded``."""
    server = BulkServer(silent={302}, rejected={304})
    code, report = run(tmp_path, server, concurrency=1)
    assert code == ExitCode.ABORTED
    assert report["status"].tolist()[:3] == ["succeeded", "failed", "succeeded"]
    assert report["error"][1].startswith(
        "outcome unknown: the answer did not say of this row, and the run stopped before it "
        "was read back (run aborted: HTTP 401"
    )

"""Operator experience: skip-unchanged, backups, verify-after-write, progress, JSON logs."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from aiohttp import web
from rich.console import Console

from bulkrunner.cli.app import main
from bulkrunner.config.paths import backup_path
from bulkrunner.limits.limiter import SlidingWindowLimiter
from bulkrunner.model import Answer, Rate, Row
from bulkrunner.operations.base import Request
from bulkrunner.output.progress import Bar, LogLines, Snapshot
from bulkrunner.sending.connection import Connection
from bulkrunner.sending.verify import MATCHES, ReadBack, verify
from bulkrunner.simulator import FaultPlan, SimulatorConfig, SimulatorThread, default_settings
from tests.hostile import ServerThread

KEY = "sk-operator-SENTINEL-31"


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch, no_ambient_settings: None) -> None:
    monkeypatch.setenv("SMARTLEAD_API_KEY", KEY)


def plan(tmp_path: Path) -> Path:
    path = tmp_path / "plan.csv"
    path.write_text(
        "campaign_id,sending_limit,track_settings,unsubscribe_text\n"
        "11,150,DONT_EMAIL_OPEN,Reply STOP\n"
        "12,60,,\n"
        f"13,{default_settings(13)['sending_limit']},,\n"  # already as wanted
    )
    return path


def run(*argv: str) -> int:
    return main(list(argv))


def test_rows_that_change_nothing_are_not_sent(tmp_path: Path) -> None:
    source = plan(tmp_path)
    with SimulatorThread(SimulatorConfig(api_key=KEY, campaigns={11, 12, 13})) as sim:
        assert (
            run(
                "run",
                "--input",
                str(source),
                "--report",
                str(tmp_path / "1.csv"),
                "--base-url",
                sim.base_url,
            )
            == 0
        )
        assert sorted(sim.state.applied) == [11, 12]  # 13 already had the wanted value
        assert (
            run(
                "run",
                "--input",
                str(source),
                "--report",
                str(tmp_path / "2.csv"),
                "--base-url",
                sim.base_url,
            )
            == 0
        )
        assert sum(sim.state.applied.values()) == 2  # the second run sent nothing
        assert (
            run(
                "run",
                "--input",
                str(source),
                "--report",
                str(tmp_path / "3.csv"),
                "--base-url",
                sim.base_url,
                "--no-skip-unchanged",
            )
            == 0
        )
        assert sum(sim.state.applied.values()) == 5
        gets = [r for r in sim.state.requests if r.method == "GET"]
    assert len(gets) == 3  # one list call per run, nothing per row
    assert pd.read_csv(tmp_path / "1.csv")["status"].tolist() == [
        "succeeded",
        "succeeded",
        "unchanged",
    ]
    assert set(pd.read_csv(tmp_path / "2.csv")["status"]) == {"unchanged"}


def test_a_campaign_missing_from_the_account_is_flagged_before_sending(tmp_path: Path) -> None:
    source = plan(tmp_path)
    report = tmp_path / "r.csv"
    # Campaign 13 is not in the account: the list call shows only 11 and 12, and reading 13 on
    # its own answers 404, so its row fails unsent and the backup does not hold it as nulls.
    with SimulatorThread(SimulatorConfig(api_key=KEY, campaigns={11, 12})) as sim:
        code = run(
            "run", "--input", str(source), "--report", str(report), "--base-url", sim.base_url
        )
        posted = [r.campaign_id for r in sim.state.posts()]
        reads = [r.path for r in sim.state.requests if r.method == "GET"]
    assert code == 1
    assert set(posted) == {11, 12}
    assert len(posted) == 2
    assert reads == ["/api/v1/campaigns/", "/api/v1/campaigns/13"]
    frame = pd.read_csv(report)
    assert frame["http_status"].tolist() == [200, 200, 404]
    assert frame["error"].tolist()[2] == "campaign 13 not found (404)"
    assert pd.read_parquet(backup_path(report))["campaign_id"].tolist() == [11, 12]


def test_the_backup_holds_exactly_the_fields_about_to_change(tmp_path: Path) -> None:
    source = plan(tmp_path)
    report = tmp_path / "r.csv"
    with SimulatorThread(SimulatorConfig(api_key=KEY, campaigns={11, 12, 13})) as sim:
        assert (
            run("run", "--input", str(source), "--report", str(report), "--base-url", sim.base_url)
            == 0
        )
    backup = pd.read_parquet(backup_path(report))
    assert backup["campaign_id"].tolist() == [11, 12]  # 13 was not touched
    first, second = backup.to_dict("records")
    assert first["sending_limit"] == default_settings(11)["sending_limit"]
    assert list(first["track_settings"]) == []  # an empty list, not "unchanged"
    assert first["unsubscribe_text"] == ""  # an empty text, not "unchanged"
    assert second["sending_limit"] == default_settings(12)["sending_limit"]
    assert second["track_settings"] is None  # row 12 does not change it
    assert pd.isna(second["unsubscribe_text"])


class StaleReads:
    """A sender whose reads show other values than were written."""

    def __init__(self, shown: Mapping[str, Any]) -> None:
        self.shown = shown

    async def send(self, request: Request) -> Answer:
        return Answer(200, "{}")

    async def get_campaign(self, campaign_id: int) -> Answer:
        if campaign_id == 99:
            return Answer(404, '{"error": "Campaign not found"}')
        return Answer(200, json.dumps({"id": campaign_id, **self.shown}))

    async def list_campaigns(self) -> Answer:
        return Answer(200, "[]")

    async def read(self, path: str) -> Answer:
        return Answer(404, '{"error": "Not found"}')


async def test_verify_names_each_field_that_differs() -> None:
    rows = [
        Row(1, 5, {"sending_limit": 100, "stop_lead_settings": "OPEN_AN_EMAIL"}),
        Row(2, 6, {"sending_limit": 50}),
        Row(3, 99, {"sending_limit": 50}),
    ]
    sender = StaleReads({"sending_limit": 50, "stop_lead_settings": "OPENED_EMAIL"})
    through = Connection(sender, SlidingWindowLimiter([Rate(100, 1)]), concurrency=2)
    found = await verify(through, rows)
    assert found == {
        1: ReadBack(False, "sending_limit: sent 100, server has 50"),  # the enums agree
        2: MATCHES,
        3: ReadBack(None, "HTTP 404: Campaign not found"),
    }


def test_verify_reads_each_changed_campaign_back(tmp_path: Path) -> None:
    source = plan(tmp_path)
    with SimulatorThread(SimulatorConfig(api_key=KEY, campaigns={11, 12, 13})) as sim:
        assert (
            run(
                "run",
                "--input",
                str(source),
                "--report",
                str(tmp_path / "r.csv"),
                "--base-url",
                sim.base_url,
                "--verify",
            )
            == 0
        )
        reads = [r.path for r in sim.state.requests if r.method == "GET"]
    assert sorted(reads) == ["/api/v1/campaigns/", "/api/v1/campaigns/11", "/api/v1/campaigns/12"]


def test_progress_lines_come_every_interval(caplog: pytest.LogCaptureFixture) -> None:
    lines = LogLines(interval=10)
    snapshot = Snapshot(
        total=100, succeeded=40, failed=2, retrying=3, rate=4.9, limits="10/2", eta=11.6
    )
    with caplog.at_level(logging.INFO, logger="bulkrunner"):
        for now in (0.0, 4.0, 9.9, 10.0, 15.0, 20.5):
            lines.show(snapshot, now)
    assert [r.getMessage() for r in caplog.records] == [
        "progress: 42/100 rows done: 40 succeeded, 2 failed, 3 retrying; "
        "4.9 requests/s within 10/2; about 0:00:12 left"
    ] * 2


def test_the_bar_shows_counts_rate_and_an_eta_from_the_limit() -> None:
    out = io.StringIO()
    with Bar(Console(file=out, force_terminal=True, width=160)) as bar:
        bar.show(
            Snapshot(
                total=600, succeeded=100, failed=0, retrying=2, rate=1.0, limits="1/1", eta=500.0
            ),
            now=0.0,
        )
    text = out.getvalue()
    assert "100/600" in text
    assert "1.0/s within 1/1" in text
    assert "ETA 0:08:20" in text


def test_json_logs_have_one_object_per_event(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = plan(tmp_path)
    with SimulatorThread(SimulatorConfig(api_key=KEY, campaigns={11, 12, 13})) as sim:
        assert (
            run(
                "run",
                "--input",
                str(source),
                "--report",
                str(tmp_path / "r.csv"),
                "--base-url",
                sim.base_url,
                "--log-format",
                "json",
            )
            == 0
        )
    err = capsys.readouterr().err
    entries = [json.loads(line) for line in err.splitlines()]
    finished = [e for e in entries if e["event"] == "row_finished"]
    assert sorted((e["campaign_id"], e["status"]) for e in finished) == [
        (11, "succeeded"),
        (12, "succeeded"),
        (13, "unchanged"),  # a row not sent is finished too
    ]
    assert all("time" in e and "level" in e for e in entries)
    assert KEY not in err


def test_report_paths_take_a_timestamp_template() -> None:
    from datetime import UTC, datetime

    from bulkrunner.config.job_file import build_config

    when = datetime(2026, 11, 26, 2, 15, tzinfo=UTC)
    config = build_config(
        {"input": "plan.csv", "report": "/var/reports/{date}/nightly-{timestamp}.csv"}, {}, when
    )
    assert config.report is not None
    assert str(config.report) == "/var/reports/2026-11-26/nightly-20261126T021500Z.csv"
    assert str(backup_path(config.report)) == (
        "/var/reports/2026-11-26/nightly-20261126T021500Z.csv.backup.parquet"
    )


def test_apply_then_rollback_restores_the_original_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = plan(tmp_path)
    report = tmp_path / "apply.csv"
    ids = (11, 12, 13)
    with SimulatorThread(SimulatorConfig(api_key=KEY, campaigns=set(ids))) as sim:
        original = {cid: default_settings(cid) for cid in ids}
        assert (
            run("run", "--input", str(source), "--report", str(report), "--base-url", sim.base_url)
            == 0
        )
        assert sim.state.settings[11]["unsubscribe_text"] == "Reply STOP"
        assert sim.state.settings[11]["track_settings"] == ["DONT_EMAIL_OPEN"]
        assert "undo with: bulkrunner rollback" in capsys.readouterr().err
        assert (
            run(
                "rollback",
                str(report),
                "--report",
                str(tmp_path / "undo.csv"),
                "--base-url",
                sim.base_url,
            )
            == 0
        )
        restored = {cid: sim.state.settings.get(cid, default_settings(cid)) for cid in ids}
    assert restored == original  # the empty text and the empty list came back too
    assert pd.read_csv(tmp_path / "undo.csv")["status"].tolist() == ["succeeded", "succeeded"]


def test_rollback_without_a_backup_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("rollback", str(tmp_path / "never.csv")) == 2
    assert "no backup to roll back to" in capsys.readouterr().err


@pytest.mark.parametrize("again", ["--resume", "--fresh"])
def test_rollback_after_an_interrupted_and_resumed_run_restores_every_campaign(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], again: str
) -> None:
    """--fresh starts the sending over, but what the interrupted run changed stays changed:
    the backup keeps its original values too."""
    source = tmp_path / "plan.csv"
    source.write_text("campaign_id,sending_limit\n21,150\n22,160\n23,170\n")
    report = tmp_path / "apply.csv"
    ids = (21, 22, 23)
    original = {cid: default_settings(cid) for cid in ids}
    # Campaign 22's first POST is answered 429 with Retry-After 4: waiting for it would carry
    # the outage past its 2 s timeout, so the run aborts (exit 3, resumable) after 21 was
    # applied and journaled; the resumed run waits out what is left of the 429's pause.
    faults = FaultPlan(scripted={22: ["429"]}, retry_after=4.0)
    config = SimulatorConfig(api_key=KEY, campaigns=set(ids), faults=faults)
    outage = ("--outage-timeout", "2", "--timeout", "2")
    sending = ("--report", str(report), "--concurrency", "1", *outage)
    with SimulatorThread(config) as sim:
        assert run("run", "--input", str(source), *sending, "--base-url", sim.base_url) == 3
        assert dict(sim.state.applied) == {21: 1}
        capsys.readouterr()
        resumed = (again, "--base-url", sim.base_url)
        assert run("run", "--input", str(source), *sending, *resumed) == 0
        assert (
            "backup of the 2 campaigns about to change (and 1 more from the run it continues)"
            in (capsys.readouterr().err)
        )
        assert {cid: sim.state.settings[cid]["sending_limit"] for cid in ids} == {
            21: 150,
            22: 160,
            23: 170,
        }
        undo = ("--report", str(tmp_path / "undo.csv"), "--base-url", sim.base_url)
        assert run("rollback", str(report), *undo) == 0
        restored = {cid: sim.state.settings[cid] for cid in ids}
    assert restored == original  # 21, changed before the interruption, too
    assert pd.read_parquet(backup_path(report))["campaign_id"].tolist() == [21, 22, 23]


def test_a_resumed_run_with_an_unreadable_backup_sends_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "plan.csv"
    source.write_text("campaign_id,sending_limit\n21,150\n22,160\n")
    report = tmp_path / "apply.csv"
    # 22's 429 asks for 4 s, past the outage timeout: exit 3 after 21
    faults = FaultPlan(scripted={22: ["429"]}, retry_after=4.0)
    config = SimulatorConfig(api_key=KEY, campaigns={21, 22}, faults=faults)
    outage = ("--outage-timeout", "2", "--timeout", "2")
    sending = ("--report", str(report), "--concurrency", "1", *outage)
    with SimulatorThread(config) as sim:
        assert run("run", "--input", str(source), *sending, "--base-url", sim.base_url) == 3
        backup_path(report).write_bytes(b"torn")
        capsys.readouterr()
        resumed = ("--resume", "--base-url", sim.base_url)
        assert run("run", "--input", str(source), *sending, *resumed) == 3
        posts = len(sim.state.posts())
    assert posts == 2  # 21's, and 22's 503: nothing more
    err = capsys.readouterr().err
    assert f"{backup_path(report)}: cannot read the backup" in err
    assert pd.read_csv(report)["status"].tolist() == ["succeeded", "not_attempted"]


def test_reports_differing_only_in_extension_keep_their_own_backups(tmp_path: Path) -> None:
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    first.write_text("campaign_id,sending_limit\n31,150\n")
    second.write_text("campaign_id,sending_limit\n32,160\n")
    out = tmp_path / "out"
    with SimulatorThread(SimulatorConfig(api_key=KEY, campaigns={31, 32})) as sim:
        for source, report in ((first, out / "x.csv"), (second, out / "x.json")):
            code = run(
                "run", "--input", str(source), "--report", str(report), "--base-url", sim.base_url
            )
            assert code == 0
    assert pd.read_parquet(backup_path(out / "x.csv"))["campaign_id"].tolist() == [31]
    assert pd.read_parquet(backup_path(out / "x.json"))["campaign_id"].tolist() == [32]


class ReadlessServer(ServerThread):
    """A hostile SmartLead on 127.0.0.1, in its own thread: the list call answers a page of
    HTML, campaign 41 reads fine, 42's read is refused (400), 43 does not exist (404); every
    settings POST succeeds and is recorded."""

    def __init__(self) -> None:
        super().__init__(self._answer)
        self.posted: list[int] = []

    @property
    def base_url(self) -> str:
        return f"{self.url}/api/v1"

    async def _answer(self, request: web.Request) -> web.Response:
        if request.method == "GET" and request.path == "/api/v1/campaigns/":
            return web.Response(text="<html>maintenance</html>", content_type="text/html")
        read = re.fullmatch(r"/api/v1/campaigns/(\d+)", request.path)
        if request.method == "GET" and read:
            cid = int(read.group(1))
            if cid == 41:
                return web.json_response({"id": 41, **default_settings(41)})
            if cid == 42:
                return web.json_response({"error": "bad request"}, status=400)
            return web.json_response({"error": "Campaign not found"}, status=404)
        post = re.fullmatch(r"/api/v1/campaigns/(\d+)/settings", request.path)
        if request.method == "POST" and post:
            self.posted.append(int(post.group(1)))
            return web.json_response({"success": True, "data": {}})
        return web.Response(status=404)


def test_campaigns_whose_values_cannot_be_read_are_not_sent_without_a_backup(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "plan.csv"
    source.write_text("campaign_id,sending_limit\n41,150\n42,160\n43,170\n")
    report = tmp_path / "r.csv"
    with ReadlessServer() as server:
        code = run(
            "run", "--input", str(source), "--report", str(report), "--base-url", server.base_url
        )
        posted = list(server.posted)
    err = capsys.readouterr().err
    assert code == 1
    assert posted == [41]
    frame = pd.read_csv(report)
    assert frame["status"].tolist() == ["succeeded", "failed", "failed"]
    assert frame["error"].tolist()[1:] == [
        "campaign 42: its current settings could not be read (HTTP 400: bad request); not sent, "
        "as it could not be backed up (--no-backup sends it anyway)",
        "campaign 43 not found (404)",
    ]
    assert "backup of the 1 campaign about to change" in err
    assert "sending every row, without a backup" not in err
    backup = pd.read_parquet(backup_path(report))
    assert backup.to_dict("records") == [
        {
            "campaign_id": 41,
            "sending_limit": default_settings(41)["sending_limit"],
            "set_by_run": '{"sending_limit": 150}',  # what the run set, for its rollback
        }
    ]


def test_no_backup_sends_rows_whose_values_cannot_be_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "plan.csv"
    source.write_text("campaign_id,sending_limit\n41,150\n42,160\n")
    report = tmp_path / "r.csv"
    with ReadlessServer() as server:
        code = run(
            "run",
            "--input",
            str(source),
            "--report",
            str(report),
            "--base-url",
            server.base_url,
            "--no-backup",
        )
        posted = sorted(server.posted)
    assert code == 0
    assert posted == [41, 42]
    assert not backup_path(report).exists()
    assert "no backup is written; this run cannot be rolled back" in capsys.readouterr().err


def test_the_report_shows_before_and_after_for_fields_that_change(tmp_path: Path) -> None:
    source = plan(tmp_path)
    report = tmp_path / "r.jsonl"
    with SimulatorThread(SimulatorConfig(api_key=KEY, campaigns={11, 12, 13})) as sim:
        assert (
            run("run", "--input", str(source), "--report", str(report), "--base-url", sim.base_url)
            == 0
        )
    rows = [json.loads(line) for line in report.read_text().splitlines()]
    assert json.loads(rows[1]["before"]) == {"sending_limit": default_settings(12)["sending_limit"]}
    assert json.loads(rows[1]["after"]) == {"sending_limit": 60}
    assert rows[2]["status"] == "unchanged"
    assert rows[2]["before"] is None


def test_a_dry_run_previews_the_bodies_in_the_chosen_vocabulary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "p.csv"
    source.write_text(
        "campaign_id,track_settings,stop_lead_settings,sending_limit\n"
        "1,DONT_EMAIL_OPEN,OPENED_EMAIL,\n2,,,abc\n3,,CLICKED_LINK,5\n"
    )
    code = run(
        "run",
        "--input",
        str(source),
        "--dry-run",
        "--vocabulary",
        "long",
        "--report",
        str(tmp_path / "r.csv"),
    )
    assert code == 1
    out = capsys.readouterr().out
    assert "preview: the first 2 of 2 valid rows, as they would be sent:" in out
    assert (
        'row 1: POST /campaigns/1/settings {"track_settings": ["DONT_TRACK_EMAIL_OPEN"], '
        '"stop_lead_settings": "OPEN_AN_EMAIL"}'
    ) in out
    assert 'row 3: POST /campaigns/3/settings {"stop_lead_settings": "CLICK_ON_A_LINK", ' in out
    assert "rows valid: 2, invalid: 1" in out
    assert "rows setting each field: track_settings 1, stop_lead_settings 2, sending_limit 1" in out


def test_setting_a_field_with_no_value_needs_allow_irreversible_and_rollback_names_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """client_id is null on the simulator's campaigns: no API call puts a null back."""
    source = tmp_path / "plan.csv"
    source.write_text("campaign_id,sending_limit,client_id\n11,150,4\n12,60,\n")
    with SimulatorThread(SimulatorConfig(api_key=KEY, campaigns={11, 12})) as sim:
        base = ("--base-url", sim.base_url)
        assert run("plan", str(source), "--report", str(tmp_path / "p.csv"), *base) == 1
        out = capsys.readouterr().out
        assert "rows to change: 1, unchanged: 0, invalid: 0, missing from the account: 0, " in out
        assert "refused: 1" in out
        allowed = ("--allow-irreversible", *base)
        assert run("plan", str(source), "--report", str(tmp_path / "p2.csv"), *allowed) == 0
        out = capsys.readouterr().out
        assert "row 1 (campaign 11): sending_limit " in out
        assert "client_id (no value) -> 4 [irreversible]" in out
        assert "rows to change: 2 (1 a rollback could not undo: --allow-irreversible)" in out

        refused = tmp_path / "refused.csv"
        assert run("run", str(source), "--report", str(refused), *base) == 1
        frame = pd.read_csv(refused, keep_default_na=False)
        assert frame["status"].tolist() == ["failed", "succeeded"]
        assert frame["error"][0] == (
            "campaign 11: client_id has no value now (null or not shown), and no API call takes "
            "a value away: a rollback could not undo setting it; not sent (--allow-irreversible "
            "sends it)"
        )
        assert 11 not in sim.state.applied
        capsys.readouterr()

        applied = tmp_path / "applied.csv"
        assert run("run", str(source), "--report", str(applied), *allowed) == 0
        assert sim.state.settings[11]["client_id"] == 4
        lost = "client_id had no value before the run, and no API call takes a value away"
        assert f"a rollback could not restore 1 campaign (11): {lost}" in capsys.readouterr().err
        undo = ("--report", str(tmp_path / "undo.csv"), *base)
        assert run("rollback", str(applied), *undo) == 1  # not all of it was undone
        out = capsys.readouterr().out
        assert f"campaign 11: cannot be restored in full: {lost}" in out
        assert "not restored: 1 campaign (listed above)" in out
        assert sim.state.settings[11]["sending_limit"] == default_settings(11)["sending_limit"]
        assert sim.state.settings[11]["client_id"] == 4  # what no API call can take away

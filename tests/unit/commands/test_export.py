"""``bulkrunner export``: the account's campaigns as an input file, which ``run`` takes back.

Against the simulator on 127.0.0.1 (and, for what it never does, a small server of the test's
own): an unedited export run again changes nothing, an edited one is a migration that
``rollback`` undoes, the filters, an operation with a per-campaign read, and every way it fails.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from aiohttp import web

from bulkrunner.cli.app import main
from bulkrunner.commands.export import (
    Export,
    check_round_trip,
    read_export,
    write_export,
)
from bulkrunner.config.environment import key_not_set
from bulkrunner.config.job_file import build_config
from bulkrunner.config.paths import backup_path
from bulkrunner.config.redaction import REDACTED
from bulkrunner.errors import Aborted, ExitCode
from bulkrunner.input.loading import read_input
from bulkrunner.input.validation import validate
from bulkrunner.model import Change, Clock, RunStats
from bulkrunner.operations import Wire
from bulkrunner.operations.base import Operation
from bulkrunner.operations.fields import Field
from bulkrunner.operations.settings import SETTINGS
from bulkrunner.output.export_file import as_csv_cells
from bulkrunner.records.backup import record_backup
from bulkrunner.sending.demo import DEMO_CAMPAIGNS
from bulkrunner.simulator import (
    SimulatorConfig,
    SimulatorThread,
    default_email_accounts,
    default_settings,
    default_status,
)
from tests.fakes import FakeClock, RecordingSleep
from tests.hostile import RunCli, ServerThread, every_file_text

KEY = "sk-export-SENTINEL-77"
IDS = (11, 12, 13, 14, 15, 16, 17)


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SMARTLEAD_API_KEY", KEY)
    monkeypatch.delenv("SMARTLEAD_BASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)


def seeded(sim: SimulatorThread) -> None:
    """Campaigns whose values are the awkward ones to write as cells."""
    sim.state.settings[12] = {
        **default_settings(12),
        "track_settings": ["DONT_EMAIL_OPEN", "DONT_LINK_CLICK"],
        "unsubscribe_text": '=HYPERLINK("http://evil.example","unsubscribe")',
        "client_id": 7,
        "enable_ai_esp_matching": True,
    }
    sim.state.settings[13] = {
        **default_settings(13),
        "track_settings": ["DONT_LINK_CLICK"],
        "unsubscribe_text": 'Reply STOP; or don\'t, "quoted"\nsecond line',
        "client_id": 7,
        "stop_lead_settings": "CLICKED_LINK",
    }
    sim.state.settings[14] = {**default_settings(14), "unsubscribe_text": "-5"}  # a number
    # surrounding white space, which is part of the text
    sim.state.settings[15] = {**default_settings(15), "unsubscribe_text": "\tReply STOP  "}


def report_statuses(path: Path) -> list[str]:
    return [str(s) for s in pd.read_csv(path, dtype=str)["status"]]


# --- export, then run the file unedited: nothing changes -----------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_an_unedited_export_run_again_changes_nothing(
    suffix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with SimulatorThread(SimulatorConfig(api_key=KEY, campaigns=set(IDS))) as sim:
        seeded(sim)
        exported = tmp_path / f"campaigns{suffix}"
        code = main(["export", "--base-url", sim.base_url, "--output", str(exported)])
        out = capsys.readouterr().out
        assert code == 0, out
        assert f"exported 7 campaigns (settings) to {exported}" in out
        report = tmp_path / "again.csv"
        assert (
            main(["run", str(exported), "--base-url", sim.base_url, "--report", str(report)]) == 0
        )
        assert report_statuses(report) == ["unchanged"] * len(IDS)
        assert sim.state.writes() == []  # not one write reached the account
        assert all(r.method == "GET" for r in sim.state.requests)


def test_the_csv_cells_are_the_input_forms(tmp_path: Path) -> None:
    with SimulatorThread(SimulatorConfig(api_key=KEY, campaigns=set(IDS))) as sim:
        seeded(sim)
        exported = tmp_path / "campaigns.csv"
        assert main(["export", "--base-url", sim.base_url, "--output", str(exported)]) == 0
    cells = pd.read_csv(exported, dtype=str, keep_default_na=False).set_index("campaign_id")
    assert list(cells.columns) == [
        "name",  # for people: read back, never sent
        "track_settings",
        "stop_lead_settings",
        "sending_limit",
        "min_time_btwn_emails",
        "enable_ai_esp_matching",
        "send_as_plain_text",
        "follow_up_percentage",
        "unsubscribe_text",
        "client_id",
    ]
    assert cells.loc["12", "track_settings"] == "DONT_EMAIL_OPEN;DONT_LINK_CLICK"
    assert cells.loc["11", "track_settings"] == "[]"  # an empty list, not a blank (unchanged)
    assert cells.loc["11", "unsubscribe_text"] == '""'  # the empty text, not a blank
    assert str(cells.loc["12", "unsubscribe_text"]).startswith("'=HYPERLINK")  # not run
    assert cells.loc["14", "unsubscribe_text"] == "-5"  # a number is no formula: no quote
    assert cells.loc["12", "enable_ai_esp_matching"] == "true"
    assert cells.loc["12", "client_id"] == "7"
    assert cells.loc["11", "client_id"] == ""  # no client: left blank, so left as it is


def test_csv_and_parquet_cells_read_back_as_the_values_written(tmp_path: Path) -> None:
    values: dict[str, list[Any]] = {
        "campaign_id": [1, 2, 3],
        "track_settings": [["DONT_EMAIL_OPEN", "DONT_LINK_CLICK"], [], None],
        "sending_limit": [0, 250, None],
        "send_as_plain_text": [True, False, None],
        "unsubscribe_text": ["=1+1", "", "'+33 quoted already"],
    }
    frame = pd.DataFrame({name: pd.Series(cells, dtype=object) for name, cells in values.items()})
    for suffix in (".csv", ".parquet"):
        exported = Export(frame, SETTINGS, {}, RunStats())
        path = write_export(exported, tmp_path / f"x{suffix}")
        loaded, _ = read_input(path, SETTINGS)
        rows = validate(loaded, SETTINGS_VOCABULARY, operation=SETTINGS).rows
        assert [row.payload for row in rows] == [
            {
                "track_settings": ["DONT_EMAIL_OPEN", "DONT_LINK_CLICK"],
                "sending_limit": 0,
                "send_as_plain_text": True,
                "unsubscribe_text": "=1+1",
            },
            {
                "track_settings": [],
                "sending_limit": 250,
                "send_as_plain_text": False,
                "unsubscribe_text": "",
            },
            {"unsubscribe_text": "'+33 quoted already"},
        ], suffix
    cells = as_csv_cells(frame, SETTINGS)
    assert cells["unsubscribe_text"].tolist() == ["'=1+1", '""', "''+33 quoted already"]
    types = pq.read_schema(tmp_path / "x.parquet")
    assert types.field("track_settings").type.equals(pa.list_(pa.string()))
    assert types.field("sending_limit").type.equals(pa.int64())
    assert types.field("send_as_plain_text").type.equals(pa.bool_())


SETTINGS_VOCABULARY = build_config({"input": "x.csv"}, {}).vocabulary


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_each_campaign_s_name_is_exported_beside_its_id_and_never_sent_back(
    suffix: str, tmp_path: Path
) -> None:
    """The name is for people finding their campaigns in the file: written after the id, read
    back by a run as a column it neither sends nor judges, even edited or made a formula."""
    with SimulatorThread(SimulatorConfig(api_key=KEY, campaigns={11, 12, 13})) as sim:
        exported = tmp_path / f"campaigns{suffix}"
        assert main(["export", "--base-url", sim.base_url, "--output", str(exported)]) == 0
        frame = pd.read_csv(exported) if suffix == ".csv" else pd.read_parquet(exported)
        assert list(frame.columns[:2]) == ["campaign_id", "name"]
        assert frame["name"].tolist() == ["Campaign 11", "Campaign 12", "Campaign 13"]
        if suffix == ".parquet":
            assert pq.read_schema(exported).field("name").type.equals(pa.string())
        frame["name"] = ["renamed", "=1+1", None]
        frame.loc[0, "sending_limit"] = 77
        if suffix == ".csv":
            frame.to_csv(exported, index=False)
        else:
            frame.to_parquet(exported)
        report = tmp_path / "r.csv"
        args = ["run", str(exported), "--base-url", sim.base_url, "--report", str(report)]
        assert main(args) == 0
        assert report_statuses(report) == ["succeeded", "unchanged", "unchanged"]
        assert [r.campaign_id for r in sim.state.writes()] == [11]  # 422 had the name gone
        assert sim.state.settings[11]["sending_limit"] == 77


def test_a_value_the_run_would_refuse_is_exported_and_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with SimulatorThread(SimulatorConfig(api_key=KEY, campaigns={11, 12})) as sim:
        sim.state.settings[12] = {
            **default_settings(12),
            "track_settings": ["DONT_TRACK_REPLY_TO_AN_EMAIL"],  # a long name only
        }
        exported = tmp_path / "campaigns.csv"
        base = ["export", "--base-url", sim.base_url, "--output", str(exported)]
        assert main(base) == 1  # written, but read it: campaign 12 would not be sent as it is
        captured = capsys.readouterr()
        assert "1 campaign would not read back as they are" in captured.out
        assert (
            "campaign 12 does not read back as it is: its row would be invalid: track_settings: "
            "DONT_TRACK_REPLY_TO_AN_EMAIL exists only in the long vocabulary" in captured.err
        )
        assert pd.read_csv(exported)["campaign_id"].tolist() == [11, 12]
        # exported again (over the first) for the vocabulary the run will use, it reads back
        assert main([*base, "--vocabulary", "long", "--force"]) == 0
        report = tmp_path / "r.csv"
        again = ["run", str(exported), "--base-url", sim.base_url, "--vocabulary", "long"]
        assert main([*again, "--report", str(report)]) == 0
        assert report_statuses(report) == ["unchanged", "unchanged"]
        assert sim.state.writes() == []


# --- export, edit, run, rollback: a migration -----------------------------------------------------


def test_export_edit_run_then_rollback_puts_the_account_back(tmp_path: Path) -> None:
    with SimulatorThread(SimulatorConfig(api_key=KEY, campaigns=set(IDS))) as sim:
        seeded(sim)
        before = {cid: dict(sim.state.settings.get(cid) or default_settings(cid)) for cid in IDS}
        exported = tmp_path / "campaigns.csv"
        assert main(["export", "--base-url", sim.base_url, "--output", str(exported)]) == 0
        edited = pd.read_csv(exported, dtype=str, keep_default_na=False)
        edited.loc[edited["campaign_id"] == "12", "sending_limit"] = "5"
        edited.loc[edited["campaign_id"] == "15", "track_settings"] = "DONT_LINK_CLICK"
        edited.to_csv(exported, index=False)
        report = tmp_path / "migration.csv"
        assert (
            main(["run", str(exported), "--base-url", sim.base_url, "--report", str(report)]) == 0
        )
        assert sorted(sim.state.applied) == [12, 15]
        assert sim.state.settings[12]["sending_limit"] == 5
        assert main(["rollback", str(report), "--base-url", sim.base_url]) == 0
        after = {cid: dict(sim.state.settings.get(cid) or default_settings(cid)) for cid in IDS}
        assert after == before


# --- which campaigns ----------------------------------------------------------------------------


def test_status_and_client_id_choose_the_campaigns(tmp_path: Path) -> None:
    ids = set(range(1, 30))
    with SimulatorThread(SimulatorConfig(api_key=KEY, campaigns=ids)) as sim:
        for cid in (3, 10, 11, 17):  # 3, 10 and 17 are PAUSED (seeded by id % 7)
            sim.state.settings[cid] = {**default_settings(cid), "client_id": 7}
        paused = tmp_path / "paused.csv"
        base = ["export", "--base-url", sim.base_url]
        assert main([*base, "--status", "Paused", "--output", str(paused)]) == 0
        expected = sorted(cid for cid in ids if default_status(cid) == "PAUSED")
        assert pd.read_csv(paused)["campaign_id"].tolist() == expected
        client = tmp_path / "client.csv"
        assert main([*base, "--status", "paused", "--client-id", "7", "--output", str(client)]) == 0
        assert pd.read_csv(client)["campaign_id"].tolist() == [3, 10, 17]


def test_the_client_filter_travels_in_the_query_beside_the_key(tmp_path: Path) -> None:
    async def listing(request: web.Request) -> web.StreamResponse:
        return web.json_response([{"id": 5, "status": "ACTIVE", "sending_limit": 9}])

    with ServerThread(listing) as server:
        base = f"{server.url}/api/v1"
        path = tmp_path / "x.csv"
        assert main(["export", "--base-url", base, "--client-id", "42", "--output", str(path)]) == 0
    ((method, sent),) = server.requests
    assert method == "GET"
    assert sent == f"/api/v1/campaigns/?client_id=42&api_key={KEY}"


def test_a_key_echoed_in_a_campaign_never_reaches_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Nor its REDACTED stand-in, which a run of the file would put in the campaign."""

    async def echoing(request: web.Request) -> web.StreamResponse:
        text = f"unsubscribe at {request.path_qs}"  # the request line, key included
        campaign = {"id": 5, "status": "ACTIVE", "unsubscribe_text": text}
        named = {"id": 6, "name": f"for {KEY}", "sending_limit": 7}  # read-only: shown redacted
        return web.json_response([campaign, named])

    with ServerThread(echoing) as server:
        for suffix in (".csv", ".parquet"):
            path = tmp_path / f"x{suffix}"
            code = main(["export", "--base-url", f"{server.url}/api/v1", "--output", str(path)])
            held = pq.read_table(path).to_pylist() if suffix == ".parquet" else path.read_text()
            assert code == ExitCode.ROWS_FAILED
            assert "campaign 5 is not exported: its unsubscribe_text holds the API key" in (
                capsys.readouterr().err
            )
            rows = pd.read_csv(path) if suffix == ".csv" else pd.DataFrame(held)
            assert rows[["campaign_id", "name"]].values.tolist() == [[6, f"for {REDACTED}"]]
            assert KEY not in repr(held)


def test_the_command_as_a_user_runs_it_never_prints_the_key(
    tmp_path: Path, cli_here: RunCli
) -> None:
    with SimulatorThread(SimulatorConfig(api_key=KEY, campaigns=set(IDS))) as sim:
        seeded(sim)
        done = cli_here(tmp_path, KEY, "export", "-v", "--base-url", sim.base_url)
    assert done.returncode == 0, done.stderr
    assert "exported 7 campaigns (settings) to exports/settings-" in done.stdout
    assert "read 7 campaigns; exporting 7 campaigns" in done.stderr
    assert KEY not in done.stdout + done.stderr
    assert KEY not in "".join(every_file_text(tmp_path).values())


def test_simulate_exports_the_seeded_campaigns_without_a_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SMARTLEAD_API_KEY")
    assert main(["export", "--simulate", "--status", "drafted"]) == 0
    (written,) = (tmp_path / "exports").glob("settings-*.csv")
    drafted = [cid for cid in DEMO_CAMPAIGNS if default_status(cid) == "DRAFTED"]
    assert pd.read_csv(written)["campaign_id"].tolist() == drafted
    assert str(Path("exports") / written.name) in capsys.readouterr().out
    # and `run --simulate` of that file finds every row as it is
    assert main(["run", str(written), "--simulate", "--report", str(tmp_path / "r.csv")]) == 0
    assert report_statuses(tmp_path / "r.csv") == ["unchanged"] * len(drafted)


# --- an operation that reads each campaign's detail ---------------------------------------------


def _account_ids(cell: Any) -> tuple[Any, str | None]:
    text = str(cell).strip().strip("[]")  # [] is the empty list, as for track_settings
    items = list(cell) if isinstance(cell, list | np.ndarray) else text.split(";")
    try:
        return sorted(int(str(item)) for item in items if str(item).strip()), None
    except ValueError:
        return None, f"{cell!r} is not a list of account ids"


class Accounts(Operation):
    """An operation whose state is only in ``GET /campaigns/{id}/email-accounts``."""

    name = "email-accounts"
    fields = (Field("email_account_ids", "custom", parse=_account_ids, arrow="list<int64>"),)
    detail = "email-accounts"

    def state(self, campaign: Mapping[str, Any]) -> dict[str, Any]:
        if "email-accounts" not in campaign:
            return {}
        return {"email_account_ids": sorted(a["id"] for a in campaign["email-accounts"])}


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_an_operation_with_a_detail_read_reads_it_for_each_campaign(
    suffix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    operation = Accounts()
    monkeypatch.setattr(
        "bulkrunner.commands.export.for_config", lambda config: (operation, Wire(config.vocabulary))
    )
    with SimulatorThread(SimulatorConfig(api_key=KEY, campaigns=set(IDS))) as sim:
        sim.state.email_accounts[14] = []  # none attached: an empty list, still a value
        config = build_config(
            {"input": ""}, {"base_url": sim.base_url, "output": str(tmp_path / f"a{suffix}")}
        )
        exported = read_export(config)
        assert config.output is not None
        write_export(exported, config.output)
        assert check_round_trip(exported, config) == {}
        details = sorted(r.path for r in sim.state.requests if r.path.endswith("email-accounts"))
    assert details == sorted(f"/api/v1/campaigns/{cid}/email-accounts" for cid in IDS)
    assert exported.frame["campaign_id"].tolist() == list(IDS)
    wanted = [[] if cid == 14 else default_email_accounts(cid, 50) for cid in IDS]
    assert exported.frame["email_account_ids"].tolist() == wanted


# --- every way it fails: one line, the right exit code, never the key ----------------------------


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if "bulkrunner: error" in line]
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err
    assert KEY not in captured.err + captured.out
    return lines[0]


def test_a_rejected_key_aborts_with_exit_3_and_no_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with SimulatorThread(SimulatorConfig(api_key="another-key", campaigns=set(IDS))) as sim:
        path = tmp_path / "x.csv"
        assert main(["export", "--base-url", sim.base_url, "--output", str(path)]) == 3
    assert "export aborted" in one_line_error(capsys)
    assert not path.exists()


def test_nothing_listening_aborts_with_exit_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["export", "--base-url", "http://127.0.0.1:9/api/v1"]) == 3
    line = one_line_error(capsys)
    assert "connection refused" in line
    assert "api_key=REDACTED" in line


def test_a_wait_longer_than_max_wait_aborts_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async def throttled(request: web.Request) -> web.StreamResponse:
        return web.json_response({"error": "slow down"}, status=429, headers={"Retry-After": "900"})

    with ServerThread(throttled) as server:
        base = ["export", "--base-url", f"{server.url}/api/v1", "--max-wait", "60"]
        assert main(base) == 3
    assert "asked to wait 900s" in one_line_error(capsys)
    assert len(server.requests) == 1  # it did not wait and ask again


def test_the_list_is_retried_like_a_run_s_reads() -> None:
    answers = [
        web.Response(status=503, text="busy", headers={"Retry-After": "5"}),
        web.Response(status=502, text="bad gateway"),
    ]

    async def flaky(request: web.Request) -> web.StreamResponse:
        if answers:
            return answers.pop(0)
        return web.json_response([{"id": 5, "status": "ACTIVE", "sending_limit": 9}])

    sleep = RecordingSleep()
    with ServerThread(flaky) as server:
        config = build_config({"input": ""}, {"base_url": f"{server.url}/api/v1"})
        exported = read_export(config, clock=Clock(sleep=sleep))
    assert len(server.requests) == 3
    assert exported.frame["sending_limit"].tolist() == [9]
    assert (exported.stats.requests, exported.stats.retries) == (3, 2)
    assert len(sleep.delays) == 2
    assert sleep.delays[0] >= 5  # never sooner than Retry-After


def test_reads_answered_503_stop_the_export_within_the_outage_timeout() -> None:
    """The run's --outage-timeout bounds an export's reads as it bounds a run's: the export
    stops rather than try again past it (on the export's clock: no real wait)."""

    async def down(request: web.Request) -> web.StreamResponse:
        return web.Response(status=503, text="Service Unavailable")

    clock = FakeClock()
    with ServerThread(down) as server:
        flags = {
            "base_url": f"{server.url}/api/v1",
            **{"outage_timeout": 20, "timeout": 5, "max_attempts": 50},
        }
        with pytest.raises(Aborted) as stopped:
            read_export(build_config({"input": ""}, flags), {"SMARTLEAD_API_KEY": KEY}, clock.clock)
    assert str(stopped.value).startswith("export aborted: only retryable errors came back for")
    assert clock.now - clock.start < 20  # it did not wait past the timeout to find out
    assert len(server.requests) < 50


def test_an_answer_that_is_not_a_list_of_campaigns_aborts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async def broken(request: web.Request) -> web.StreamResponse:
        return web.Response(text="<html>oops</html>", content_type="text/html")

    with ServerThread(broken) as server:
        assert main(["export", "--base-url", f"{server.url}/api/v1"]) == 3
    assert "cannot read the list of campaigns" in one_line_error(capsys)


@pytest.mark.parametrize(
    ("words", "complaint"),
    [
        (["--status", "running"], "status must be one of DRAFTED, ACTIVE, PAUSED"),
        (["--client-id", "0"], "client id must be a whole number of at least 1"),
        (["--output", "x.json"], "x.json: unsupported export format '.json'; use .csv or"),
    ],
)
def test_bad_options_are_usage_errors_before_any_read(
    words: list[str], complaint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with SimulatorThread(SimulatorConfig(api_key=KEY)) as sim:
        assert main(["export", "--base-url", sim.base_url, *words]) == 2
        assert sim.state.requests == []
    assert complaint in one_line_error(capsys)


def test_an_existing_output_is_refused_unless_forced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 19: --output silently replaced whatever file was there."""
    path = tmp_path / "mine.csv"
    path.write_text("campaign_id,sending_limit\n1,5\n")
    with SimulatorThread(SimulatorConfig(api_key=KEY, campaigns=set(IDS))) as sim:
        base = ["export", "--base-url", sim.base_url, "--output", str(path)]
        assert main(base) == 2
        assert sim.state.requests == []  # refused before anything is read
        assert f"{path}: the file exists; choose another --output, or add --force" in (
            one_line_error(capsys)
        )
        assert path.read_text() == "campaign_id,sending_limit\n1,5\n"
        assert main([*base, "--force"]) == 0
    assert pd.read_csv(path)["campaign_id"].tolist() == list(IDS)


@pytest.mark.parametrize("force", [False, True])
@pytest.mark.parametrize("exists", [False, True])
def test_an_export_never_takes_the_name_of_a_backup(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], force: bool, exists: bool
) -> None:
    """A backup is what undoes a run: no export replaces one, nor takes a name that
    ``rollback`` would read as one."""
    ledger = backup_path(tmp_path / "r.csv")
    if exists:
        record_backup(ledger, {11: {"sending_limit": Change(40, 150)}}, keep=False)
    before = ledger.read_bytes() if exists else None
    with SimulatorThread(SimulatorConfig(api_key=KEY, campaigns=set(IDS))) as sim:
        flags = ["--force"] if force else []
        assert main(["export", "--base-url", sim.base_url, "--output", str(ledger), *flags]) == 2
        assert sim.state.requests == []
    assert "the name of a bulkrunner backup" in one_line_error(capsys)
    assert (ledger.read_bytes() if exists else None) == before
    assert ledger.exists() == exists


def test_an_export_waits_for_no_run_using_the_same_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    holder = (
        "import os, sys\n"
        "from contextlib import ExitStack\n"
        "from datetime import UTC, datetime\n"
        "from bulkrunner.config.accounts import Account\n"
        "from bulkrunner.records.locks import lock_accounts\n"
        "with ExitStack() as held:\n"
        "    account = Account('', 'SMARTLEAD_API_KEY', (), sys.argv[1])\n"
        "    key = os.environ['SMARTLEAD_API_KEY']\n"
        "    lock_accounts(held, [account], {'': key}, datetime.now(UTC))\n"
        "    print('held', flush=True)\n"
        "    sys.stdin.read()\n"
    )
    with SimulatorThread(SimulatorConfig(api_key=KEY, campaigns={11})) as sim:
        running = subprocess.Popen(
            [sys.executable, "-c", holder, sim.base_url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert running.stdout is not None
            assert running.stdout.readline() == "held\n"  # as a run does while it sends
            assert main(["export", "--base-url", sim.base_url]) == 4
        finally:
            running.communicate(timeout=30)
        assert sim.state.requests == []  # nothing read
        assert "another bulkrunner run" in one_line_error(capsys)
        assert main(["export", "--base-url", sim.base_url]) == 0  # once it is over


def test_no_key_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SMARTLEAD_API_KEY")
    assert main(["export"]) == 2
    assert key_not_set() in one_line_error(capsys)


def test_export_takes_the_reading_options_and_no_sending_ones(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["export", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    for flag in ("--operation", "--client-id", "--status", "--output", "--rate", "--max-wait"):
        assert flag in shown
    for flag in ("--dry-run", "--resume", "--report", "--verify", "--input"):
        assert f"{flag} " not in shown
        assert f"[{flag}" not in shown


def test_a_job_file_gives_its_connection_and_operation(tmp_path: Path) -> None:
    with SimulatorThread(SimulatorConfig(api_key=KEY, campaigns={11, 12})) as sim:
        job = tmp_path / "job.toml"
        job.write_text(
            f'input = "plan.csv"\nreport = "r.csv"\nbase_url = "{sim.base_url}"\n'
            'rate = ["5/1"]\nverify = true\n'
        )
        out = tmp_path / "x.csv"
        assert main(["export", str(job), "--output", str(out)]) == 0
        assert pd.read_csv(out)["campaign_id"].tolist() == [11, 12]
    assert not (tmp_path / "r.csv").exists()


def test_json_logs_give_the_summary_as_one_object(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with SimulatorThread(SimulatorConfig(api_key=KEY, campaigns={11, 12})) as sim:
        path = tmp_path / "x.csv"
        words = [
            "export",
            "--base-url",
            sim.base_url,
            "--output",
            str(path),
            "--log-format",
            "json",
        ]
        assert main(words) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    (summary,) = [r for r in records if r["event"] == "summary"]
    assert (summary["exported"], summary["output"]) == (2, str(path))


def test_a_status_no_row_can_write_is_left_out_with_its_reason_and_is_no_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A DRAFTED or COMPLETED campaign's status was read: it is left out (no row can set it)
    with that reason, not as unreadable, and the export of the others is a success."""
    with SimulatorThread(SimulatorConfig(api_key=KEY, campaigns=set(IDS))) as sim:
        sim.state.statuses.update({11: "DRAFTED", 12: "COMPLETED", 13: "PAUSED"})
        out = tmp_path / "status.csv"
        args = ["--base-url", sim.base_url, "--operation", "status"]
        assert main(["export", *args, "--output", str(out)]) == 0
        ids = pd.read_csv(out)["campaign_id"].tolist()
        assert ids == [13, 14, 15, 16, 17]
        printed = capsys.readouterr()
        assert "campaign 11 is not exported: it is DRAFTED" in printed.err
        assert "could be read" not in printed.err + printed.out
        assert (  # how many were written, and why the others were not, in one line
            f"exported 5 campaigns (status) to {out}; 2 left out (named in the log): 2 whose "
            "state no status row can set\n"
        ) in printed.out
        assert main(["run", str(out), *args, "--report", str(tmp_path / "r.csv")]) == 0
        assert set(report_statuses(tmp_path / "r.csv")) == {"unchanged"}


def test_a_campaign_listed_with_every_setting_null_is_left_out_as_unreadable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async def blank(request: web.Request) -> web.StreamResponse:
        nulls = dict.fromkeys(SETTINGS.columns)
        seeded = {**default_settings(6), "client_id": 7}
        return web.json_response([{"id": 5, "status": "ACTIVE", **nulls}, {"id": 6, **seeded}])

    with ServerThread(blank) as server:
        out = tmp_path / "x.csv"
        url = ("--base-url", f"{server.url}/api/v1")
        assert main(["export", *url, "--output", str(out)]) == 1
        assert pd.read_csv(out)["campaign_id"].tolist() == [6]
        printed = capsys.readouterr()
        assert "campaign 5 is not exported: none of its settings could be read" in printed.err
        assert (  # how many were written, and why the others were not, in one line
            f"exported 1 campaign (settings) to {out}; 1 left out (named in the log): "
            "1 unreadable\n"
        ) in printed.out
        assert main(["export", *url, "-q", "--output", str(out), "--force"]) == 1
    printed = capsys.readouterr()
    assert printed.err == ""
    # -q hides the log: the line names the campaign itself, and points at no log
    assert printed.out.startswith(
        f"exported 1 campaign (settings) to {out}; 1 left out: 1 unreadable (campaign 5)\n"
    )
    assert "log" not in printed.out


def test_a_campaign_with_no_email_account_is_left_out_as_such_and_is_no_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with SimulatorThread(SimulatorConfig(api_key=KEY, campaigns={11, 12})) as sim:
        sim.state.email_accounts[11] = []
        out = tmp_path / "accounts.csv"
        args = ["--base-url", sim.base_url, "--operation", "email-accounts"]
        assert main(["export", *args, "--output", str(out)]) == 0
        assert pd.read_csv(out)["campaign_id"].tolist() == [12]
        err = capsys.readouterr().err
        assert "campaign 11 is not exported: it has no email-accounts" in err

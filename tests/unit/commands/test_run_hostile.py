"""A run on the command line, in this process, against small odd or hostile servers on
127.0.0.1: what a user sees, and that the key reaches no output and no file."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import quote

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from aiohttp import web

from bulkrunner.config.job_file import build_config, read_job_file
from bulkrunner.config.redaction import REDACTED
from bulkrunner.errors import UsageError
from bulkrunner.records.backup import read_unrestorable
from tests.fakes import one_line_error, run
from tests.hostile import RunCli, ServerThread, every_file_text

KEY = "sk-hostile-SENTINEL+/=9f3a"  # characters a URL must encode, so both spellings are checked


def leaks(text: str) -> bool:
    return KEY in text or quote(KEY, safe="") in text or "SENTINEL" in text


def write_plan(folder: Path, ids: list[int | str]) -> Path:
    lines = ["campaign_id,sending_limit,unsubscribe_text"]
    lines += [f"{cid},10,bye" for cid in ids]
    path = folder / "plan.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def assert_no_leak(folder: Path, *outputs: str) -> None:
    texts = {**every_file_text(folder), **{f"output {n}": t for n, t in enumerate(outputs)}}
    assert len(texts) > len(outputs)  # some files were written
    for name, text in texts.items():
        assert not leaks(text), name


async def friendly(request: web.Request) -> web.Response:
    if request.method == "GET":
        return campaign_or_empty_list(request)
    return web.json_response({"success": True})


def campaign_or_empty_list(request: web.Request) -> web.Response:
    """An account whose list shows nothing, but whose campaigns read one by one (showing the
    settings a row of ``write_plan`` changes): enough for a run to back them up and send."""
    found = re.fullmatch(r"/api/v1/campaigns/(\d+)", request.path)
    shown = {"sending_limit": 1, "unsubscribe_text": ""}
    return web.json_response({"id": int(found[1]), **shown} if found else [])


def test_a_run_against_a_redirecting_server_sends_nothing_to_the_other_host(
    tmp_path: Path, cli_here: RunCli
) -> None:
    write_plan(tmp_path, [101, 102, 103])
    codes = {"/api/v1/campaigns/": 302, "/api/v1/campaigns/101/settings": 301}

    with ServerThread(friendly) as other:

        async def redirect(request: web.Request) -> web.Response:
            status = codes.get(request.path, 307)
            return web.Response(status=status, headers={"Location": other.url + request.path_qs})

        with ServerThread(redirect) as server:
            done = cli_here(
                tmp_path, KEY, "run", "--input", "plan.csv", "--report", "r.csv",
                "--base-url", server.url + "/api/v1", "--max-attempts", "1", "--no-backup",
            )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert other.requests == []
    # The list, and (--no-backup: sent although unread) one POST a row: no retries of a redirect
    assert len(server.requests) == 4
    report = pd.read_csv(tmp_path / "r.csv")
    assert report["status"].tolist() == ["failed"] * 3
    for cid, status, error in zip(
        *(report[c] for c in ("campaign_id", "http_status", "error")), strict=True
    ):
        where = f"{other.url}/api/v1/campaigns/{cid}/settings?api_key={REDACTED}"
        assert error == f"HTTP {status}: redirected to {where} (not followed)"
    assert report["http_status"].tolist() == [301, 307, 307]
    assert "HTTP 302: redirected to" in done.stderr  # the list call, in the warning
    assert_no_leak(tmp_path, done.stdout, done.stderr)


async def echoing(request: web.Request) -> web.Response:
    """A server that quotes the request line, key included, wherever it can."""
    line = f"{request.method} {request.path_qs}"
    if request.method == "GET":
        return web.json_response(
            [
                {"id": 101, "sending_limit": "abc", "unsubscribe_text": f"Cannot {line}"},
                {"id": "102", "sending_limit": 1, "unsubscribe_text": 7},
                {"id": 103, "sending_limit": "10", "unsubscribe_text": KEY},
                {"id": 104, "sending_limit": 3, "unsubscribe_text": ""},
                {"id": 105, "sending_limit": 4, "unsubscribe_text": ""},
            ]
        )
    campaign = int(request.path.split("/")[-2])
    if campaign == 101:
        return web.Response(status=404, text=f"Cannot {line}")
    if campaign == 102:
        return web.Response(status=500, text=f"<pre>crash in {line} key={KEY}</pre>")
    if campaign == 103:
        return web.json_response({"success": "false", "message": f"denied {line}"})
    if campaign == 104:
        return web.json_response({"status": "error", "error": f"{KEY} expired"})
    return web.Response(
        body=b'{"success": true}', headers={"Content-Type": "application/json; charset=bogus"}
    )


@pytest.mark.parametrize(
    "logging_options", [(), ("-v",), ("--log-format", "json", "-v")], ids=["text", "v", "json"]
)
def test_a_server_echoing_the_key_puts_it_in_no_output_and_no_file(
    tmp_path: Path, logging_options: tuple[str, ...], cli_here: RunCli
) -> None:
    write_plan(tmp_path, [101, 102, 103, 104, 105])
    with ServerThread(echoing) as server:
        done = cli_here(
            tmp_path, KEY, "run", "--input", "plan.csv", "--report", "r.csv",
            "--base-url", server.url + "/api/v1", "--max-attempts", "1", *logging_options,
        )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "internal error" not in done.stderr
    report = pd.read_csv(tmp_path / "r.csv", keep_default_na=False)
    assert report["status"].tolist() == ["failed"] * 4 + ["succeeded"]
    line = f"/api/v1/campaigns/101/settings?api_key={REDACTED}"
    assert report["error"].tolist()[:2] == [
        f"HTTP 404: Cannot POST {line}",
        "gave up after 1 attempt; last error: HTTP 500: <pre>crash in POST "
        f"{line.replace('101', '102')} key={REDACTED}</pre>",
    ]
    assert report["error"].tolist()[2:4] == [
        f"HTTP 200: denied POST {line.replace('101', '103')}",
        f"HTTP 200: {REDACTED} expired",
    ]
    backup = pq.read_table(tmp_path / "r.csv.backup.parquet").to_pylist()
    assert {row["campaign_id"]: row["sending_limit"] for row in backup} == {102: 1, 104: 3, 105: 4}
    assert {row["campaign_id"]: row["unsubscribe_text"] for row in backup}[102] == "7"
    # 101's "abc" is no number, and its text and 103's hold the key (shown REDACTED as read):
    # nothing of them a rollback could put back ("10" is the 10 103's row wants: no change)
    unrestorable = read_unrestorable(tmp_path / "r.csv.backup.parquet")
    assert [unrestorable[101].split("; ")[1], unrestorable[103]] == [
        "unsubscribe_text: the value before the run holds the API key (read as REDACTED), "
        "which no file holds, so the backup cannot hold it"
    ] * 2
    assert unrestorable[101].startswith("sending_limit: the value before the run is not of")
    if "json" in logging_options:
        events = [json.loads(text) for text in done.stderr.splitlines()]
        assert any(event["event"] == "row_finished" for event in events)
    assert_no_leak(tmp_path, done.stdout, done.stderr)


PROXY_USER, PROXY_PASSWORD = "proxyuser", "s3cret-PW+9"  # "+": a URL spells it %2B
BASIC = base64.b64encode(f"{PROXY_USER}:{PROXY_PASSWORD}".encode()).decode()


@pytest.mark.parametrize(
    "logging_options", [(), ("-v",), ("--log-format", "json", "-v")], ids=["text", "v", "json"]
)
def test_credentials_in_the_base_url_reach_the_server_and_no_output(
    tmp_path: Path, logging_options: tuple[str, ...], cli_here: RunCli
) -> None:
    """A proxy that takes basic auth from the base URL, and echoes it (a debugging page): the
    credentials are in no hint, report, journal, backup, log line or notification."""
    write_plan(tmp_path, [101, 102, 103])
    authorizations: set[str] = set()
    bodies: list[str] = []

    async def proxy(request: web.Request) -> web.Response:
        authorization = request.headers.get("Authorization", "")
        authorizations.add(authorization)
        if request.method == "GET":
            return campaign_or_empty_list(request)
        if request.path.endswith("/101/settings"):
            return web.Response(status=500, text=f"crash: Authorization: {authorization}")
        return web.json_response({}, status=429, headers={"Retry-After": "86400"})

    async def webhook(request: web.Request) -> web.Response:
        bodies.append(await request.text())
        return web.Response(text="ok")

    with ServerThread(proxy) as server, ServerThread(webhook) as hook:
        host = server.url.removeprefix("http://")
        secret = f"{PROXY_USER}:{quote(PROXY_PASSWORD, safe='')}"
        done = cli_here(
            tmp_path, KEY, "run", "--input", "plan.csv", "--report", "r.csv",
            "--base-url", f"http://{secret}@{host}/api/v1", "--max-attempts", "1",
            "--concurrency", "1", "--notify", f"{hook.url}/hook", *logging_options,
        )  # fmt: skip
    assert done.returncode == 3, done.stderr
    assert authorizations == {f"Basic {BASIC}"}  # every request carried them
    report = pd.read_csv(tmp_path / "r.csv", keep_default_na=False)
    assert report["status"].tolist() == ["failed", "failed", "not_attempted"]
    assert report["error"][0].endswith(f"HTTP 500: crash: Authorization: Basic {REDACTED}")
    shown = f"--base-url http://{REDACTED}@{host}/api/v1"
    assert f"{shown} --concurrency 1" in done.stdout  # the resume hint
    assert len(bodies) == 1
    texts = {
        **every_file_text(tmp_path),
        "stdout": done.stdout,
        "stderr": done.stderr,
        "notification": bodies[0],
    }
    for name, text in texts.items():
        for secret_form in (PROXY_USER, PROXY_PASSWORD, quote(PROXY_PASSWORD, safe=""), BASIC):
            assert secret_form not in text, (name, secret_form)
        assert not leaks(text), name


def http_date_a_day_away() -> str:
    return format_datetime(datetime.now(UTC) + timedelta(days=1), usegmt=True)


@pytest.mark.parametrize(
    ("headers", "status", "asked"),
    [
        ({"Retry-After": "86400"}, 429, r"86400s \(Retry-After\)"),
        # a day away, give or take the second the answer took
        ({"Retry-After": "HTTP-DATE"}, 503, r"86(39\d|40\d)s \(Retry-After\)"),
        (
            {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "EPOCH"},
            200,
            r"86(39\d|40\d)s \(X-RateLimit-Reset\)",
        ),
    ],
    ids=["retry-after-seconds", "retry-after-date", "ratelimit-reset-epoch"],
)
def test_a_server_asking_to_wait_a_day_stops_the_run_resumably(
    tmp_path: Path, headers: dict[str, str], status: int, asked: str, cli_here: RunCli
) -> None:
    write_plan(tmp_path, [101, 102, 103])
    answered: list[int] = []

    async def stalling(request: web.Request) -> web.Response:
        if request.method == "GET":
            return campaign_or_empty_list(request)
        sent = {
            name: value.replace("HTTP-DATE", http_date_a_day_away()).replace(
                "EPOCH", str(int(datetime.now(UTC).timestamp()) + 86_400)
            )
            for name, value in headers.items()
        }
        answered.append(status)
        return web.json_response({"success": status == 200}, status=status, headers=sent)

    with ServerThread(stalling) as server:
        base = server.url + "/api/v1"
        args = ("run", "--input", "plan.csv", "--report", "r.csv", "--base-url", base)
        done = cli_here(tmp_path, KEY, *args, "--concurrency", "1", timeout=60)
    assert done.returncode == 3, done.stderr
    assert re.search(f"the server asked to wait {asked}, more than --max-wait 300", done.stdout)
    assert "--resume" in done.stdout
    assert answered == [status]  # one answer, then no more requests
    statuses = pd.read_csv(tmp_path / "r.csv")["status"].tolist()
    assert statuses == [
        "succeeded" if status == 200 else "failed",
        "not_attempted",
        "not_attempted",
    ]
    with ServerThread(friendly) as server:
        resume = ("run", "--input", "plan.csv", "--report", "r.csv", "--resume")
        again = cli_here(tmp_path, KEY, *resume, "--base-url", server.url + "/api/v1")
        posts = [path for method, path in server.requests if method == "POST"]
    assert again.returncode == 0, again.stderr
    assert len(posts) == (2 if status == 200 else 3)  # what succeeded is not sent again


def test_max_wait_from_a_job_file_and_a_flag(tmp_path: Path) -> None:
    job = tmp_path / "job.toml"
    job.write_text('input = "plan.csv"\nmax_wait = 45\n')
    options = read_job_file(job)
    assert build_config(options, {}).max_wait == 45.0
    assert build_config(options, {"max_wait": 900.0}).max_wait == 900.0
    assert build_config({"input": "p.csv"}, {}).max_wait == 300.0
    with pytest.raises(UsageError, match="max wait must be a positive number of seconds"):
        build_config(options, {"max_wait": 0.0})


def test_a_damaged_journal_stops_resume_before_anything_is_sent(
    tmp_path: Path, cli_here: RunCli
) -> None:
    write_plan(tmp_path, [101, 102])
    journal = tmp_path / "r.csv.journal"
    journal.write_text(
        '{"journal": 1, "input": "plan.csv", "started_at": "2026-11-26T09:00:00+00:00"}\n'
        '{"key": "abc", "row": 1, "status": "succeeded", "attempts": "two"}\n'
        '{"key": "def", "row": 2, "status": "failed", "attempts": 1}\n'
    )
    with ServerThread(friendly) as server:
        args = ("run", "--input", "plan.csv", "--report", "r.csv", "--resume")
        done = cli_here(tmp_path, KEY, *args, "--base-url", server.url + "/api/v1")
    assert done.returncode == 2
    assert server.requests == []
    assert done.stderr.startswith(f"bulkrunner: error: {journal.name}: line 2 has a bad value")
    assert len(done.stderr.strip().splitlines()) == 1


def test_an_oversize_id_is_an_invalid_row_and_the_others_are_sent(
    tmp_path: Path, cli_here: RunCli
) -> None:
    write_plan(tmp_path, [101, 10**22, 102])
    with ServerThread(friendly) as server:
        args = ("run", "--input", "plan.csv", "--report", "r.csv")
        done = cli_here(tmp_path, KEY, *args, "--base-url", server.url + "/api/v1")
        posts = sorted(path for method, path in server.requests if method == "POST")
    assert done.returncode == 1, done.stderr
    assert [path.split("?")[0] for path in posts] == [
        "/api/v1/campaigns/101/settings",
        "/api/v1/campaigns/102/settings",
    ]
    report = pd.read_csv(tmp_path / "r.csv", dtype=str)
    assert report["status"].tolist() == ["succeeded", "invalid", "succeeded"]
    assert report["error"][1] == f"campaign_id: {10**22} is above {2**63 - 1}"


def test_a_parquet_struct_column_is_a_one_line_error_and_nothing_is_sent(
    tmp_path: Path, cli_here: RunCli
) -> None:
    cells = pa.array([{"value": 5}, {"value": 6}])
    pq.write_table(
        pa.table({"campaign_id": [1, 2], "sending_limit": cells}), tmp_path / "p.parquet"
    )
    with ServerThread(friendly) as server:
        args = ("run", "--input", "p.parquet", "--report", "r.csv")
        done = cli_here(tmp_path, KEY, *args, "--base-url", server.url + "/api/v1")
    assert done.returncode == 2
    assert server.requests == []
    assert done.stderr == (
        "bulkrunner: error: p.parquet: column 'sending_limit' holds struct values (Parquet "
        "type struct<value: int64>); settings are numbers, text, true/false or lists of text\n"
    )


def test_a_list_of_campaigns_longer_than_the_cap_is_read_once_never_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The cap made small (it is 64 MB): a run reads each campaign on its own instead, an
    export stops (exit 3) saying why; neither asks for the list again."""
    from bulkrunner.sending import transport

    monkeypatch.setattr(transport, "MAX_BODY", 4000, raising=False)
    monkeypatch.setenv("SMARTLEAD_API_KEY", KEY)
    monkeypatch.chdir(tmp_path)
    write_plan(tmp_path, [101, 102])

    async def long_list(request: web.Request) -> web.Response:
        if request.method == "GET" and request.path == "/api/v1/campaigns/":
            return web.json_response([{"id": n, "name": f"campaign {n}"} for n in range(300)])
        return await friendly(request)

    unread = (
        "HTTP 200: the answer is larger than 4,000 bytes, the most bulkrunner reads: left unread"
    )
    with ServerThread(long_list) as server:
        url = ("--base-url", server.url + "/api/v1")
        code, out, err = run(capsys, "run", "plan.csv", "--report", "r.csv", *url)
        assert code == 0, out + err
        assert f"cannot read the list of campaigns ({unread}): reading each campaign" in err
        lists = [path for _, path in server.requests if path.startswith("/api/v1/campaigns/?")]
        assert len(lists) == 1
        code, out, err = run(capsys, "export", "--output", "e.csv", *url)
        lists = [path for _, path in server.requests if path.startswith("/api/v1/campaigns/?")]
    assert pd.read_csv("r.csv")["status"].tolist() == ["succeeded", "succeeded"]
    assert code == 3
    assert one_line_error(err) == (
        f"bulkrunner: error: export aborted: cannot read the list of campaigns ({unread}); "
        "nothing was exported"
    )
    assert len(lists) == 2
    assert not Path("e.csv").exists()
    assert not leaks(out + err)


def test_a_day_long_wait_asked_by_the_list_call_stops_the_run_before_sending(
    tmp_path: Path, cli_here: RunCli
) -> None:
    write_plan(tmp_path, [101, 102])

    async def stalling(request: web.Request) -> web.Response:
        if request.method == "GET":
            return web.json_response(
                {"error": "slow down"}, status=429, headers={"Retry-After": "86400"}
            )
        return web.json_response({"success": True})

    with ServerThread(stalling) as server:
        base = server.url + "/api/v1"
        args = ("run", "--input", "plan.csv", "--report", "r.csv", "--base-url", base)
        done = cli_here(tmp_path, KEY, *args, timeout=60)
        posts = [path for method, path in server.requests if method == "POST"]
    assert done.returncode == 3, done.stderr
    assert "asked to wait 86400s (Retry-After), more than --max-wait 300" in done.stdout
    assert posts == []
    statuses = pd.read_csv(tmp_path / "r.csv")["status"].tolist()
    assert statuses == ["not_attempted", "not_attempted"]


@pytest.mark.parametrize(
    ("shown", "sent"),
    [("other", False), ("same as text", True), ("none", True)],
)
def test_a_campaign_read_one_by_one_must_be_the_campaign_asked_for(
    shown: str, sent: bool, tmp_path: Path, cli_here: RunCli
) -> None:
    """A ``GET /campaigns/{id}`` answering another campaign's settings is no backup of this
    one: the row is failed before sending (the list shows no campaign, so each is read)."""
    write_plan(tmp_path, [101, 102])

    async def confused(request: web.Request) -> web.Response:
        if request.method == "POST":
            return web.json_response({"success": True})
        if request.path.endswith("/campaigns") or request.path.endswith("/campaigns/"):
            return web.json_response([])
        asked = int(request.path.rstrip("/").rsplit("/", 1)[1])
        campaign: dict[str, object] = {"name": "x", "max_leads_per_day": 5, "unsubscribe_text": ""}
        if shown == "other":
            campaign["id"] = asked + 1000
        elif shown == "same as text":
            campaign["id"] = f" {asked} "
        return web.json_response(campaign)

    with ServerThread(confused) as server:
        base = server.url + "/api/v1"
        args = ("run", "--input", "plan.csv", "--report", "r.csv", "--base-url", base)
        done = cli_here(tmp_path, KEY, *args, timeout=60)
        posts = [path for method, path in server.requests if method == "POST"]
    report = pd.read_csv(tmp_path / "r.csv", dtype=str, keep_default_na=False)
    if sent:
        assert done.returncode == 0, done.stdout + done.stderr
        assert len(posts) == 2
        assert report["status"].tolist() == ["succeeded", "succeeded"]
    else:
        assert done.returncode == 1, done.stdout + done.stderr
        assert posts == []
        assert report["status"].tolist() == ["failed", "failed"]
        assert report["error"].tolist() == [
            f"campaign {n}: its current settings could not be read (the answer is campaign "
            f"'{n + 1000}', not {n}); not sent, as it could not be backed up (--no-backup sends "
            "it anyway)"
            for n in (101, 102)
        ]


def test_a_campaign_the_list_shows_twice_differently_is_read_on_its_own(
    tmp_path: Path, cli_here: RunCli
) -> None:
    write_plan(tmp_path, [101])

    async def twice(request: web.Request) -> web.Response:
        if request.path == "/api/v1/campaigns/":
            shown = [
                {"id": 101, "sending_limit": 3, "unsubscribe_text": "old"},
                {"id": "101", "sending_limit": 10, "unsubscribe_text": "bye"},  # as the row
            ]
            return web.json_response(shown)
        if request.method == "GET":
            return web.json_response({"id": 101, "sending_limit": 3, "unsubscribe_text": "old"})
        return web.json_response({"success": True})

    with ServerThread(twice) as server:
        done = cli_here(
            tmp_path, KEY, "run", "plan.csv", "--report", "r.csv",
            "--base-url", server.url + "/api/v1",
        )  # fmt: skip
        requests = list(server.requests)
    assert done.returncode == 0, done.stderr
    report = pd.read_csv(tmp_path / "r.csv", keep_default_na=False)
    assert report["status"].tolist() == ["succeeded"]  # was: unchanged, never sent
    assert [method for method, _ in requests] == ["GET", "GET", "POST"]
    assert requests[1][1].startswith("/api/v1/campaigns/101?")


def test_an_export_names_a_campaign_the_list_shows_twice_differently_as_not_exported(
    tmp_path: Path, cli_here: RunCli
) -> None:
    async def twice(request: web.Request) -> web.Response:
        shown = [
            {"id": 101, "status": "ACTIVE", "sending_limit": 3, "name": "A"},
            {"id": 102, "status": "ACTIVE", "sending_limit": 4},
            {"id": "101", "status": "ACTIVE", "sending_limit": 3, "name": "A, renamed"},
            {"id": "102", "status": "PAUSED", "sending_limit": 4},
        ]
        return web.json_response(shown)

    with ServerThread(twice) as server:
        done = cli_here(
            tmp_path, KEY, "export", "--output", "e.csv", "--status", "active",
            "--base-url", server.url + "/api/v1",
        )  # fmt: skip
    assert done.returncode == 1, done.stderr  # not a word of it, exit 0, before
    export = pd.read_csv(tmp_path / "e.csv", keep_default_na=False)
    assert export["campaign_id"].tolist() == [101]  # another name is no other campaign
    said = "campaign 102 is not exported: the list shows it by its id alone, or twice, differently"
    assert said in done.stderr


@pytest.mark.parametrize("action", ["remove", "unsubscribe"])
def test_a_lookup_answering_another_lead_is_never_acted_on(
    tmp_path: Path, cli_here: RunCli, action: str
) -> None:
    """A lookup by address answered with another lead (a fuzzy match): the row removed or
    unsubscribed that lead, for good, and was succeeded."""
    (tmp_path / "leads.csv").write_text(f"campaign_id,email,action\n101,zz@x.com,{action}\n")

    async def fuzzy(request: web.Request) -> web.Response:
        if request.path == "/api/v1/leads/":
            held = [{"campaign_id": 101, "status": "ACTIVE"}]
            return web.json_response({"id": 5002, "email": "a3@x.com", "lead_campaign_data": held})
        return web.json_response({"ok": True})

    with ServerThread(fuzzy) as server:
        done = cli_here(
            tmp_path, KEY, "run", "leads.csv", "--operation", "lead-status", "--report", "r.csv",
            "--allow-irreversible", "--base-url", server.url + "/api/v1",
        )  # fmt: skip
        methods = [method for method, _ in server.requests]
    assert done.returncode == 1, done.stderr
    assert methods == ["GET"]  # nothing sent to lead 5002
    report = pd.read_csv(tmp_path / "r.csv", keep_default_na=False)
    assert report["status"].tolist() == ["failed"]
    assert "the lookup answered another lead (a3@x.com)" in report["error"][0]


def test_verify_reading_another_campaign_verifies_nothing(tmp_path: Path, cli_here: RunCli) -> None:
    write_plan(tmp_path, [101])

    async def confused(request: web.Request) -> web.Response:
        if request.method == "POST":
            return web.json_response({"success": True})
        if request.path.rstrip("/").endswith("/campaigns"):
            return web.json_response([{"id": 101, "sending_limit": 1, "unsubscribe_text": ""}])
        return web.json_response({"id": 202, "max_leads_per_day": 10, "unsubscribe_text": "bye"})

    with ServerThread(confused) as server:
        base = server.url + "/api/v1"
        args = ("run", "--input", "plan.csv", "--report", "r.csv", "--base-url", base, "--verify")
        done = cli_here(tmp_path, KEY, *args, timeout=60)
    report = pd.read_csv(tmp_path / "r.csv", dtype=str, keep_default_na=False)
    # applied, but not known to hold: not succeeded, a failure
    assert done.returncode == 1, done.stdout + done.stderr
    assert report["status"].tolist() == ["unverified"]
    assert report["error"].tolist() == ["not verified: the answer is campaign '202', not 101"]


UNREADABLE = {
    "data-null": '{"data": null}',
    "empty": "{}",
    "id-only": '{"id": ID}',
    "all-null": '{"id": ID, "name": null, "sending_limit": null, "unsubscribe_text": null}',
}


@pytest.mark.parametrize(
    ("shape", "listed"),
    [
        *((shape, False) for shape in UNREADABLE),
        # the list shows the campaigns with their ids only: each is read on its own
        ("id-only", True),
        ("all-null", True),
    ],
)
def test_a_campaign_read_as_nothing_is_failed_unsent_unless_no_backup(
    tmp_path: Path, shape: str, listed: bool, cli_here: RunCli
) -> None:
    """Not "nothing to back up": an answer without the values a row changes could not be
    read, so the row is not sent (with --no-backup it is)."""
    write_plan(tmp_path, [101, 102])

    async def blank(request: web.Request) -> web.Response:
        if request.method == "POST":
            return web.json_response({"success": True})
        found = re.fullmatch(r"/api/v1/campaigns/(\d+)", request.path)
        if found is None:  # the list: the campaigns as nothing too, or none of them
            items = [json.loads(UNREADABLE[shape].replace("ID", str(n))) for n in (101, 102)]
            return web.json_response(items if listed else [])
        body = UNREADABLE[shape].replace("ID", found[1])
        return web.Response(text=body, content_type="application/json")

    with ServerThread(blank) as server:
        base = ("--base-url", server.url + "/api/v1")
        done = cli_here(tmp_path, KEY, "run", "plan.csv", "--report", "r.csv", *base)
        posts = [path for method, path in server.requests if method == "POST"]
        assert done.returncode == 1, done.stderr
        assert posts == []
        report = pd.read_csv(tmp_path / "r.csv", keep_default_na=False)
        assert report["status"].tolist() == ["failed", "failed"]
        assert report["error"][0] == (
            "campaign 101: its current settings could not be read (the answer shows no value of "
            "any field a settings row sets); not sent, as it could not be backed up (--no-backup "
            "sends it anyway)"
        )
        assert not (tmp_path / "r.csv.backup.parquet").exists()  # so no rollback "restores" it
        done = cli_here(
            tmp_path, KEY, "run", "plan.csv", "--report", "sent.csv", "--no-backup", *base
        )
        assert done.returncode == 0, done.stderr
        assert len([path for method, path in server.requests if method == "POST"]) == 2


def test_verify_reading_back_nothing_says_not_verified_not_mismatch(
    tmp_path: Path, cli_here: RunCli
) -> None:
    write_plan(tmp_path, [101])

    async def forgetful(request: web.Request) -> web.Response:
        if request.method == "POST":
            return web.json_response({"success": True})
        if request.path.rstrip("/").endswith("/campaigns"):
            return web.json_response([{"id": 101, "sending_limit": 1, "unsubscribe_text": ""}])
        return web.json_response({"data": None})  # the read back

    with ServerThread(forgetful) as server:
        base = server.url + "/api/v1"
        args = ("run", "plan.csv", "--report", "r.csv", "--base-url", base, "--verify")
        done = cli_here(tmp_path, KEY, *args)
    report = pd.read_csv(tmp_path / "r.csv", dtype=str, keep_default_na=False)
    assert done.returncode == 1, done.stdout + done.stderr  # not known to hold: a failure
    assert report["status"].tolist() == ["unverified"]
    assert report["error"].tolist() == [
        "not verified: the answer shows no value of any field a settings row sets"
    ]

"""The key hidden in every spelling it can take, and nothing else hidden.

A key with characters a URL encodes (a space, ``+``, ``)``, ``'``, ``"``) reaches a server as
yarl spells it, comes back as the server chooses (decoded, re-encoded in lower case, inside
JSON or HTML), and is written by bulkrunner into JSON itself: every such spelling must go. A
user's own text that happens to hold ``api_key=...`` (a link in an ``unsubscribe_text``) is
data: it is backed up, compared, exported and restored as it is.

Pure rules are tables; what a user sees is checked through the real CLI against the simulator
and against a hostile server of the test's own, on 127.0.0.1.
"""

from __future__ import annotations

import html
import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import aiohttp
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yarl
from aiohttp import web

from bulkrunner.config.redaction import REDACTED, redact, redact_url, remember
from bulkrunner.model import Change, Outcome, Status
from bulkrunner.records.backup import read_backup, record_backup
from bulkrunner.records.journal import Journal
from bulkrunner.sending.transport import HttpSender
from bulkrunner.simulator import SimulatorConfig, SimulatorThread, default_settings
from tests.hostile import RunCli, ServerThread, every_file_text

KEY = "sk-SENTINEL key+(7)'q\"z"  # a space, +, ), ' and ": each spelled several ways
LINK = "https://prefs.example.com/u?api_key=abc123&list=7"  # a user's value, not the key


def lower_hex(text: str) -> str:
    """``text`` with its percent-encoded bytes in lower case (``%2b``)."""
    return re.sub("%[0-9A-F]{2}", lambda found: found[0].lower(), text)


def spellings(key: str) -> dict[str, str]:
    """The ways ``key`` can be written on the wire or in a file."""
    quoted = quote(key, safe="")
    return {
        "as it is": key,
        "quote": quoted,
        "quote, lower-case hex": lower_hex(quoted),
        "quote_plus": quote_plus(key, safe=""),
        "quote, default safe": quote(key),
        "yarl": str(yarl.URL("http://h/").with_query({"api_key": key})).split("api_key=", 1)[1],
        "every byte encoded": "".join(f"%{byte:02x}" for byte in key.encode()),
        "encoded twice": quote(quoted, safe=""),
        "JSON": json.dumps(key)[1:-1],
        "JSON inside JSON": json.dumps(json.dumps(key)[1:-1])[1:-1],
        "JSON, every character escaped": "".join(f"\\u{ord(char):04X}" for char in key),
        "repr": repr(key)[1:-1],
        "HTML": html.escape(key),
        "HTML, decimal references": "".join(f"&#{ord(char)};" for char in key),
    }


def leaked(text: str) -> list[str]:
    """The spellings of KEY found in ``text``."""
    found = [name for name, form in spellings(KEY).items() if form in text]
    return found + (["SENTINEL"] if "SENTINEL" in text else [])


# --- the rule ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "form"), list(spellings(KEY).items()))
def test_the_key_is_redacted_in_every_spelling(name: str, form: str) -> None:
    assert redact(f"GET /x?api_key={form} denied ({form})", [KEY]) == (
        f"GET /x?api_key={REDACTED} denied ({REDACTED})"
    )


def test_a_remembered_key_is_redacted_in_every_spelling_without_being_given() -> None:
    remember(KEY)
    text = " | ".join(spellings(KEY).values())
    assert leaked(redact(text)) == []


@pytest.mark.parametrize(
    "value",
    [
        LINK,
        "https://prefs.example.com/u?API_KEY=abc123",
        "manage at https://x.example/p?api_key%3Dabc",
        'Reply "STOP" (or click) + go',
        "sk-SENTINEL key",  # a part of the key is not the key
    ],
)
def test_a_value_that_is_not_the_key_is_left_as_it_is(value: str) -> None:
    remember(KEY)
    assert redact(value) == value
    written = json.dumps({"unsubscribe_text": value})
    assert redact(written) == written


def test_redact_url_also_hides_any_api_key_parameter_of_a_url() -> None:
    assert redact_url(f"refused by http://h/x?api_key={quote(KEY)}&a=1", [KEY]) == (
        f"refused by http://h/x?api_key={REDACTED}&a=1"
    )
    assert redact_url("http://h/x?api_key=other-key&a=1") == f"http://h/x?api_key={REDACTED}&a=1"


def test_a_longer_key_holding_another_is_redacted_whole() -> None:
    assert redact("abc123-long and abc123", ["abc123", "abc123-long"]) == (
        f"{REDACTED} and {REDACTED}"
    )


def test_a_hostile_answer_of_backslashes_is_scanned_in_linear_time() -> None:
    """Escapes before a character are bounded: a run of them is not rescanned from each of its
    positions (30,000 backslashes took ~20 s of CPU so; now milliseconds)."""
    started = time.process_time()
    assert redact("\\" * 30_000 + json.dumps(KEY), [KEY]).endswith(f'"{REDACTED}"')
    assert time.process_time() - started < 3


def test_the_backup_holds_a_users_value_as_it_is(tmp_path: Path) -> None:
    remember(KEY)
    path = tmp_path / "r.csv.backup.parquet"
    record_backup(path, {5: {"unsubscribe_text": Change(LINK, "bye")}}, keep=False)
    assert read_backup(path) == {5: {"unsubscribe_text": LINK}}


def test_the_journal_never_holds_the_key_json_escaped(tmp_path: Path) -> None:
    remember(KEY)
    path = tmp_path / "r.csv.journal"
    with Journal.open(path, input_path=tmp_path / "in.csv", started=datetime.now(UTC)) as journal:
        journal.record("k", 1, 5, Outcome(Status.FAILED, error=f"HTTP 400: bad key {KEY}; {LINK}"))
    text = path.read_text()
    assert leaked(text) == []
    assert f"bad key {REDACTED}; {LINK}" in text  # the user's link, as it is


# --- the sender, against a loopback server --------------------------------------------------------


async def test_the_answer_keeps_the_users_values_and_loses_every_spelling_of_the_key() -> None:
    async def answer(request: web.Request) -> web.Response:
        heard = request.query["api_key"]  # decoded by the server
        return web.json_response(
            {
                "id": 5,
                "unsubscribe_text": LINK,
                "echo": [request.rel_url.raw_query_string, heard, lower_hex(quote(heard))],
            }
        )

    with ServerThread(answer) as server:
        async with aiohttp.ClientSession() as session:
            got = await HttpSender(session, server.url, KEY, timeout=5).get_campaign(5)
    body = json.loads(got.body)
    assert body["unsubscribe_text"] == LINK
    assert body["echo"][:3] == [f"api_key={REDACTED}", REDACTED, REDACTED]
    assert leaked(got.body) == []


# --- through the CLI --------------------------------------------------------------------------


def test_a_link_holding_api_key_goes_through_run_verify_rollback_and_export_as_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bulkrunner.cli.app import main

    monkeypatch.setenv("SMARTLEAD_API_KEY", KEY)
    monkeypatch.delenv("SMARTLEAD_BASE_URL", raising=False)
    source = tmp_path / "plan.csv"
    pd.DataFrame({"campaign_id": [11, 12], "unsubscribe_text": ["bye", LINK]}).to_csv(
        source, index=False
    )
    with SimulatorThread(SimulatorConfig(api_key=KEY, campaigns={11, 12})) as sim:
        sim.state.settings[11] = {**default_settings(11), "unsubscribe_text": LINK}
        base = ("--base-url", sim.base_url)
        report = tmp_path / "apply.csv"
        code = main(["run", str(source), "--report", str(report), "--verify", *base])
        assert code == 0, capsys.readouterr().err
        results = pd.read_csv(report, keep_default_na=False)
        assert results["status"].tolist() == ["succeeded", "succeeded"]  # no mismatch
        assert json.loads(results["before"][0]) == {"unsubscribe_text": LINK}
        assert json.loads(results["after"][1]) == {"unsubscribe_text": LINK}
        assert sim.state.settings[12]["unsubscribe_text"] == LINK
        assert read_backup(Path(f"{report}.backup.parquet"))[11] == {"unsubscribe_text": LINK}
        # the export writes the link as the account holds it, and a run of it changes nothing
        exported = tmp_path / "export.csv"
        assert main(["export", "--output", str(exported), *base]) == 0
        cells = pd.read_csv(exported, keep_default_na=False).set_index("campaign_id")
        assert cells.loc[12, "unsubscribe_text"] == LINK
        again = tmp_path / "again.csv"
        assert main(["run", str(exported), "--report", str(again), *base]) == 0
        assert set(pd.read_csv(again)["status"]) == {"unchanged"}
        code = main(["rollback", str(report), "--report", str(tmp_path / "undo.csv"), *base])
        assert code == 0, capsys.readouterr().err
        assert sim.state.settings[11]["unsubscribe_text"] == LINK  # put back as it was
    out, err = capsys.readouterr()
    assert leaked(out + err) == []


def echoes(request: web.Request) -> str:
    """The key as a hostile server may quote it: as it came, decoded, re-encoded, escaped."""
    heard = request.query.get("api_key", "")
    return " | ".join(
        [
            f"Cannot {request.method} {request.path_qs}",
            heard,
            lower_hex(quote(heard)),
            quote_plus(heard),
            json.dumps(heard),
            html.escape(heard),
            "".join(f"%{byte:02X}" for byte in heard.encode()),
        ]
    )


@pytest.fixture
def webhook() -> Iterator[tuple[ServerThread, list[bytes]]]:
    bodies: list[bytes] = []

    async def hook(request: web.Request) -> web.Response:
        bodies.append(await request.read())
        return web.Response(text="ok")

    with ServerThread(hook) as server:
        yield server, bodies


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_server_echoing_the_key_in_every_spelling_puts_it_in_no_output(
    tmp_path: Path, log_format: str, webhook: tuple[ServerThread, list[bytes]], cli_here: RunCli
) -> None:
    hook, bodies = webhook

    async def hostile(request: web.Request) -> web.Response:
        if request.method == "GET":
            listed = [
                {"id": cid, "sending_limit": 5, "unsubscribe_text": LINK} for cid in (101, 102)
            ]
            return web.json_response(listed)
        if request.path.endswith("/101/settings"):
            return web.json_response({"error": echoes(request)}, status=400)
        return web.Response(status=500, text=echoes(request))

    source = tmp_path / "plan.csv"
    source.write_text("campaign_id,sending_limit,unsubscribe_text\n101,10,bye\n102,11,bye\n")
    with ServerThread(hostile) as server:
        done = cli_here(
            tmp_path, KEY, "run", "plan.csv", "--report", "r.json", "-v",
            "--base-url", server.url + "/api/v1", "--max-attempts", "2",
            "--log-format", log_format, "--notify", hook.url,
        )  # fmt: skip
    assert done.returncode == 1, done.stderr
    records = json.loads((tmp_path / "r.json").read_text())
    assert [r["status"] for r in records] == ["failed", "failed"]
    echoed = f"Cannot POST /api/v1/campaigns/101/settings?api_key={REDACTED} | {REDACTED} | "
    assert records[0]["error"].startswith(f"HTTP 400: {echoed}")
    assert json.loads(records[0]["before"]) == {"sending_limit": 5, "unsubscribe_text": LINK}
    backup = pq.read_table(tmp_path / "r.json.backup.parquet").to_pylist()
    assert {row["unsubscribe_text"] for row in backup} == {LINK}
    assert len(bodies) == 1
    outputs: dict[str, Any] = {
        **every_file_text(tmp_path),
        "stdout": done.stdout,
        "stderr": done.stderr,
        "webhook": bodies[0].decode(),
    }
    for name, text in outputs.items():
        assert leaked(text) == [], name


def test_a_rejected_key_echoed_by_the_list_call_reaches_no_output_nor_the_webhook(
    tmp_path: Path, webhook: tuple[ServerThread, list[bytes]], cli_here: RunCli
) -> None:
    hook, bodies = webhook

    async def rejecting(request: web.Request) -> web.Response:
        return web.json_response({"message": f"Invalid API Key: {echoes(request)}"}, status=401)

    (tmp_path / "plan.csv").write_text("campaign_id,sending_limit\n101,10\n")
    with ServerThread(rejecting) as server:
        done = cli_here(
            tmp_path, KEY, "run", "plan.csv", "--report", "r.csv",
            "--base-url", server.url + "/api/v1", "--notify", hook.url,
        )  # fmt: skip
    assert done.returncode == 3, done.stderr
    assert "run aborted: HTTP 401: Invalid API Key: Cannot GET" in done.stdout
    (body,) = bodies
    assert "Invalid API Key" in json.loads(body)["aborted"]
    for name, text in {
        **every_file_text(tmp_path),
        "stdout": done.stdout,
        "stderr": done.stderr,
        "webhook": body.decode(),
    }.items():
        assert leaked(text) == [], name

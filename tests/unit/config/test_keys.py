"""The key as it is read from the environment, and the parts of it a server or a user may show.

A key is read once, by ``environment.read_key``: the whitespace around it dropped (a line ending
copied from a file saved on Windows), refused in one line that never shows it when it holds a
control character or bytes that are not text. A request line a server quotes cut short shows no
part of it, however ``api_key=`` is spelled; a usage error shows no key typed as a flag; and a
campaign's value holding the key is neither written to a file nor put back as ``REDACTED``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from aiohttp import web

from bulkrunner.config.environment import read_key
from bulkrunner.config.redaction import REDACTED, redact, redact_url
from bulkrunner.errors import UsageError
from bulkrunner.records.backup import read_backup, read_unrestorable
from bulkrunner.simulator import SimulatorConfig, SimulatorThread, default_settings
from tests.hostile import RunCli, ServerThread, every_file_text

KEY = "sk-SENTINEL-3f9a2c71-5b8e"
PART = "SENTINEL-3f9a2c71-5b"  # the key cut short, as a server quoting a long line cuts it


# --- a request line quoted cut short -----------------------------------------------------------


@pytest.mark.parametrize(
    "parameter",
    [
        "api_key=",
        "API_KEY=",
        "api_key%3D",
        "api_key%253D",  # encoded twice: a login page's ?next=
        "api%5Fkey%3D",
        "api_key&#61;",
        "api_key&#x3D;",
        "api_key&equals;",
        "api_key\\u003d",  # JSON
        "api_key\\\\u003d",  # JSON inside JSON
    ],
)
def test_what_follows_api_key_in_any_spelling_is_hidden(parameter: str) -> None:
    line = f"Sign in: /login?next=/api/v1/campaigns?{parameter}{PART}"
    assert redact_url(line) == f"Sign in: /login?next=/api/v1/campaigns?{parameter}{REDACTED}"


@pytest.mark.parametrize(
    ("quoted", "kept"),
    [
        (f"?api_key={PART}&list=7", "&list=7"),
        (f"%3Fapi_key%3D{PART}%26list%3D7", "%26list%3D7"),
        (f"%3Fapi_key%253D{PART}%2526list%253D7", "%2526list%253D7"),
        (f"?api_key&#61;{PART}&amp;list=7", "&amp;list=7"),
        (f"?api_key={PART}#top", "#top"),
    ],
)
def test_the_parameters_after_the_key_are_kept(quoted: str, kept: str) -> None:
    assert (
        redact_url(f"GET /x{quoted} refused")
        == f"GET /x{quoted.split(PART)[0]}REDACTED{kept} refused"
    )


# --- spellings of a key's own characters ---------------------------------------------------------


@pytest.mark.parametrize("key", ["sk-key\r", "sk-\tkey", "sk-\x08key\x0c", "sk-key\n"])
def test_a_control_character_escaped_as_json_writes_it_is_redacted(key: str) -> None:
    assert redact(json.dumps({"message": f"Invalid API Key {key}"}), [key]) == (
        json.dumps({"message": f"Invalid API Key {REDACTED}"})
    )


@pytest.mark.parametrize("charset", ["latin-1", "cp1252"])
def test_a_key_misread_in_the_charset_a_server_declared_is_redacted(charset: str) -> None:
    key = "sk-Schlüssel-€-7f3a"
    misread = key.encode().decode(charset, "replace")
    assert redact(f"bad key {misread} in", [key]) == f"bad key {REDACTED} in"


# --- the key as it is read ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "read"),
    [(f"{KEY}\r\n", KEY), (f"  {KEY}\n", KEY), ("", ""), ("  ", ""), ("sk a b", "sk a b")],
)
def test_the_key_is_read_without_the_whitespace_around_it(given: str, read: str) -> None:
    assert read_key({"SMARTLEAD_API_KEY": given}) == read


@pytest.mark.parametrize(
    ("given", "said"),
    [
        (
            f"{KEY[:6]}\t{KEY[6:]}",
            "holds a control character (a tab, a line ending) within the key",
        ),
        (f"{KEY}\r{KEY}", "holds a control character"),
        (f"{KEY[:6]}\udcff{KEY[6:]}", "holds bytes that are not UTF-8 text"),
    ],
)
def test_a_key_holding_a_control_character_or_no_text_is_refused_unshown(
    given: str, said: str
) -> None:
    with pytest.raises(UsageError) as refused:
        read_key({"ACME_KEY": given}, "ACME_KEY")
    assert str(refused.value).startswith(f"ACME_KEY {said}")
    assert "SENTINEL" not in str(refused.value)


def test_a_key_copied_with_its_line_ending_is_sent_without_it_and_never_shown(
    tmp_path: Path, cli_here: RunCli
) -> None:
    heard: list[str] = []

    async def trimming(request: web.Request) -> web.Response:  # echoes the key it was sent
        heard.append(request.query["api_key"])
        if request.method == "GET":
            return web.json_response([{"id": 101, "sending_limit": 5}])
        return web.json_response({"message": f"Invalid API Key [{heard[-1]}]"}, status=400)

    (tmp_path / "plan.csv").write_text("campaign_id,sending_limit\n101,10\n")
    with ServerThread(trimming) as server:
        done = cli_here(
            tmp_path, f"{KEY}\r\n", "run", "plan.csv", "--report", "r.csv",
            "--base-url", server.url + "/api/v1", "--max-attempts", "1",
        )  # fmt: skip
    assert set(heard) == {KEY}
    assert done.returncode == 1, done.stderr
    (row,) = pd.read_csv(tmp_path / "r.csv").to_dict("records")
    assert row["error"] == f"HTTP 400: Invalid API Key [{REDACTED}]"
    assert [
        text
        for text in [done.stdout, done.stderr, *every_file_text(tmp_path).values()]
        if "SENTINEL" in text
    ] == []


def test_a_key_of_bytes_that_are_not_text_is_one_line_and_nothing_is_sent(
    tmp_path: Path, cli_here: RunCli
) -> None:
    (tmp_path / "plan.csv").write_text("campaign_id,sending_limit\n101,10\n")
    with SimulatorThread(SimulatorConfig(api_key=KEY)) as sim:
        done = cli_here(tmp_path, f"{KEY}\udcff", "run", "plan.csv", "--base-url", sim.base_url)
        assert sim.state.requests == []
    assert done.returncode == 2
    assert done.stderr == (
        "bulkrunner: error: SMARTLEAD_API_KEY holds bytes that are not UTF-8 text: set it to the "
        "key alone\n"
    )


# --- a key typed on the command line -----------------------------------------------------------


@pytest.mark.parametrize(
    "flags",
    [
        ["--api-key", KEY],
        [f"--api-key={KEY}"],
        ["--token", KEY, "--key", KEY],
        ["--rate", KEY],  # pasted in the wrong place: the key of SMARTLEAD_API_KEY is redacted
    ],
)
@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_key_typed_as_a_flag_is_not_printed_back(
    tmp_path: Path, cli_here: RunCli, flags: list[str], log_format: str
) -> None:
    done = cli_here(tmp_path, KEY, "run", "plan.csv", "--log-format", log_format, *flags)
    assert done.returncode == 2
    assert "SENTINEL" not in done.stdout + done.stderr
    assert len(done.stderr.splitlines()) == 1
    if flags[0] != "--rate":
        assert "a key is read from SMARTLEAD_API_KEY or an accounts file, never a flag" in (
            done.stderr
        )


def test_an_unknown_argument_that_is_no_secret_is_still_named(
    tmp_path: Path, cli_here: RunCli
) -> None:
    done = cli_here(tmp_path, KEY, "run", "plan.csv", "other.csv", "--colour", "red")
    assert done.stderr.startswith(
        "bulkrunner: error: unrecognized arguments: other.csv --colour red"
    )


# --- a campaign's value holding the key -----------------------------------------------------------


def test_a_value_holding_the_key_is_not_backed_up_put_back_redacted_or_exported(
    tmp_path: Path, cli_here: RunCli
) -> None:
    link = f"https://prefs.example.com/u?api_key={KEY}&list=7"  # the user's own, with their key
    (tmp_path / "plan.csv").write_text("campaign_id,unsubscribe_text\n11,bye\n12,bye\n")
    with SimulatorThread(SimulatorConfig(api_key=KEY, campaigns={11, 12})) as sim:
        sim.state.settings[11] = {**default_settings(11), "unsubscribe_text": link}
        base = ("--base-url", sim.base_url)
        done = cli_here(tmp_path, KEY, "run", "plan.csv", "--report", "r.csv", *base)
        assert done.returncode == 0, done.stderr
        backup = tmp_path / "r.csv.backup.parquet"
        assert 11 not in read_backup(backup)
        assert read_unrestorable(backup)[11] == (
            "unsubscribe_text: the value before the run holds the API key (read as REDACTED), "
            "which no file holds, so the backup cannot hold it"
        )
        undone = cli_here(tmp_path, KEY, "rollback", "r.csv", "--report", "undo.csv", *base)
        assert sim.state.settings[11]["unsubscribe_text"] == "bye"  # never REDACTED
        assert (
            sim.state.settings[12]["unsubscribe_text"] == default_settings(12)["unsubscribe_text"]
        )
        assert undone.returncode == 1, undone.stderr
        sim.state.settings[11]["unsubscribe_text"] = link
        exported = cli_here(tmp_path, KEY, "export", "--output", "e.csv", *base)
    assert exported.returncode == 1, exported.stderr
    assert "campaign 11 is not exported: its unsubscribe_text holds the API key" in (
        exported.stderr
    )
    assert pd.read_csv(tmp_path / "e.csv")["campaign_id"].tolist() == [12]
    texts = [done.stdout, done.stderr, undone.stdout, undone.stderr, exported.stderr]
    assert [
        text for text in [*texts, *every_file_text(tmp_path).values()] if "SENTINEL" in text
    ] == []

"""A run and an export on the command line, in this process, against a server whose text is
odd: halves of characters (a lone surrogate, escaped in JSON), terminal controls, numbers wider
than 64 bits. Each made the report, the backup or the export fail to be written: the command
ended with an internal error and no report, or a server's text retitled the terminal and
drew a fake summary line."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from aiohttp import web

from tests.hostile import RunCli, ServerThread

KEY = "sk-odd-text-SENTINEL-5e1a"
HALF = "\ud800"  # half of a character: JSON escapes it, no UTF-8 file can hold it
FAKE = "\x1b]0;PWNED\x07\x1b[2K\r\x1b[32mrows: 3 (3 succeeded)\x1b[0m"  # retitles, redraws
WIDE = 10**30  # wider than the 64 bits a backup's column holds


async def odd(request: web.Request) -> web.Response:
    """Campaign 101's limit is wider than 64 bits, 102's text holds half a character, and the
    write to 102 is refused with a message of both."""
    if request.method == "GET":
        campaigns = [
            {"id": 101, "sending_limit": WIDE, "unsubscribe_text": "bye"},
            {"id": 102, "sending_limit": 1, "unsubscribe_text": f"old {HALF} text"},
            {"id": 103, "sending_limit": 1, "unsubscribe_text": "bye"},
        ]
        return web.Response(text=json.dumps(campaigns), content_type="application/json")
    if request.path.endswith("/102/settings"):
        refused = {"error": f"bad {HALF} value {FAKE}"}
        return web.Response(status=400, text=json.dumps(refused), content_type="application/json")
    return web.json_response({"success": True})


def test_odd_text_from_a_server_is_written_out_and_every_row_reported(
    tmp_path: Path, cli_here: RunCli
) -> None:
    (tmp_path / "plan.csv").write_text(
        "campaign_id,sending_limit,unsubscribe_text\n101,10,bye\n102,10,new\n103,10,bye\n"
    )
    with ServerThread(odd) as server:
        url = server.url + "/api/v1"
        done = cli_here(
            tmp_path, KEY, "run", "plan.csv", "--report", "r.csv", "--base-url", url,
            "--max-attempts", "1",
        )  # fmt: skip
        exported = cli_here(tmp_path, KEY, "export", "--output", "e.csv", "--base-url", url)
    assert done.returncode == 1, done.stderr
    report = pd.read_csv(tmp_path / "r.csv", keep_default_na=False)
    assert report["status"].tolist() == ["succeeded", "failed", "succeeded"]
    written_out = "\\x1b]0;PWNED\\x07\\x1b[2K \\x1b[32mrows: 3 (3 succeeded)\\x1b[0m"
    assert report["error"][1] == f"HTTP 400: bad \ufffd value {written_out}"
    assert not {"\x1b", "\x07"} & set(done.stdout + done.stderr)
    assert written_out in done.stdout + done.stderr  # shown, as text
    backup = pq.read_table(tmp_path / "r.csv.backup.parquet").to_pylist()
    before = {row["campaign_id"]: (row["sending_limit"], row["unsubscribe_text"]) for row in backup}
    assert 101 not in before  # its limit, too wide to hold, cannot be restored: left as it is
    assert before[102] == (1, "old \ufffd text")
    assert exported.returncode == 1, exported.stderr  # 101 cannot be exported: said why
    assert "campaign 101 does not read back as it is" in exported.stderr
    export = pd.read_csv(tmp_path / "e.csv", keep_default_na=False, dtype=str)
    assert export["unsubscribe_text"].tolist() == ["bye", "old \ufffd text", "bye"]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_value_holding_a_nul_is_left_out_of_an_export_and_the_rest_exported(
    tmp_path: Path, cli_here: RunCli, suffix: str
) -> None:
    """No file of text holds a NUL: a CSV export of it failed whole, and a Parquet one was
    refused as it was read back."""

    async def nul(request: web.Request) -> web.Response:
        campaigns = [
            {"id": 101, "sending_limit": 5, "unsubscribe_text": "bye\x00x"},
            {"id": 102, "sending_limit": 6, "unsubscribe_text": "bye"},
        ]
        return web.json_response(campaigns)

    with ServerThread(nul) as server:
        url = server.url + "/api/v1"
        done = cli_here(tmp_path, KEY, "export", "--output", f"e{suffix}", "--base-url", url)
    assert done.returncode == 1, done.stderr
    assert "campaign 101 is not exported: its unsubscribe_text holds a NUL character" in done.stderr
    path = tmp_path / f"e{suffix}"
    export = pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
    assert export["campaign_id"].astype(int).tolist() == [102]

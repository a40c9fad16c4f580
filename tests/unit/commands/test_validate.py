"""``bulkrunner validate`` of a small CSV file without pandas: the quick path
(``bulkrunner.commands.validate``) must say exactly what the pandas path says, for every file.

Each file of a corpus of odd small CSV files, and of a few hundred made at random from odd
pieces, is validated through the CLI twice, once down each path (chosen with the environment
variable only tests use), and the exit codes, stdout and stderr (with the log of how
the header was read and what was ignored) must be identical. The corpus also says which files
the quick path reads itself and which it must hand to pandas, so that it cannot pass by handing
every file over.
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import TextIO

import pytest

from bulkrunner.commands import validate as checking
from bulkrunner.commands.validate import PATH_ENV
from bulkrunner.config.run_config import RunConfig
from bulkrunner.errors import ExitCode
from bulkrunner.operations import timezones
from tests import ROOT
from tests.fakes import run

pytestmark = pytest.mark.usefixtures("no_ambient_settings")

ACCOUNTS = '[accounts.acme]\nkey_env = "ACME_KEY"\n\n[accounts.globex]\nkey_env = "GLOBEX_KEY"\n'
SETTINGS = "campaign_id,sending_limit,track_settings,send_as_plain_text,unsubscribe_text"
STATUS = ["--operation", "status"]
SCHEDULE = ["--operation", "schedule"]
EMAIL = ["--operation", "email-accounts"]
LONG = ["--vocabulary", "long"]
MISTAKES = ROOT / "sample_data" / "campaign_settings_with_mistakes.csv"

# name -> (the file's bytes or text, extra arguments, whether the quick path reads it itself)
CORPUS: dict[str, tuple[bytes | str, list[str], bool]] = {
    "plain": ("campaign_id,sending_limit\n1,10\n2,20\n", [], True),
    "numbers beyond 64 bits, and of 5,000 digits": (
        f"campaign_id,sending_limit\n1,{2**64}\n2,{'9' * 5000}\n{'8' * 5000},3\n4,-{2**63 + 1}\n",
        [],
        True,
    ),
    "a 5,000-character cell is named, not repeated": (
        f"campaign_id,timezone,days\n1,{'X' * 5000},mon\n2,UTC,{'y' * 5000}\n",
        SCHEDULE,
        True,
    ),
    "sample with mistakes": (MISTAKES.read_bytes(), [], True),
    "every settings field": (
        "campaign_id,track_settings,stop_lead_settings,sending_limit,min_time_btwn_emails,"
        "enable_ai_esp_matching,send_as_plain_text,follow_up_percentage,unsubscribe_text,"
        "client_id\n"
        "1,DONT_EMAIL_OPEN;DONT_LINK_CLICK,REPLY_TO_AN_EMAIL,100,5,yes,no,40,Stop,77\n"
        "2,[],CLICKED_LINK,0,,t,F,100,-,\n"
        "3,none,OPEN_AN_EMAIL,-1,x,maybe,2,101,'=cmd,abc\n",
        [],
        True,
    ),
    "quoted newlines": (
        f'{SETTINGS}\n1,"1\n0",,,"two\nlines"\n2,5,,,"a ""quoted"" word"\n',
        [],
        True,
    ),
    "crlf and quoted crlf": (f'{SETTINGS}\r\n1,5,,,"x\r\ny"\r\n2,6,,,\r\n', [], True),
    "bare cr": ("campaign_id,sending_limit\r1,5\r2,x\r", [], False),
    "bare cr, a blank line, an empty first cell": (
        "campaign_id,sending_limit\r1,5\r\r,6\r",  # pandas reads ",6" as "6,"
        [],
        False,
    ),
    "a cr in a quoted cell": ('campaign_id,unsubscribe_text\n1,"a\rb"\n', [], False),
    "utf-8 bom": ("\ufeffcampaign_id,sending_limit\n1,5\n".encode(), [], True),
    "utf-8 bom, crlf": ("\ufeffCampaign ID,Sending Limit\r\n1,5\r\n1,6\r\n".encode(), [], True),
    "utf-16 tabs": (
        "Campaign ID\tUnsubscribe Text\r\n1\tSe désabonner\r\n2\t\r\n".encode("utf-16"),
        [],
        True,
    ),
    "utf-16 odd byte count": (
        "campaign_id,sending_limit\n1,5\n".encode("utf-16") + b"\x00",
        [],
        False,
    ),
    "windows-1252": (
        "campaign_id;unsubscribe_text\r\n1;Désinscription \u2013 ici\r\n".encode("cp1252"),
        [],
        True,
    ),
    "bad encoding": (b"campaign_id,unsubscribe_text\n5,Se d\x81sabonner\n", [], True),
    "control character": (b"campaign_id,unsubscribe_text\n5,\xe9\x01\n", [], True),
    "utf-16 without bom": ("campaign_id,sending_limit\n5,7\n".encode("utf-16-le"), [], True),
    "semicolons": ("campaign_id;sending_limit;unsubscribe_text\n1;5;Stop, please\n", [], True),
    "tabs": ("campaign_id\tsending_limit\n1\t5\n2\t\n", [], True),
    "blank lines in the middle": ("campaign_id,sending_limit\n1,5\n\n\n2,6\n\n", [], True),
    "blank rows of commas": (
        "campaign_id,sending_limit,,\n101,25,,\n,,,\n102,ten,,\n103,7,,\n,,,\n  ,,,\n",
        [],
        True,
    ),
    "blank leftovers": (
        "campaign_id,sending_limit,,Unnamed: 3\n101,25,,\n102,30,,\n,,,\n , ,,\n,,,\n",
        [],
        True,
    ),
    "a line of spaces": ("campaign_id,sending_limit\n1,5\n   \n2,6\n", [], False),
    "a line of spaces, quoted": ('campaign_id\n1\n"  "\n2\n', [], False),
    "a line of spaces at the end": ("campaign_id,sending_limit\n1,5\n \t", [], False),
    "trailing comma on the first row": ("campaign_id,sending_limit\n1,2,\n3,4\n", [], False),
    "trailing comma on a later row": ("campaign_id,sending_limit\n1,2\n3,4,\n", [], False),
    "trailing commas everywhere": ("campaign_id,sending_limit,\n1,2,\n3,4,\n", [], True),
    "a surplus cell": ("campaign_id,sending_limit\n5,5,9\n", [], False),
    "short rows": ("campaign_id,sending_limit,unsubscribe_text\n1\n2,5\n3,,x\n", [], True),
    "a short blank row": (
        "campaign_id,sending_limit,unsubscribe_text\n1,5,x\n,\n2,6,y\n",
        [],
        True,
    ),
    "an open quote": ('campaign_id,unsubscribe_text\n5,"open quote\n', [], False),
    "text after a closing quote": ('campaign_id,unsubscribe_text\n5,"ab"cd\n', [], False),
    "a quote inside a cell": ('campaign_id,unsubscribe_text\n5,ab"cd"\n6, "x"\n', [], True),
    "NA, null, None, nan cells": (
        f"{SETTINGS}\nNA,NA,NA,NA,NA\n1,null,None,nan,null\n2,None,NULL,N/A,None\n3,nan,,,#N/A\n",
        [],
        True,
    ),
    "whitespace around cells": (
        f"{SETTINGS}\n 1 , 5 , DONT_EMAIL_OPEN ,  yes , Stop \n\t2\t,\t6\t,,,\n",
        [],
        True,
    ),
    "huge ints": (
        "campaign_id,sending_limit\n"
        "9223372036854775807,5\n9223372036854775808,5\n99999999999999999999999,1\n"
        "1,99999999999999999999\n2,-99999999999999999999\n3,1e3\n4,5.0\n5,5.5\n6,+7\n7,007\n",
        [],
        True,
    ),
    "unicode digits": ("campaign_id,sending_limit\n\uff11\uff12,\u0665\n\u0663,\u00b2\n", [], True),
    "duplicate ids": (
        "campaign_id,sending_limit\n5,1\n6,2\n5,3\n05,4\n 6 ,5\n7,6\n5.0,7\n",
        [],
        True,
    ),
    "a repeated id escaped as a report writes it": (
        "campaign_id,sending_limit\n\"'\t5\",10\n5,20\n'=5,1\n'-5,2\n",
        [],
        True,
    ),
    "spreadsheet escapes": (
        f"{SETTINGS}\n1,'-5,,,'=HYPERLINK()\n2,'+5,,,''=x\n3,'5,,,'@a\n",
        [],
        True,
    ),
    "unknown column": ("campaign_id,sending_limt\n5,5\n", [], True),
    "unknown column, far": ("campaign_id,notes\n5,x\n", [], True),
    "another operation's column": ("campaign_id,status\n5,PAUSED\n", [], True),
    "a typo of campaign_id": ("campaign_ids,sending_limit\n5,5\n", [], True),
    "no campaign_id": ("sending_limit\n5\n", [], True),
    "duplicate column names": ("campaign_id,sending_limit,sending_limit\n5,5,6\n", [], True),
    "two names, one column": ("Campaign ID,campaign_id\n5,6\n", [], True),
    "data under no header": ("campaign_id,sending_limit,\n101,25,7\n", [], True),
    "data under Unnamed": ("campaign_id,sending_limit,Unnamed: 2\n101,25,7\n", [], True),
    "forgiven headers": (
        "Campaign ID, Sending Limit ,follow-up-percentage\n101,25,40\n102,30,\n",
        [],
        True,
    ),
    "empty file": ("", [], True),
    "blank lines only": ("\n\n", [], True),
    "header only": ("campaign_id,sending_limit\n", [], True),
    "header and blank rows only": ("campaign_id,sending_limit\n,\n\n,\n", [], True),
    "campaign_id only": ("campaign_id\n1\n2\n", [], True),
    "every field blank": ("campaign_id,sending_limit\n1,\n,\n2, \n", [], True),
    "a report as input": (
        "row,campaign_id,sending_limit,status,error\n1,5,10,invalid,x\n2,6,'=1,failed,\n",
        [],
        True,
    ),
    "a report with a repeated column": (
        "row,campaign_id,sending_limit,sending_limit,status\n1,5,10,11,failed\n",
        [],
        True,
    ),
    "many invalid rows": (
        "campaign_id,sending_limit\n" + "".join(f"{n},x{n % 3}\n" for n in range(1, 40)),
        [],
        True,
    ),
    "vocabulary, documented": (
        "campaign_id,track_settings\n1,DONT_TRACK_REPLY_TO_AN_EMAIL\n2,DONT_EMAIL_OPN\n",
        [],
        True,
    ),
    "vocabulary, long": (
        "campaign_id,track_settings\n1,DONT_TRACK_REPLY_TO_AN_EMAIL\n2,DONT_EMAIL_OPEN\n",
        LONG,
        True,
    ),
    "status": (
        "campaign_id,status\n1,paused\n2,START\n3,STOPPED\n4,running\n5,\n",
        STATUS,
        True,
    ),
    "status, STOPPED allowed": (
        "campaign_id,status\n1,paused\n2,STOPPED\n3,STOP\n",
        [*STATUS, "--allow-stop"],
        True,
    ),
    "status of a report": (
        "row,campaign_id,wanted_status,status,error\n1,5,PAUSED,failed,x\n2,6,STOPPED,invalid,\n",
        STATUS,
        True,
    ),
    "schedule": (
        "campaign_id,timezone,days,start_hour,end_hour,min_time_btw_emails,"
        "max_new_leads_per_day,schedule_start_time\n"
        "1,europe/london,Mon-Fri,08:00,17:00,10,40,2026-12-01T09:00:00Z\n"
        "2,Mars/Olympus,0;1,18:00,09:00,-1,x,2026-12-01 09:00\n"
        "3,,weekdays,9:00,9:00,,,\n"
        "4,UTC,Fri-Mon,25:00,,,,2026-12-01\n"
        "5,,,,,,,\n",
        SCHEDULE,
        True,
    ),
    "email accounts": (
        'campaign_id,add,remove\n1,7;8,\n2,,3\n3,4,4\n4,a@b.c,0\n5,"[1, 2]",\n6,,\n',
        EMAIL,
        True,
    ),
    "a column of another operation": ("campaign_id,add\n1,7\n", STATUS, True),
    "every unknown column at once": (
        "campaign_id,sending_limt,notes,timezone,Owner\n1,7,x,UTC,ann\n",
        [],
        True,
    ),
    "columns kept, and a name": (
        "campaign_id,Name,notes,sending_limit,Client Name\n1,=1+1,,7,Acme\n2,,x,,\n3,A,b,x,c\n",
        ["--keep-columns", "notes,client-name"],
        True,
    ),
    "true and false as spreadsheets write them": (
        "campaign_id;send_as_plain_text;enable_ai_esp_matching\n1;WAHR;FALSCH\n2;vrai;faux\n"
        "3;VERO;ONWAAR\n4;verdadero;nee\n",
        [],
        True,
    ),
    "timezone abbreviations and places": (
        "campaign_id,timezone\n1,EST\n2,PST\n3,PST\n4,New York\n5,CET\n",
        SCHEDULE,
        True,
    ),
}


def _untimed(result: tuple[int, str, str]) -> tuple[int, str, str]:
    """The result with the time each log line starts with taken out."""
    code, out, err = result
    return code, out, re.sub(r"^\d\d:\d\d:\d\d ", "", err, flags=re.MULTILINE)


def _both(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    path: Path,
    args: list[str],
) -> tuple[tuple[int, str, str], tuple[int, str, str], bool]:
    """``bulkrunner validate PATH ARGS`` down the pandas path, then the quick one; and
    whether the quick path handed the file to pandas."""
    argv = ["validate", str(path), *args]
    monkeypatch.setenv(PATH_ENV, "pandas")
    timezones.WARNED.clear()  # an abbreviation is warned of once a process: once down each path
    slow = _untimed(run(capsys, *argv))
    timezones.WARNED.clear()
    handed: list[Path] = []
    real = checking.pandas_validate

    def spy(config: RunConfig, out: TextIO) -> ExitCode:
        handed.append(config.input)
        return real(config, out)

    monkeypatch.setenv(PATH_ENV, "quick")
    monkeypatch.setattr(checking, "pandas_validate", spy)
    quick = _untimed(run(capsys, *argv))
    monkeypatch.setattr(checking, "pandas_validate", real)
    return slow, quick, bool(handed)


@pytest.mark.parametrize("name", CORPUS)
def test_the_quick_path_says_what_the_pandas_path_says(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    name: str,
) -> None:
    content, args, read_quickly = CORPUS[name]
    path = tmp_path / "plan.csv"
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    (tmp_path / "accounts.toml").write_text(ACCOUNTS)
    slow, quick, handed = _both(capsys, monkeypatch, path, args)
    assert quick == slow
    assert handed is not read_quickly
    assert "Traceback" not in slow[2]


@pytest.mark.parametrize(
    "rows",
    [
        "1,5,acme\n2,6,globex\n",
        "1,5,acme\n2,6,acme \n3,x,initech\n4,7,\n5,,acmee\n1,8,globex\n",
    ],
    ids=["named", "unknown, blank and invalid"],
)
def test_the_account_column_is_judged_alike(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    rows: str,
) -> None:
    path = tmp_path / "plan.csv"
    path.write_text("campaign_id,sending_limit,account\n" + rows)
    accounts = tmp_path / "accounts.toml"
    accounts.write_text(ACCOUNTS)
    for args in (["--accounts", str(accounts)], []):  # without one: a usage error
        slow, quick, handed = _both(capsys, monkeypatch, path, args)
        assert quick == slow
        assert not handed


def test_a_job_file_naming_the_input_is_validated_alike(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "plan.csv").write_text("campaign_id,status\n1,paused\n2,STOPPED\n2,START\n")
    job = tmp_path / "job.toml"
    job.write_text('input = "plan.csv"\noperation = "status"\nallow_stop = true\n')
    slow, quick, handed = _both(capsys, monkeypatch, job, [])
    assert quick == slow
    assert slow[1].splitlines()[0].endswith("row 2: campaign_id: 2 appears in rows 2 and 3")
    assert not handed


def test_a_parquet_file_is_left_to_pandas_even_when_told_to_be_quick(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import pandas as pd

    path = tmp_path / "plan.parquet"
    pd.DataFrame({"campaign_id": [1, 2], "sending_limit": [5, None]}).to_parquet(path)
    slow, quick, handed = _both(capsys, monkeypatch, path, [])
    assert quick == slow
    assert slow[0] == 1  # row 2 sets nothing
    assert handed


# --- random files made of odd pieces -----------------------------------------------------------

_HEADERS = [
    ["campaign_id", "sending_limit"],
    ["Campaign ID", "send_as_plain_text", "unsubscribe_text"],
    ["campaign_id", "track_settings", ""],
    ["campaign_id", "sending_limit", "campaign_id"],
    ["row", "campaign_id", "sending_limit", "status"],
]
_CELLS = [
    "", " ", "  ", "\t", "1", "2", "5", " 5 ", "05", "5.0", "-3", "x", "NA", "null", "nan",
    "yes", "no", "DONT_EMAIL_OPEN", "dont_link_click;DONT_EMAIL_OPEN", "[]", "'=1", "'\t5",
    "'-5", "=1", "a,b", 'say "hi"', "two\nlines", "\u00a0", "\u3000", "\x1f",
    "\u0665", "é", "99999999999999999999", "\ufeff5",
]  # fmt: skip


def _random_file(rng: random.Random) -> bytes:
    """A small CSV file: odd cells, quoted or not, odd line endings, blank and short lines;
    now and then a surplus cell or a stray quote (which the quick path hands to pandas)."""
    sep = rng.choice([",", ",", ";", "\t"])
    end = rng.choice(["\n", "\n", "\r\n", "\r"])  # a bare CR: pandas reads it (see CORPUS)
    header = rng.choice(_HEADERS)

    def cell(text: str) -> str:
        odd = any(c in text for c in (sep, '"', "\n", "\r")) or rng.random() < 0.1
        if odd and rng.random() < 0.97:
            return '"' + text.replace('"', '""') + '"'
        return text

    lines = [sep.join(cell(name) for name in header)]
    for _ in range(rng.randint(0, 7)):
        shape = rng.random()
        if shape < 0.08:
            lines.append(rng.choice(["", " ", sep * (len(header) - 1)]))
            continue
        width = len(header)
        if shape < 0.15:
            width = rng.randint(1, len(header))
        elif shape < 0.18:
            width += 1
        lines.append(sep.join(cell(rng.choice(_CELLS)) for _ in range(width)))
    text = end.join(lines) + (end if rng.random() < 0.8 else "")
    return text.encode(rng.choice(["utf-8", "utf-8", "utf-8-sig", "utf-16"]))


def test_random_odd_files_read_alike_down_both_paths(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rng = random.Random(20261126)
    path = tmp_path / "plan.csv"
    quickly = 0
    # 160 seeded files meet every separator, line ending and encoding together (24 of them),
    # each cell and header many times over; more files only repeat them, at 20 ms each
    for attempt in range(160):
        content = _random_file(rng)
        path.write_bytes(content)
        args = rng.choice([[], [], LONG])
        slow, quick, handed = _both(capsys, monkeypatch, path, args)
        assert quick == slow, (attempt, content, args)
        quickly += not handed
    assert quickly > 80  # most of them were read by the quick path itself


def test_a_small_csv_file_is_read_by_the_quick_path_without_being_told(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "plan.csv"
    path.write_text("campaign_id,sending_limit\n1,5\n2,x\n")
    handed: list[Path] = []
    monkeypatch.delenv(PATH_ENV, raising=False)
    monkeypatch.setattr(checking, "pandas_validate", lambda config, out: handed.append(path))
    code, out, _ = run(capsys, "validate", str(path))
    assert (code, handed) == (1, [])
    assert out.splitlines() == [
        f"{path} row 2: sending_limit: 'x' is not a whole number",
        f"{path}: 2 rows, 1 valid, 1 invalid",
    ]


def test_a_campaign_id_escaped_as_reports_write_it_is_still_a_repeat_down_the_pandas_path(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A report writes the cell "\t5" as "'\t5" (a spreadsheet would read a tab as a formula's
    # start); reading takes the quote off again, so campaign 5 is on both rows. The pandas
    # path found repeats from the cells still escaped, and passed both rows.
    path = tmp_path / "plan.csv"
    path.write_text('campaign_id,sending_limit\n"\'\t5",10\n5,20\n')
    monkeypatch.setenv(PATH_ENV, "pandas")
    code, out, _ = run(capsys, "validate", str(path))
    assert code == 1
    assert out.splitlines()[:2] == [
        f"{path} row 1: campaign_id: 5 appears in rows 1 and 2",
        f"{path} row 2: campaign_id: 5 appears in rows 1 and 2",
    ]
    report = tmp_path / "dry.csv"
    assert run(capsys, "run", str(path), "--dry-run", "--report", str(report))[0] == 1
    assert report.read_text().count("appears in rows 1 and 2") == 2

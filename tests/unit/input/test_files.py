"""Input files as spreadsheets save them, through the CLI: delimiters, encodings, headers,
blank leftovers, the input as the positional argument, and validate's grouped output."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from bulkrunner.errors import InputFileError
from bulkrunner.input import loading
from bulkrunner.input.files import Ignored
from bulkrunner.input.loading import load_input, open_input, read_input
from bulkrunner.output.report import read_report
from bulkrunner.simulator import SimulatorConfig, SimulatorThread, default_settings
from tests.fakes import one_line_error, run
from tests.heap import own_heap

KEY = "sk-live-SENTINEL-7d1e04"
ACCENTED = "Se désabonner \u2013 ici"  # é and the en dash are both in Windows-1252

# name -> (bytes of the file, the settings it asks for): two campaigns each
FORMS: dict[str, tuple[bytes, dict[int, dict[str, object]]]] = {
    "semicolon": (
        # European Excel: semicolons, so a comma inside a cell needs no quotes
        b"campaign_id;sending_limit;unsubscribe_text\n101;25;Stop, please\n102;30;\n",
        {
            101: {"sending_limit": 25, "unsubscribe_text": "Stop, please"},
            102: {"sending_limit": 30},
        },
    ),
    "bom-crlf": (
        "\ufeffcampaign_id,sending_limit\r\n101,25\r\n102,30\r\n".encode(),
        {101: {"sending_limit": 25}, 102: {"sending_limit": 30}},
    ),
    "campaign-id-header": (
        b"Campaign ID, Sending Limit ,follow-up-percentage\n101,25,40\n102,30,\n",
        {101: {"sending_limit": 25, "follow_up_percentage": 40}, 102: {"sending_limit": 30}},
    ),
    "blank-leftovers": (
        b"campaign_id,sending_limit,,Unnamed: 3\n101,25,,\n102,30,,\n,,,\n , ,,\n,,,\n",
        {101: {"sending_limit": 25}, 102: {"sending_limit": 30}},
    ),
    "utf16-export": (
        # Excel's "Unicode Text": UTF-16 with a byte-order mark, tabs, CRLF
        (
            f"Campaign ID\tSending Limit\tUnsubscribe Text\r\n101\t25\t{ACCENTED}\r\n102\t30\tÄ\r\n"
        ).encode("utf-16"),
        {
            101: {"sending_limit": 25, "unsubscribe_text": ACCENTED},
            102: {"sending_limit": 30, "unsubscribe_text": "Ä"},
        },
    ),
    "cp1252": (
        f"campaign_id;unsubscribe_text\r\n101;{ACCENTED}\r\n102;Désinscription\r\n".encode(
            "cp1252"
        ),
        {101: {"unsubscribe_text": ACCENTED}, 102: {"unsubscribe_text": "Désinscription"}},
    ),
}


pytestmark = pytest.mark.usefixtures("no_ambient_settings")


def write(tmp_path: Path, content: bytes | str, name: str = "plan.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


@pytest.mark.parametrize("form", FORMS)
def test_each_file_form_validates_as_the_positional_argument(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, form: str
) -> None:
    content, _ = FORMS[form]
    path = write(tmp_path, content)
    code, out, err = run(capsys, "validate", str(path))
    assert code == 0, out + err
    assert f"{path}: 2 rows, 2 valid, 0 invalid" in out
    assert "Traceback" not in err


@pytest.mark.parametrize("form", FORMS)
def test_each_file_form_runs_against_the_simulator(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    form: str,
) -> None:
    monkeypatch.setenv("SMARTLEAD_API_KEY", KEY)
    content, wanted = FORMS[form]
    path = write(tmp_path, content)
    report = tmp_path / "r.json"
    with SimulatorThread(SimulatorConfig(api_key=KEY)) as sim:
        code, out, err = run(
            capsys, "run", "--input", str(path), "--report", str(report),
            "--base-url", sim.base_url, "--rate", "100/1", "--no-skip-unchanged",
        )  # fmt: skip
        sent = {
            campaign: {name: sim.state.settings[campaign][name] for name in settings}
            for campaign, settings in wanted.items()
        }
    assert code == 0, out + err
    assert sent == wanted
    rows = json.loads(report.read_text())
    assert [(r["row"], r["campaign_id"], r["status"]) for r in rows] == [
        (1, "101", "succeeded"),
        (2, "102", "succeeded"),
    ]


def test_the_header_mapping_is_logged_once_in_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, FORMS["campaign-id-header"][0])
    for command in (["validate"], ["run", "--dry-run", "--report", str(tmp_path / "r.csv")]):
        code, _, err = run(capsys, *command, str(path))
        assert code == 0, err
        (said,) = [line for line in err.splitlines() if "reading column" in line]  # one line
        assert said.endswith(
            "reading columns 'Campaign ID' as campaign_id, 'Sending Limit' as sending_limit, "
            "'follow-up-percentage' as follow_up_percentage"
        )
    monkeypatch.setenv("SMARTLEAD_API_KEY", KEY)
    with SimulatorThread(SimulatorConfig(api_key=KEY)) as sim:
        code, _, err = run(
            capsys, "run", str(path), "--report", str(tmp_path / "s.csv"),
            "--base-url", sim.base_url, "--rate", "100/1",
        )  # fmt: skip
    assert code == 0, err
    assert err.count("reading columns 'Campaign ID' as campaign_id,") == 1


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        # a real typo among forgiven headers: still refused, with the suggestion
        (
            "Campaign ID,Sending Limt",
            "unknown column 'Sending Limt' (did you mean 'sending_limit'?)",
        ),
        ("Campaign ID,campaign_id", "columns 'Campaign ID' and 'campaign_id' both mean"),
        ("campaign_id,sending_limit,", "column 3 has data but no header"),
        ("campaign_id,sending_limit,Unnamed: 2", "its header 'Unnamed: 2' names no column"),
    ],
)
def test_headers_that_cannot_be_forgiven_are_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, header: str, problem: str
) -> None:
    cells = ["101", "25", "7"][: header.count(",") + 1]
    path = write(tmp_path, f"{header}\n{','.join(cells)}\n")
    code, out, err = run(capsys, "validate", str(path))
    assert code == 2
    assert out == ""
    line = one_line_error(err)
    assert line.startswith(f"bulkrunner: error: {path}: ")
    assert problem in line


IGNORED = (
    "3 blank rows and 2 empty unnamed columns; "
    "row numbers do not count the 1 blank row between rows of data"
)


def test_blank_rows_and_unnamed_empty_columns_are_counted_not_invalid(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(
        tmp_path,
        "campaign_id,sending_limit,,\n101,25,,\n,,,\n102,ten,,\n103,7,,\n,,,\n  ,,,\n",
    )
    code, out, err = run(capsys, "validate", str(path))
    assert code == 1
    # rows are numbered without the blank ones, and the summary says so: the bad row is the
    # second row of data
    assert out.splitlines() == [
        f"{path} row 2: sending_limit: 'ten' is not a whole number",
        f"{path}: 3 rows, 2 valid, 1 invalid; ignored {IGNORED}",
    ]
    report = tmp_path / "r.csv"
    code, out, err = run(capsys, "run", str(path), "--dry-run", "--report", str(report))
    assert code == 1
    assert f"ignored {IGNORED}" in err
    assert f"ignored: {IGNORED}" in out.splitlines()
    frame = pd.read_csv(report, dtype=str, keep_default_na=False)
    assert list(frame.columns[:2]) == ["campaign_id", "sending_limit"]
    assert list(zip(frame["row"], frame["status"], strict=True)) == [
        ("1", "dry_run"),
        ("2", "invalid"),
        ("3", "dry_run"),
    ]
    monkeypatch.setenv("SMARTLEAD_API_KEY", KEY)
    report = tmp_path / "sent.csv"
    with SimulatorThread(SimulatorConfig(api_key=KEY)) as sim:
        code, out, err = run(
            capsys, "run", str(path), "--report", str(report),
            "--base-url", sim.base_url, "--rate", "100/1",
        )  # fmt: skip
        applied = sorted(sim.state.applied)
    assert code == 1  # the invalid row
    assert applied == [101, 103]
    summary = out[out.index("rows: ") :].splitlines()  # after the invalid row, listed
    assert summary[0] == "rows: 3 (2 succeeded, 1 invalid)"
    assert summary[1] == f"ignored: {IGNORED}"


@pytest.mark.parametrize("chunk", [1, 2, 3, 4, 50])
def test_chunks_and_the_whole_file_agree_on_blank_rows_and_columns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    monkeypatch.setattr(loading, "CHUNK_ROWS", chunk)
    path = write(
        tmp_path,
        "Campaign ID;;Sending Limit;Unnamed: 3\n;;;\n101;;25;\n;;;\n;;;\n102;;;\n103;;7;\n;;;\n",
    )
    whole = load_input(path)
    source = open_input(path)
    assert list(whole.columns) == list(source.columns) == ["campaign_id", "sending_limit"]
    assert whole.values.tolist() == [["101", "25"], ["102", ""], ["103", "7"]]
    assert source.rows == 3
    assert source.ignored == Ignored(rows=4, columns=2, between=3)
    assert read_input(path)[1] == source.ignored
    assert pd.concat(list(source.chunks(rows=chunk))).values.tolist() == whole.values.tolist()
    picked = pd.concat(list(source.chunks(rows=chunk, columns=["sending_limit", "campaign_id"])))
    assert picked.values.tolist() == [["25", "101"], ["", "102"], ["7", "103"]]


BLANKS = "Campaign ID;;Sending Limit\n;;\n101;;25\n102;;\n;;\n103;;7\n104;;8\n;;\n"


@pytest.mark.parametrize(
    ("kept_bytes", "chunk", "parses"), [(1 << 20, 50, 1), (10, 50, 3), (1 << 20, 4, 3)]
)
def test_a_small_file_is_parsed_once_and_read_again_as_a_new_parse_would_read_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kept_bytes: int, chunk: int, parses: int
) -> None:
    """A file of one chunk, no larger than ``KEPT_BYTES``, is read again from its first parse
    (slices of it, blank rows left out, columns in the order asked for); a larger one, or one
    of several chunks, is parsed again at each reading."""
    import bulkrunner.input.csv_reading as csv_reading

    monkeypatch.setattr(csv_reading, "KEPT_BYTES", kept_bytes)
    monkeypatch.setattr(loading, "CHUNK_ROWS", chunk)
    read_csv = pd.read_csv
    calls: list[object] = []

    def counted(*args: object, **kwargs: object) -> object:
        calls.append(args)
        return read_csv(*args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(pd, "read_csv", counted)
    source = open_input(write(tmp_path, BLANKS))
    whole = [["101", "25"], ["102", ""], ["103", "7"], ["104", "8"]]
    assert [c.values.tolist() for c in source.chunks(rows=3)] == [whole[:2], whole[2:]]
    picked = source.chunks(rows=50, columns=["sending_limit", "campaign_id"])
    (only,) = list(picked)
    assert only.values.tolist() == [row[::-1] for row in whole]
    assert list(only.columns) == ["sending_limit", "campaign_id"]
    assert list(only.index) == [0, 1, 2, 3]
    assert len(calls) == parses


def test_the_scan_of_a_file_of_several_chunks_keeps_none_of_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each chunk is let go of once the next is parsed: the scan of a large file holds one, as
    it did before a small file's parse was kept (every chunk was held to the end, then)."""
    import gc
    import weakref

    import bulkrunner.input.csv_reading as csv_reading

    parsed = csv_reading._parsed
    seen: list[weakref.ref[pd.DataFrame]] = []
    held: list[int] = []  # as each chunk is parsed: how many of those before it are held

    def watched(*args: object, **kwargs: object) -> Iterator[pd.DataFrame]:
        for chunk in parsed(*args, **kwargs):  # type: ignore[arg-type]
            gc.collect()
            held.append(sum(ref() is not None for ref in seen))
            seen.append(weakref.ref(chunk))
            yield chunk

    monkeypatch.setattr(csv_reading, "_parsed", watched)
    monkeypatch.setattr(loading, "CHUNK_ROWS", 2)
    with own_heap():  # each chunk collects: only what the scan made
        open_input(write(tmp_path, BLANKS))
    assert held == [0, 1, 1, 1]  # the one before it, still the scan's own until it moves on


def test_a_file_in_no_unambiguous_encoding_is_refused_with_the_encodings_accepted(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = write(tmp_path, b"campaign_id,unsubscribe_text\n101,Se d\x81sabonner\n")
    code, _, err = run(capsys, "validate", str(path))
    assert code == 2
    line = one_line_error(err)
    assert line.startswith(f"bulkrunner: error: {path}: is not text in a known encoding")
    assert "Windows-1252" in line


MOSTLY_UTF8 = (
    "campaign_id,unsubscribe_text\n101,Se désabonner ici\n".encode()
    + b"102,Caf\xe9 ici\n"  # one cell typed in Windows-1252: read as that, row 1 is mojibake
)


def test_a_mostly_utf8_file_with_a_stray_byte_is_refused_naming_it_and_nothing_is_sent(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMARTLEAD_API_KEY", KEY)
    path = write(tmp_path, MOSTLY_UTF8)
    report = tmp_path / "r.csv"
    with SimulatorThread(SimulatorConfig(api_key=KEY)) as sim:
        url = ("--base-url", sim.base_url)
        for command in (
            ["validate", str(path)],  # the quick check, without pandas
            ["run", str(path), "--dry-run", "--report", str(report)],
            ["run", str(path), "--report", str(report), *url],
            ["plan", str(path), "--report", str(report), *url],
        ):
            code, out, err = run(capsys, *command)
            assert code == 2, out + err
            assert one_line_error(err) == (
                f"bulkrunner: error: {path}: line 3, byte 8: 0xE9 ('é' in Windows-1252) is not "
                "UTF-8, though the file is UTF-8 elsewhere ('é'), so either way some text would "
                "be sent garbled: retype that character, or save the file as 'CSV UTF-8'"
            )
        assert sim.state.requests == []
    assert not report.exists()


def test_a_stray_byte_is_named_where_it_is_in_a_file_read_in_blocks(tmp_path: Path) -> None:
    from bulkrunner.input.files import encoding_of

    # the two bytes of an "é" either side of the first megabyte, the stray byte lines later
    head = b"campaign_id,unsubscribe_text\n"
    filler = b"".join(b"%d,x\n" % n for n in range(1, 100_000))
    line = b"999999,"
    cut = (1 << 20) - 1 - len(head) - len(filler) - len(line)
    padding = b"y" * cut
    before = head + filler + line + padding
    assert len(before) == (1 << 20) - 1
    path = write(tmp_path, before + "é\n".encode() + b"1000000,ok\n1000001,ab\x92cd\n")
    lines = before.count(b"\n") + 3
    with pytest.raises(InputFileError) as caught:
        encoding_of(path)
    assert str(caught.value).startswith(f"{path}: line {lines}, byte 11: 0x92 ('\u2019' in ")


@pytest.mark.parametrize("report_name", ["r.csv", "r.parquet"])
def test_text_keeps_its_surrounding_white_space_when_sent_reported_and_read_back(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    report_name: str,
) -> None:
    monkeypatch.setenv("SMARTLEAD_API_KEY", KEY)
    texts = {101: "  Reply STOP  ", 102: "\tbye", 103: "bye\t", 104: "Unsubscribe here "}
    path = write(
        tmp_path,
        'campaign_id,sending_limit,unsubscribe_text\n101, 25 ,"  Reply STOP  "\n'
        '102,\t30,"\tbye"\n103,31,bye\t\n104,32,Unsubscribe here \n105,33,   \n',
    )
    report = tmp_path / report_name
    with SimulatorThread(SimulatorConfig(api_key=KEY)) as sim:
        url = ("--base-url", sim.base_url)
        code, out, err = run(capsys, "run", str(path), "--report", str(report), *url)
        assert code == 0, out + err
        settings = sim.state.settings
        assert {c: settings[c]["unsubscribe_text"] for c in texts} == texts
        assert [settings[c]["sending_limit"] for c in texts] == [25, 30, 31, 32]  # stripped
        # a cell of only spaces is blank: that setting is left as it is
        unchanged = default_settings(105)["unsubscribe_text"]
        assert (settings[105]["sending_limit"], settings[105]["unsubscribe_text"]) == (
            33,
            unchanged,
        )
        cells = read_report(report)["unsubscribe_text"].tolist()
        assert cells[:4] == list(texts.values())
        # the report is an input that sends exactly that: every row is unchanged
        again = tmp_path / "again.csv"
        code, out, err = run(capsys, "run", str(report), "--report", str(again), *url)
        assert code == 0, out + err
        assert pd.read_csv(again)["status"].tolist() == ["unchanged"] * 5


def test_parquet_headers_are_matched_forgivingly(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "plan.parquet"
    pd.DataFrame(
        {"Campaign ID": [101, 102], "Unsubscribe Text": ["", "bye"], "SENDING-LIMIT": [5, 6]}
    ).to_parquet(path)
    report = tmp_path / "r.json"
    code, out, err = run(capsys, "run", str(path), "--dry-run", "--report", str(report))
    assert code == 0, out + err
    assert err.count("'Unsubscribe Text' as unsubscribe_text") == 1
    # an empty string in Parquet is still "set it to empty", under the forgiven name too
    assert '"unsubscribe_text": ""' in out


def test_the_input_is_given_once(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = write(tmp_path, FORMS["bom-crlf"][0])
    other = write(tmp_path, FORMS["bom-crlf"][0], "other.csv")
    for command in (["validate"], ["run", "--dry-run"]):
        code, _, err = run(capsys, *command, str(path), "--input", str(other))
        assert code == 2
        assert "give the input file once" in one_line_error(err)


def test_validate_groups_many_bad_rows_by_kind_and_the_report_keeps_every_row(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    lines = ["campaign_id,sending_limit,track_settings"]
    lines += [f"{n},{'ten' if n % 2 else n},{'NOPE' if n % 3 == 0 else ''}" for n in range(1, 61)]
    path = write(tmp_path, "\n".join(lines) + "\n")
    code, out, _ = run(capsys, "validate", str(path))
    assert code == 1
    printed = out.splitlines()
    assert printed[0].startswith(f"{path}: 40 invalid rows, by kind of problem")
    assert printed[1] == (
        "  sending_limit: '…' is not a whole number: 30 rows (1, 3, 5, 7, 9 and 25 more); "
        "e.g. row 1: sending_limit: 'ten' is not a whole number"
    )
    assert printed[2].startswith(
        "  track_settings: '…' is not a valid value (valid: …, …): 20 rows "
        "(3, 6, 9, 12, 15 and 15 more); e.g. row 3: track_settings: 'NOPE' is not a valid value"
    )
    assert printed[3] == f"{path}: 60 rows, 20 valid, 40 invalid"
    assert len(printed) == 4
    report = tmp_path / "r.csv"
    code, _, _ = run(capsys, "run", str(path), "--dry-run", "--report", str(report))
    frame = pd.read_csv(report, dtype=str, keep_default_na=False)
    assert (frame["status"] == "invalid").sum() == 40
    assert frame.loc[frame["row"] == "9", "error"].item() == (
        "sending_limit: 'ten' is not a whole number; "
        "track_settings: 'NOPE' is not a valid value (valid: DONT_EMAIL_OPEN, DONT_LINK_CLICK)"
    )


def test_one_row_is_one_row(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, "campaign_id,sending_limit\n101,25\n")
    code, out, _ = run(capsys, "validate", str(path))
    assert code == 0
    assert f"{path}: 1 row, 1 valid, 0 invalid" in out
    monkeypatch.setenv("SMARTLEAD_API_KEY", KEY)
    with SimulatorThread(SimulatorConfig(api_key=KEY)) as sim:
        code, out, err = run(
            capsys, "run", str(path), "--report", str(tmp_path / "r.csv"),
            "--base-url", sim.base_url, "--rate", "100/1", "--concurrency", "1",
        )  # fmt: skip
    assert code == 0, err
    assert "sending 1 row (0 invalid, not sent) with 1 worker within 100/1" in err
    assert "backup of the 1 campaign about to change" in err
    assert "1 rows" not in out + err
    assert "1 campaigns" not in out + err


@pytest.mark.timeout(30)  # a FIFO once blocked a run for ever, waiting for a writer
@pytest.mark.parametrize("kind", ["folder", "fifo"])
@pytest.mark.parametrize(
    "command",
    [["validate"], ["run", "--dry-run"], ["run", "--simulate"], ["plan", "--simulate"]],
    ids=["validate", "dry-run", "run", "plan"],
)
def test_an_input_that_is_no_file_is_one_line_and_waits_for_nothing(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    command: list[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BULKRUNNER_STATE_DIR", str(tmp_path / "state"))
    path = tmp_path / "plan.csv"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.mkdir()
    code, _, err = run(capsys, command[0], str(path), *command[1:])
    assert code == 2
    assert one_line_error(err) == f"bulkrunner: error: {path}: not a file"

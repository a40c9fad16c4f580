from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bulkrunner.cli.app import main
from bulkrunner.errors import InputFileError, UsageError
from bulkrunner.input.loading import load_input, open_input
from bulkrunner.operations.schedule import SCHEDULE
from tests import ROOT

WriteCsv = Callable[..., Path]


def test_csv_cells_are_kept_as_written(write_csv: WriteCsv) -> None:
    path = write_csv("campaign_id,sending_limit,unsubscribe_text\n7,0100,\n8,,NA\n")
    frame = load_input(path)
    assert frame.to_dict("records") == [
        {"campaign_id": "7", "sending_limit": "0100", "unsubscribe_text": ""},
        {"campaign_id": "8", "sending_limit": "", "unsubscribe_text": "NA"},
    ]


def test_a_utf8_bom_is_tolerated(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufeffcampaign_id,sending_limit\n7,5\n".encode())
    assert list(load_input(path).columns) == ["campaign_id", "sending_limit"]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "file is empty"),
        ("\n\n", "file is empty"),
        ("campaign_id,sending_limit\n", "has a header but no data rows"),
        ("sending_limit\n5\n", "no 'campaign_id' column"),
        ("campaign_ids,sending_limit\n5,5\n", "(is 'campaign_ids' a typo?)"),
        (
            "campaign_id,sending_limt\n5,5\n",
            "unknown column 'sending_limt' (did you mean 'sending_limit'?)",
        ),
        ("campaign_id,notes\n5,x\n", "unknown column 'notes'"),
        (
            "campaign_id,sending_limit,sending_limit\n5,5,6\n",
            "'sending_limit' appears more than once",
        ),
        ("campaign_id,sending_limit\n5,5,9\n", "line 2 has 3 cells but the header has 2 columns"),
        (
            "campaign_id,sending_limit\n5,5\n6,5,9\n",
            "line 3 has 3 cells but the header has 2 columns",
        ),
        ('campaign_id,unsubscribe_text\n5,"open quote\n', "cannot parse as CSV"),
    ],
)
def test_file_level_problems_name_the_file_and_the_problem(
    write_csv: WriteCsv, text: str, problem: str
) -> None:
    path = write_csv(text)
    with pytest.raises(InputFileError) as caught:
        load_input(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert problem in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="file not found"):
        load_input(tmp_path / "nope.csv")


@pytest.mark.parametrize(
    "content",
    [
        b"campaign_id,unsubscribe_text\n5,Se d\x81sabonner\n",  # 0x81: no Windows-1252 letter
        b"campaign_id,unsubscribe_text\n5,\xe9\x01\n",  # a control character: not text
        "campaign_id,sending_limit\n5,7\n".encode("utf-16-le"),  # UTF-16 without its BOM
    ],
)
def test_a_file_in_no_unambiguous_encoding_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "odd.csv"
    path.write_bytes(content)
    for read in (load_input, open_input):
        with pytest.raises(InputFileError, match="save it as 'CSV UTF-8'"):
            read(path)


def test_an_unsupported_extension_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "input.xlsx"
    path.write_text("x")
    with pytest.raises(UsageError, match=r"unsupported input format '\.xlsx'"):
        load_input(path)


def test_a_corrupt_parquet_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"PAR1 this is not really parquet")
    with pytest.raises(InputFileError, match="not a readable Parquet file"):
        load_input(path)


def test_parquet_keeps_native_types(tmp_path: Path) -> None:
    path = tmp_path / "x.parquet"
    pd.DataFrame({"campaign_id": [1], "send_as_plain_text": [True]}).to_parquet(path)
    value = load_input(path).loc[0, "send_as_plain_text"]
    assert isinstance(value, bool | np.bool_)
    assert value


@pytest.mark.parametrize(
    ("cells", "row"),
    [
        (["ok", "fine", "a\x00b"], 3),
        (pa.array(["ok", "b\x00", "ok"]).dictionary_encode(), 2),
        ([["Mon"], ["Tue", "W\x00d"], []], 2),
    ],
    ids=["text", "dictionary", "list"],
)
def test_a_parquet_text_holding_a_nul_is_refused_naming_its_row(
    tmp_path: Path, cells: object, row: int
) -> None:
    """As a CSV file holding one is: it was sent, and every report and export after it was
    refused as an input."""
    path = tmp_path / "x.parquet"
    table = pa.table({"campaign_id": [1, 2, 3], "days": cells})
    pq.write_table(table, path, row_group_size=2)  # the row counted across row groups
    said = f"{path}: column 'days' row {row} holds a NUL character"
    for read in (load_input, lambda path: open_input(path, operation=SCHEDULE)):
        with pytest.raises(InputFileError) as refused:
            read(path)
        assert str(refused.value).startswith(said)


BIG = 2**53 + 1  # the first whole number a float cannot hold


def test_whole_numbers_of_a_column_holding_a_null_are_read_as_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """pyarrow makes such a column floats, which round a number above 2**53: a row missing its
    campaign sent the next row's write to campaign 9007199254740992."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "x.parquet"
    ids = pa.array([BIG, None, BIG + 2], pa.int64())
    pq.write_table(pa.table({"campaign_id": ids, "sending_limit": [BIG, 7, None]}), path)
    whole = load_input(path)
    chunks = list(open_input(path).chunks(rows=1))
    for frame in (whole, pd.concat(chunks, ignore_index=True)):
        assert frame["campaign_id"].tolist() == [BIG, None, BIG + 2]
        assert frame["sending_limit"].tolist() == [BIG, 7, None]
    assert main(["run", str(path), "--dry-run", "--report", "r.csv"]) == 1  # row 2: no id
    assert f"POST /campaigns/{BIG}/settings" in capsys.readouterr().out
    report = pd.read_csv(tmp_path / "r.csv", dtype=str, keep_default_na=False)
    assert report["campaign_id"].tolist() == [str(BIG), "", str(BIG + 2)]  # not 9.007e15 nor .0


def test_the_sample_files_load() -> None:
    root = ROOT / "sample_data"
    csv = load_input(root / "campaign_settings.csv")
    parquet = load_input(root / "campaign_settings.parquet")
    assert len(csv) == len(parquet) >= 50
    assert list(csv["campaign_id"].astype(int)) == list(parquet["campaign_id"].astype(int))

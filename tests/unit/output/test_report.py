from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from bulkrunner.config.paths import check_report_path, default_report_path
from bulkrunner.errors import UsageError
from bulkrunner.model import RESULT_COLUMNS, Outcome, Rate, RunStats, Status
from bulkrunner.output.report import build_report, read_report
from bulkrunner.output.summary import Summary
from tests.fakes import write_report

WHEN = datetime(2026, 11, 26, 9, 30, 0, tzinfo=UTC)


def sample() -> tuple[pd.DataFrame, dict[int, Outcome]]:
    frame = pd.DataFrame(
        {
            "campaign_id": ["11", "12", "13"],
            "sending_limit": ["-5", "20", ""],
            "unsubscribe_text": ['=HYPERLINK("http://x")', "@SUM(A1)", "+1 click"],
        },
        dtype=object,
    )
    outcomes = {
        1: Outcome(Status.INVALID, error="sending_limit: -5 is below 0"),
        2: Outcome(Status.SUCCEEDED, 200, 1, "", 84, WHEN),
        3: Outcome(Status.FAILED, 503, 6, "-gave up", 9000, WHEN),
    }
    return frame, outcomes


def test_one_line_per_input_row_in_input_order() -> None:
    frame, outcomes = sample()
    report = build_report(frame, outcomes)
    assert list(report.columns) == [*frame.columns, *RESULT_COLUMNS]
    assert report["row"].tolist() == [1, 2, 3]
    assert report["status"].tolist() == ["invalid", "succeeded", "failed"]
    assert report["campaign_id"].tolist() == ["11", "12", "13"]
    stamp = "2026-11-26T09:30:00.000+00:00"
    assert [None if pd.isna(v) else v for v in report["finished_at"]] == [None, stamp, stamp]


def test_a_missing_outcome_is_refused_rather_than_a_row_dropped() -> None:
    frame, outcomes = sample()
    del outcomes[2]
    with pytest.raises(ValueError, match=r"no outcome for rows \[2\]"):
        build_report(frame, outcomes)


def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised(tmp_path: Path) -> None:
    frame, outcomes = sample()
    path = tmp_path / "out" / "report.csv"
    write_report(build_report(frame, outcomes), path, list(frame.columns))
    back = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert back["unsubscribe_text"].tolist() == [
        '\'=HYPERLINK("http://x")',
        "'@SUM(A1)",
        "'+1 click",
    ]
    assert back["sending_limit"].tolist() == ["-5", "20", ""]  # a negative number stays a number
    assert back["error"].tolist() == ["sending_limit: -5 is below 0", "", "'-gave up"]
    assert back["http_status"].tolist() == ["", "200", "503"]


TRICKY_CELLS = [
    "line one\rline two",  # a bare CR ends a row in CSV readers unless the cell is quoted
    "line one\nline two",
    "a\r\nb",
    "\n=cmd",  # a formula behind a line break
    "\r=cmd",
    "=1+1",
    "'=1+1",  # looks guarded already: must come back with its own quote
    "''@x",
    "-5",  # a negative number stays a number
    "'-5",
    "'",
    "'plain",
    "plain",
    "",
]


def spreadsheet_rows(path: Path) -> list[list[str]]:
    """The records a spreadsheet (or any CSV reader) sees in ``path``."""
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def test_csv_reports_round_trip_line_breaks_and_keep_the_formula_guard(tmp_path: Path) -> None:
    count = len(TRICKY_CELLS)
    frame = pd.DataFrame(
        {
            "campaign_id": [str(n) for n in range(1, count + 1)],
            "unsubscribe_text": TRICKY_CELLS,
        },
        dtype=object,
    )
    outcomes = {
        n: Outcome(Status.FAILED, 400, 1, f"HTTP 400: bad\r=cmd {n}") for n in range(1, count + 1)
    }
    columns = list(frame.columns)
    first = tmp_path / "first.csv"
    write_report(build_report(frame, outcomes), first, columns)
    back = read_report(first)
    assert back["unsubscribe_text"].tolist() == TRICKY_CELLS
    assert back["row"].tolist() == [str(n) for n in range(1, count + 1)]

    # What ``retry`` does: the report read back is the input of the next report.
    again = tmp_path / "again.csv"
    echoed = back[columns].reset_index(drop=True)
    write_report(build_report(echoed, outcomes), again, columns)
    assert read_report(again)["unsubscribe_text"].tolist() == TRICKY_CELLS
    assert again.read_bytes() == first.read_bytes()

    for path in (first, again):
        header, *records = spreadsheet_rows(path)
        assert len(records) == count  # no cell's line break split a row
        text = header.index("unsubscribe_text")
        error = header.index("error")
        for record in records:
            for cell in (record[text], record[error]):
                runnable = cell.startswith(("=", "+", "-", "@", "\t", "\r", "\n"))
                assert not runnable or cell == "-5", cell


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".json", ".jsonl"])
def test_every_format_round_trips_the_rows(tmp_path: Path, suffix: str) -> None:
    frame, outcomes = sample()
    path = tmp_path / f"report{suffix}"
    write_report(build_report(frame, outcomes), path, list(frame.columns))
    if suffix == ".csv":
        back = pd.read_csv(path)
    elif suffix == ".parquet":
        back = pd.read_parquet(path)
    else:
        text = path.read_text()
        records = (
            [json.loads(line) for line in text.splitlines()]
            if suffix == ".jsonl"
            else json.loads(text)
        )
        back = pd.DataFrame(records)
    assert back["status"].tolist() == ["invalid", "succeeded", "failed"]
    assert back["row"].tolist() == [1, 2, 3]
    assert not list(tmp_path.glob(".*.tmp"))


def test_list_cells_from_parquet_are_written_as_csv_input(tmp_path: Path) -> None:
    import numpy as np

    frame = pd.DataFrame(
        {"campaign_id": [1, 2], "track_settings": [np.array(["A", "B"]), np.array([])]}
    )
    outcomes = {1: Outcome(Status.DRY_RUN), 2: Outcome(Status.DRY_RUN)}
    path = tmp_path / "r.csv"
    write_report(build_report(frame, outcomes), path, ["campaign_id", "track_settings"])
    assert pd.read_csv(path)["track_settings"].tolist() == ["A;B", "[]"]
    json_path = tmp_path / "r.json"
    write_report(build_report(frame, outcomes), json_path, ["campaign_id", "track_settings"])
    assert [r["track_settings"] for r in json.loads(json_path.read_text())] == [["A", "B"], []]


def test_default_report_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert default_report_path(Path("data/q3 plan.csv"), WHEN) == Path(
        "reports/q3 plan-20261126T093000Z/report.csv"
    )


def test_unusable_report_paths_are_refused_up_front(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"unsupported report format '\.xlsx'"):
        check_report_path(tmp_path / "r.xlsx")
    (tmp_path / "taken.csv").mkdir()
    with pytest.raises(UsageError, match="report path is a directory"):
        check_report_path(tmp_path / "taken.csv")
    check_report_path(tmp_path / "new" / "folders" / "r.csv")  # created when written
    (tmp_path / "afile").write_text("")
    for inside in (tmp_path / "afile" / "r.csv", tmp_path / "afile" / "sub" / "r.csv"):
        with pytest.raises(UsageError, match="afile is a file, not a folder"):
            check_report_path(inside)


def test_summary_lines() -> None:
    _, outcomes = sample()
    stats = RunStats(requests=12, throttled=2, retries=4, first_request=0.0, last_answer=4.0)
    lines = Summary.of(outcomes, stats, [Rate(10, 2)], Path("reports/x.csv")).lines()
    assert lines == [
        "rows: 3 (1 succeeded, 1 failed, 1 invalid)",
        "requests: 12 sent, 4 retries, 2 answered 429, in 4.0s (3.00 requests/s)",
        "rate: 50% of the ceiling (the limits 10/2 allow 12 requests in 2.0s at best)",
        "report: reports/x.csv",
    ]


def test_the_rate_counts_the_requests_other_processes_sent_on_the_account() -> None:
    """Two jobs sharing a key: each took half the account's windows, at its ceiling together
    (each alone read as 50% of the ceiling)."""
    _, outcomes = sample()
    stats = RunStats(requests=10, first_request=0.0, last_answer=2.0, others=10)
    lines = Summary.of(outcomes, stats, [Rate(10, 2)], None).lines()
    assert lines[2] == (
        "rate: 100% of the ceiling (the limits 10/2 allow 20 requests, 10 of them other "
        "processes', in 2.0s at best)"
    )


def test_no_rate_is_quoted_for_a_single_request() -> None:
    _, outcomes = sample()
    stats = RunStats(requests=1, reads=1, first_request=0.0, last_answer=0.0034)
    lines = Summary.of(outcomes, stats, [Rate(10, 2)], None).lines()
    assert lines[1] == "requests: 1 sent (0 writes, 1 read), 0 retries, 0 answered 429, in 0.0s"
    assert not any("requests/s" in line or "ceiling" in line for line in lines)


def test_missing_cells_stay_null_in_a_parquet_report(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "campaign_id": [1, 2],
            "sending_limit": pd.array([5, None], dtype="Int64"),
            "unsubscribe_text": ["x", None],
        }
    ).astype(object)
    outcomes = {1: Outcome(Status.DRY_RUN), 2: Outcome(Status.DRY_RUN)}
    path = tmp_path / "r.parquet"
    write_report(build_report(frame, outcomes), path, list(frame.columns))
    back = pd.read_parquet(path)
    assert back["sending_limit"].tolist()[0] == 5
    assert pd.isna(back["sending_limit"].tolist()[1])  # not the text "<NA>"
    assert back["unsubscribe_text"].tolist()[0] == "x"
    assert pd.isna(back["unsubscribe_text"].tolist()[1])  # not the text "nan"

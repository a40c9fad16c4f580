"""Long files: a dry run and ``validate`` read the file a chunk at a time, and must say exactly
what they said when they read it whole. The chunks here are 7 rows, so a 50-row file crosses six
chunk boundaries, with repeated campaigns on both sides of some of them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bulkrunner.cli.app import main
from bulkrunner.input import loading
from bulkrunner.input.loading import load_input, open_input
from bulkrunner.input.validation import campaign_ids, judge_rows, repeated_among, validate
from bulkrunner.model import Outcome, Rejection, Row, Status
from bulkrunner.operations.fields import Vocabulary
from bulkrunner.output.report import build_report
from bulkrunner.output.report_writer import ReportWriter
from tests.fakes import write_report

REPORTS = (".csv", ".json", ".jsonl", ".parquet")
DRY_RUN = Outcome(Status.DRY_RUN)
Run = Callable[..., tuple[int, str, str]]


@pytest.fixture(autouse=True)
def no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SMARTLEAD_API_KEY", raising=False)


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Run:
    """``bulkrunner ARGS`` with files read ``chunk`` rows at a time: (exit code, out, err)."""

    def run_with(*argv: str, chunk: int) -> tuple[int, str, str]:
        monkeypatch.setattr(loading, "CHUNK_ROWS", chunk)
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, _without_times(err)

    return run_with


def _without_times(err: str) -> str:
    return "\n".join(line.split(" ", 1)[-1] for line in err.splitlines())


def plan_csv(path: Path) -> Path:
    """50 rows: valid ones, invalid ones, blanks, cells a spreadsheet would run, and campaigns
    repeated within a chunk and across chunk boundaries (rows 6 and 8, 3 and 45...)."""
    lines = ["campaign_id,sending_limit,follow_up_percentage,track_settings,unsubscribe_text"]
    for number in range(1, 51):
        campaign = {8: 6, 45: 3, 29: 3, 14: 15}.get(number, number)
        limit = {4: "ten", 11: "", 22: "-5", 36: "0100"}.get(number, str(number * 10))
        percentage = {5: "150", 11: "", 30: "50.5"}.get(number, "20")
        track = {2: "DONT_EMAIL_OPN", 11: "", 19: "[]", 33: "DONT_TRACK_REPLY_TO_AN_EMAIL"}.get(
            number, "DONT_EMAIL_OPEN;DONT_LINK_CLICK"
        )
        text = {1: "=HYPERLINK(x)", 7: "-opt out", 11: "", 12: '"a, b"', 40: "+1"}.get(number, "")
        cid = {17: "", 23: "abc", 31: "0", 47: " 48 "}.get(number, str(1000 + campaign))
        lines.append(f"{cid},{limit},{percentage},{track},{text}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def plan_parquet(path: Path) -> Path:
    """The same mistakes in native types, with the awkward cases of a typed file: integer
    columns whose first null is in a late chunk, a nullable (pandas) integer and boolean, a list
    column with a chunk of empty lists, and a text column blank in the whole first chunk."""
    n = 50
    ids = [1000 + {8: 6, 45: 3, 29: 3}.get(i, i) for i in range(1, n + 1)]
    frame = pd.DataFrame(
        {
            "campaign_id": pd.array(
                [None if i == 17 else c for i, c in enumerate(ids, 1)], "Int64"
            ),
            "sending_limit": [float(i * 10) if i != 44 else None for i in range(1, n + 1)],
            "follow_up_percentage": pd.array(
                [150 if i == 5 else None if i % 9 == 0 else 20 for i in range(1, n + 1)], "Int64"
            ),
            "send_as_plain_text": pd.array(
                [None if i % 4 == 0 else i % 2 == 0 for i in range(1, n + 1)], "boolean"
            ),
            "track_settings": [  # rows 15-21, a whole chunk, only empty lists and nulls
                None if i in (11, 16) else [] if 15 <= i <= 21 else ["DONT_EMAIL_OPEN"]
                for i in range(1, n + 1)
            ],
            "unsubscribe_text": [
                None if i < 10 else "=x" if i == 12 else "" for i in range(1, n + 1)
            ],
        }
    )
    table = pa.Table.from_pandas(frame, preserve_index=False)
    # Plain int64 with a null only in the last chunks: pyarrow makes the whole column floats.
    client = pa.array([None if i == 44 else 1 + i % 3 for i in range(1, n + 1)], pa.int64())
    pq.write_table(table.append_column("client_id", client), path)
    return path


@pytest.fixture(params=["csv", "parquet"])
def plan(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    make = plan_csv if request.param == "csv" else plan_parquet
    return make(tmp_path / f"plan.{request.param}")


def same_reports(first: Path, second: Path) -> None:
    if first.suffix == ".parquet":
        a, b = pq.read_table(first), pq.read_table(second)
        assert a.schema.equals(b.schema, check_metadata=True)
        assert a.equals(b)
    else:
        assert first.read_bytes() == second.read_bytes()


@pytest.mark.parametrize("suffix", REPORTS)
def test_a_chunked_dry_run_reports_exactly_what_a_whole_one_does(
    run: Run, plan: Path, tmp_path: Path, suffix: str
) -> None:
    whole, chunked = tmp_path / f"whole{suffix}", tmp_path / f"chunked{suffix}"
    by_whole = run("run", "--dry-run", "--input", str(plan), "--report", str(whole), chunk=10**6)
    by_chunks = run("run", "--dry-run", "--input", str(plan), "--report", str(chunked), chunk=7)
    assert by_chunks[0] == by_whole[0] == 1
    assert by_chunks[1].replace(str(chunked), "REPORT") == by_whole[1].replace(str(whole), "REPORT")
    assert by_chunks[2] == by_whole[2]
    same_reports(whole, chunked)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [plan.name, whole.name, chunked.name]
    )  # no temporary file left behind


@pytest.mark.parametrize("suffix", REPORTS)
def test_a_chunked_dry_run_reports_what_the_report_of_the_whole_frame_says(
    run: Run, plan: Path, tmp_path: Path, suffix: str
) -> None:
    """The reference: the whole file validated and reported in memory, as a real run does."""
    frame = load_input(plan)
    validation = validate(frame, Vocabulary.DOCUMENTED)
    outcomes = {r.number: Outcome(Status.DRY_RUN) for r in validation.rows}
    outcomes.update(
        {r.number: Outcome(Status.INVALID, error=r.error) for r in validation.rejections}
    )
    expected = tmp_path / f"expected{suffix}"
    write_report(build_report(frame, outcomes), expected, [str(c) for c in frame.columns])
    report = tmp_path / f"chunked{suffix}"
    code, _, _ = run("run", "--dry-run", "--input", str(plan), "--report", str(report), chunk=7)
    assert code == 1
    same_reports(expected, report)


def test_repeated_campaigns_are_found_across_chunks(run: Run, tmp_path: Path) -> None:
    plan = plan_csv(tmp_path / "plan.csv")
    report = tmp_path / "r.jsonl"
    run("run", "--dry-run", "--input", str(plan), "--report", str(report), chunk=7)
    rows = [json.loads(line) for line in report.read_text().splitlines()]
    errors = {row["row"]: row["error"] for row in rows}
    assert errors[6] == errors[8] == "campaign_id: 1006 appears in rows 6 and 8"
    assert errors[3].startswith("campaign_id: 1003 appears in rows 3, 29 and 45")
    assert errors[14] == "campaign_id: 1015 appears in rows 14 and 15"
    assert [row["row"] for row in rows] == list(range(1, 51))


def test_validate_prints_the_same_lines_chunked(run: Run, plan: Path) -> None:
    whole = run("validate", "--input", str(plan), chunk=10**6)
    chunked = run("validate", "--input", str(plan), chunk=7)
    assert chunked == whole
    assert whole[0] == 1
    assert whole[1].strip().endswith("invalid")


def test_a_chunked_retry_dry_run_matches_a_whole_one(run: Run, tmp_path: Path) -> None:
    earlier = tmp_path / "earlier.csv"
    run(
        "run",
        "--dry-run",
        "--input",
        str(plan_csv(tmp_path / "plan.csv")),
        "--report",
        str(earlier),
        chunk=7,
    )
    frame = pd.read_csv(earlier, dtype=str, keep_default_na=False)
    frame["status"] = ["failed" if n % 3 else "succeeded" for n in range(len(frame))]
    frame.to_csv(earlier, index=False)
    outputs = []
    for chunk in (10**6, 7):
        report = tmp_path / f"retry-{chunk}.csv"
        code, out, err = run(
            "retry", str(earlier), "--dry-run", "--report", str(report), chunk=chunk
        )
        outputs.append((code, out.replace(str(report), "R"), err, report.read_bytes()))
    assert outputs[0] == outputs[1]


# --- file-level problems: found before anything is written -------------------------------------


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{rows}9,9,9\n", "line 52 has 3 cells but the header has 2 columns"),
        ('{rows}9,"open quote\n', "cannot parse as CSV"),
        ("{rows}9,caf\x81\n", "is not text in a known encoding"),  # 0x81: not cp1252
    ],
)
@pytest.mark.parametrize("command", [["run", "--dry-run"], ["validate"]])
def test_a_problem_late_in_the_file_is_found_before_any_output(
    run: Run, tmp_path: Path, content: str, problem: str, command: list[str]
) -> None:
    rows = "".join(f"{1000 + n},{'ten' if n % 5 == 0 else n}\n" for n in range(50))
    path = tmp_path / "late.csv"
    path.write_bytes(("campaign_id,sending_limit\n" + content.format(rows=rows)).encode("latin-1"))
    report = ["--report", str(tmp_path / "out" / "r.csv")] if command[0] == "run" else []
    code, out, err = run(*command, "--input", str(path), *report, chunk=7)
    assert code == 2
    assert out == ""
    assert err.splitlines() == [err.splitlines()[0]]  # one line: no row was reported first
    assert problem in err
    assert not (tmp_path / "out").exists()


def test_a_damaged_parquet_file_is_refused_before_any_output(run: Run, tmp_path: Path) -> None:
    path = plan_parquet(tmp_path / "plan.parquet")
    path.write_bytes(path.read_bytes()[:-100] + b"\0" * 92 + path.read_bytes()[-8:])
    report = tmp_path / "r.csv"
    code, out, err = run("run", "--dry-run", "--input", str(path), "--report", str(report), chunk=7)
    assert code == 2
    assert "is not a readable Parquet file" in err
    assert out == ""
    assert not report.exists()


# --- the pieces ---------------------------------------------------------------------------------


def test_chunks_hold_the_rows_load_input_gives(plan: Path) -> None:
    whole = load_input(plan)
    source = open_input(plan)
    chunks = list(source.chunks(7))
    assert [len(c) for c in chunks] == [7] * 7 + [1]
    assert source.rows == len(whole) == 50
    joined = pd.concat(chunks, ignore_index=True)
    assert [list(map(repr, row)) for row in joined.itertuples(index=False)] == [
        list(map(repr, row)) for row in whole.itertuples(index=False)
    ]
    ids = pd.concat(list(source.chunks(7, columns=["campaign_id"])), ignore_index=True)
    assert list(map(repr, ids["campaign_id"])) == list(map(repr, whole["campaign_id"]))


def test_validation_with_an_offset_and_the_files_repeats_matches_the_whole(plan: Path) -> None:
    whole = load_input(plan)
    expected = validate(whole, Vocabulary.LONG)
    chunks = (whole["campaign_id"].iloc[i : i + 7] for i in range(0, 50, 7))
    repeats = repeated_among(campaign_ids(chunk) for chunk in chunks)
    rows: list[Row] = []
    rejections: list[Rejection] = []
    errors: list[str] = []
    for start in range(0, 50, 7):
        chunk = whole.iloc[start : start + 7].reset_index(drop=True)
        part = validate(chunk, Vocabulary.LONG, offset=start, repeats=repeats)
        rows += part.rows
        rejections += part.rejections
        errors += judge_rows(chunk, Vocabulary.LONG, offset=start, repeats=repeats).errors
    assert tuple(rows) == expected.rows
    assert tuple(rejections) == expected.rejections
    assert [e for e in errors if e] == [r.error for r in expected.rejections]


def test_repeated_ids_are_found_in_bulk() -> None:
    column = pd.Series(["5", "7", "5", "", "x", " 7", "9", "5.0", "0"], dtype=object)
    ids = [campaign_ids(column.iloc[:4]), campaign_ids(column.iloc[4:])]
    assert repeated_among(ids) == {5: [1, 3, 8], 7: [2, 6]}


def test_a_parquet_column_whose_types_cannot_be_unified_is_written_as_text(tmp_path: Path) -> None:
    path = tmp_path / "r.parquet"
    with ReportWriter(path, ["campaign_id", "client_id"]) as writer:
        for cells in ([1, 2], ["x", "y"]):
            frame = pd.DataFrame({"campaign_id": [1, 2], "client_id": cells})
            writer.write(build_report(frame, {1: DRY_RUN, 2: DRY_RUN}))
        writer.commit()
    table = pq.read_table(path)
    assert table.column("client_id").to_pylist() == ["1", "2", "x", "y"]
    assert pa.types.is_large_string(table.schema.field("client_id").type)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.parquet"]


def test_an_unfinished_report_leaves_no_file(tmp_path: Path) -> None:
    frame = pd.DataFrame({"campaign_id": [1], "track_settings": [np.array(["A"])]})
    for suffix in REPORTS:
        writer = ReportWriter(tmp_path / f"r{suffix}", ["campaign_id", "track_settings"])
        with writer:
            writer.write(build_report(frame, {1: DRY_RUN}))
        # left without commit (an exception, Ctrl-C): the temporary file is gone
    assert list(tmp_path.iterdir()) == []

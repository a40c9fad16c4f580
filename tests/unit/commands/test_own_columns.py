"""Columns that travel with the rows unsent: the user's own (``--keep-columns``, job file
``keep_columns``) and an export's ``name``. Each is accepted in the input, never sent, never
judged, and echoed in the report; every other unknown column is refused, all named at once.

Run as a user runs the command line, against the simulator on 127.0.0.1 (which answers 422 to
a field it does not know, so a carried column sent by mistake would fail its row).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from bulkrunner.errors import InputFileError
from bulkrunner.input.loading import load_input, read_input
from bulkrunner.simulator import SimulatorConfig, SimulatorThread
from tests.fakes import one_line_error, run

KEY = "sk-own-columns-SENTINEL-31"


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SMARTLEAD_API_KEY", KEY)
    monkeypatch.delenv("SMARTLEAD_BASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)


def write(tmp_path: Path, text: str, name: str = "in.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- every unknown column at once --------------------------------------------------------------


def test_every_unknown_column_is_named_in_one_error(tmp_path: Path) -> None:
    path = write(tmp_path, "campaign_id,sending_limt,notes,timezone,Owner,folow_up_percentage\n")
    path.write_text(path.read_text() + "5,5,x,UTC,ann,3\n")
    with pytest.raises(InputFileError) as caught:
        load_input(path)
    message = str(caught.value)
    assert "\n" not in message
    assert "column 'timezone' belongs to the schedule operation, not settings" in message
    assert (
        "unknown columns 'sending_limt' (did you mean 'sending_limit'?), 'notes', 'Owner', "
        "'folow_up_percentage' (did you mean 'follow_up_percentage'?)"
    ) in message
    # the two that look like no known column are most likely the user's own
    assert message.endswith(
        "to carry columns of your own into the report unsent: --keep-columns notes,Owner"
    )


def test_the_command_line_names_them_all_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "campaign_id,sending_limt,notes\n5,5,x\n")
    for command in (["validate"], ["run", "--dry-run"]):
        code, out, err = run(capsys, *command, str(path))
        assert code == 2
        line = one_line_error(err)
        assert "unknown columns 'sending_limt' (did you mean 'sending_limit'?), 'notes'" in line
        assert out == ""


# --- --keep-columns ----------------------------------------------------------------------------


def test_kept_columns_reach_the_report_unsent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path,
        "campaign_id,notes,sending_limit,Client Name\n"
        "11,raise it,40,Acme\n"
        "12,=SUM(A1),50,\n"  # a formula, a number-like text: carried as written, never judged
        "13,,oops,Globex\n",  # an invalid row keeps its own columns too
    )
    with SimulatorThread(SimulatorConfig(api_key=KEY, campaigns={11, 12, 13})) as sim:
        code, out, err = run(
            capsys, "run", str(path), "--keep-columns", "notes, client name",
            "--base-url", sim.base_url, "--report", "r.csv",
        )  # fmt: skip
        assert code == 1, out + err  # row 3 is invalid
        writes = sim.state.writes("settings")
        assert len(writes) == 2
        assert all(r.status == 200 for r in writes)  # 422 had a note been sent
        assert sim.state.settings[11]["sending_limit"] == 40
        assert "notes" not in sim.state.settings[11]
    report = pd.read_csv(tmp_path / "r.csv", dtype=str, keep_default_na=False)
    assert list(report.columns[:4]) == ["campaign_id", "notes", "sending_limit", "Client Name"]
    assert report["notes"].tolist() == ["raise it", "'=SUM(A1)", ""]  # escaped as reports do
    assert report["Client Name"].tolist() == ["Acme", "", "Globex"]
    assert report["status"].tolist() == ["succeeded", "succeeded", "invalid"]
    assert "notes" not in report["error"][2]


def test_a_job_file_keeps_columns_and_the_dry_run_shows_no_kept_column_in_a_body(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, "campaign_id,sending_limit,notes,owner\n11,40,hello,ann\n")
    (tmp_path / "job.toml").write_text(
        'input = "in.csv"\nkeep_columns = ["notes", "owner"]\nreport = "r.csv"\n'
    )
    code, out, err = run(capsys, "run", "job.toml", "--dry-run")
    assert code == 0, out + err
    assert '"sending_limit": 40' in out
    assert "hello" not in out
    assert "ann" not in out
    report = pd.read_csv(tmp_path / "r.csv", dtype=str)
    assert report[["notes", "owner"]].values.tolist() == [["hello", "ann"]]
    code, out, err = run(capsys, "validate", "job.toml")
    assert code == 0, out + err


def test_a_kept_column_may_be_absent_and_is_matched_forgivingly(tmp_path: Path) -> None:
    path = write(tmp_path, "campaign_id,sending_limit,Client-Name\n11,40,7\n")
    with pytest.raises(InputFileError, match="'Client-Name'"):
        read_input(path)
    frame, _ = read_input(path, keep=("client name", "absent"))
    assert list(frame.columns) == ["campaign_id", "sending_limit", "Client-Name"]


@pytest.mark.parametrize(
    ("kept", "said"),
    [
        ("sending_limit", "'sending_limit' is the settings operation's column sending_limit"),
        ("Time Zone", "'Time Zone' is the schedule operation's column timezone"),
        ("campaign id", "'campaign id' is the campaign_id column"),
        ("account", "'account' is the account column"),
    ],
)
def test_a_column_bulkrunner_reads_cannot_be_kept(
    kept: str, said: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "campaign_id,sending_limit\n11,40\n")
    code, _, err = run(capsys, "validate", str(path), "--keep-columns", kept)
    assert code == 2
    line = one_line_error(err)
    assert said in line
    assert "keep columns carries only columns of your own" in line


def test_a_retry_of_a_report_with_kept_columns_finds_its_operation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A report echoes the kept columns; retried without --operation, its operation is still
    found from the columns it sends, and the kept ones travel on to the retry's report."""
    path = write(tmp_path, "campaign_id,status,notes\n11,PAUSED,first\n12,PAUSED,second\n")
    with SimulatorThread(SimulatorConfig(api_key=KEY, campaigns={11})) as sim:
        url = ("--base-url", sim.base_url)
        args = ("--operation", "status", "--keep-columns", "notes", "--report", "r.csv")
        code, out, err = run(capsys, "run", str(path), *args, *url)
        assert code == 1, out + err  # campaign 12 does not exist
        code, out, err = run(capsys, "retry", "r.csv", "--report", "again.csv", *url)
        assert code == 1, out + err
        assert "its columns are those of the status operation" in err
    again = pd.read_csv(tmp_path / "again.csv", dtype=str)
    assert again[["campaign_id", "notes"]].values.tolist() == [["12", "second"]]


# --- an export's name --------------------------------------------------------------------------


def test_a_name_column_is_read_never_sent_never_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path,
        "campaign_id,Name,sending_limit\n11,Spring launch,40\n12,,50\n13,12345,60\n"
        "14,=cmd|' /C calc'!A0,70\n",
    )
    with SimulatorThread(SimulatorConfig(api_key=KEY, campaigns={11, 12, 13, 14})) as sim:
        url = ("--base-url", sim.base_url)
        code, out, err = run(capsys, "run", str(path), *url, "--report", "r.csv")
        assert code == 0, out + err
        assert len(sim.state.writes("settings")) == 4
        assert all(r.status == 200 for r in sim.state.writes("settings"))
    report = pd.read_csv(tmp_path / "r.csv", dtype=str, keep_default_na=False)
    # (read as the column name, as every known header is)
    assert report["name"].tolist() == ["Spring launch", "", "12345", "'=cmd|' /C calc'!A0"]
    assert set(report["status"]) == {"succeeded"}


def test_a_row_with_only_a_name_has_nothing_to_send(tmp_path: Path) -> None:
    path = write(tmp_path, "campaign_id,name,sending_limit\n11,Spring,\n")
    frame, _ = read_input(path)
    from bulkrunner.input.validation import validate
    from bulkrunner.operations.fields import Vocabulary

    (rejection,) = validate(frame, Vocabulary.DOCUMENTED).rejections
    assert "name" not in rejection.error


def test_the_python_api_keeps_columns_and_exports_names(tmp_path: Path) -> None:
    import bulkrunner

    with SimulatorThread(SimulatorConfig(api_key=KEY, campaigns={11, 12})) as sim:
        current = bulkrunner.export(base_url=sim.base_url)
        assert current["name"].tolist() == ["Campaign 11", "Campaign 12"]
        current["notes"] = ["slow it down", None]
        current.loc[0, "sending_limit"] = 5
        report = bulkrunner.apply(current, base_url=sim.base_url, keep_columns=["notes"])
        assert report["status"].tolist() == ["succeeded", "unchanged"]
        assert report["notes"].tolist()[0] == "slow it down"
        assert report["name"].tolist() == ["Campaign 11", "Campaign 12"]
        assert [r.campaign_id for r in sim.state.writes()] == [11]

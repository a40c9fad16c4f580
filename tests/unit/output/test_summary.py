"""At the end of a run the terminal lists the first failed or invalid rows with their reasons (up
to ten, then how many more), not only the report's path; ``-v`` logs each request's body as JSON,
as the dry run's preview shows it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bulkrunner.simulator import SimulatorConfig, SimulatorThread
from tests.fakes import run

KEY = "sk-failed-rows-SENTINEL-31"
FAST = ("--rate", "1000/1")


@pytest.fixture(autouse=True)
def key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMARTLEAD_API_KEY", KEY)


def plan(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "plan.csv"
    path.write_text("campaign_id,sending_limit\n" + "\n".join(lines) + "\n")
    return path


def test_the_first_ten_failed_or_invalid_rows_are_listed_with_their_reasons(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # rows 1-2 fine, 3 invalid, 4-13 of campaigns the account does not have (404), 14 invalid
    lines = ["1,10", "2,20", "3,ten", *(f"{900 + n},5" for n in range(10)), "14,-1"]
    report = tmp_path / "r.csv"
    with SimulatorThread(SimulatorConfig(api_key=KEY, campaigns={1, 2, 3, 14})) as sim:
        code, out, _ = run(
            capsys, "run", str(plan(tmp_path, lines)), "--base-url", sim.base_url,
            "--report", str(report), *FAST,
        )  # fmt: skip
    assert code == 1
    listed = out[: out.index("rows: 14")].splitlines()  # before the summary
    assert listed[0] == "12 rows failed or were invalid:"
    assert listed[1].startswith("  row 3 (campaign 3): invalid: sending_limit: 'ten'")
    assert listed[2].startswith("  row 4 (campaign 900): failed: ")
    assert "not found" in listed[2]
    assert [line.split(" (")[0] for line in listed[1:11]] == [f"  row {n}" for n in range(3, 13)]
    assert listed[11] == f"  ... and 2 more in the report {report}"
    assert len(listed) == 12


def test_a_run_whose_rows_all_succeed_lists_none(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with SimulatorThread(SimulatorConfig(api_key=KEY)) as sim:
        code, out, _ = run(
            capsys, "run", str(plan(tmp_path, ["1,10"])), "--base-url", sim.base_url, *FAST
        )
    assert code == 0
    assert "failed or" not in out
    assert out.startswith("rows: 1 (1 succeeded)")


def test_in_json_mode_the_list_is_one_failed_rows_object(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with SimulatorThread(SimulatorConfig(api_key=KEY, campaigns={1})) as sim:
        code, out, _ = run(
            capsys, "run", str(plan(tmp_path, ["1,10", "2,x"])), "--base-url", sim.base_url,
            "--log-format", "json", *FAST,
        )  # fmt: skip
    assert code == 1
    (listed,) = [
        e for line in out.splitlines() if (e := json.loads(line))["event"] == "failed_rows"
    ]
    assert listed["total"] == 1
    assert listed["rows"] == [
        {
            "row": 2,
            "campaign_id": "2",
            "status": "invalid",
            "error": "sending_limit: 'x' is not a whole number",
        }
    ]
    assert listed["message"].startswith("1 row failed or was invalid:; ")


def test_with_v_each_request_body_is_logged_as_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "plan.csv"
    source.write_text(
        'campaign_id,track_settings,unsubscribe_text\n7,DONT_EMAIL_OPEN,"Adiós, ciao"\n'
    )
    with SimulatorThread(SimulatorConfig(api_key=KEY)) as sim:
        code, _, err = run(capsys, "run", str(source), "--base-url", sim.base_url, "-v", *FAST)
    assert code == 0
    body = '{"track_settings": ["DONT_EMAIL_OPEN"], "unsubscribe_text": "Adiós, ciao"}'
    assert f"row 1: POST /campaigns/7/settings {body}" in err
    assert KEY not in err

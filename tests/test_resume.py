"""Resume, rollback and retry are runs like any other: the journal knows its input, hints work
when pasted, overlapping runs are refused, and a report round-trips to exactly what was sent."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from bulkrunner.cli import main
from bulkrunner.fields import Vocabulary
from bulkrunner.simulator import SimulatorConfig, SimulatorThread
from bulkrunner.simulator.state import default_settings
from bulkrunner.validation import validate

KEY = "sk-resume-SENTINEL-31cd"


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMARTLEAD_API_KEY", KEY)
    monkeypatch.delenv("SMARTLEAD_BASE_URL", raising=False)


@pytest.fixture
def sim() -> Iterator[SimulatorThread]:
    with SimulatorThread(SimulatorConfig(api_key=KEY)) as running:
        yield running


def preset(sim: SimulatorThread, campaign_id: int, **settings: Any) -> None:
    """Give a simulated campaign settings other than its defaults."""
    sim.state.settings[campaign_id] = {**default_settings(campaign_id), **settings}


# --- a report round-trips to exactly what the earlier run would have sent ---------------------


def test_a_csv_cell_of_two_double_quotes_is_an_explicitly_empty_text() -> None:
    frame = pd.DataFrame(
        {"campaign_id": ["1", "2"], "unsubscribe_text": ['""', ""], "sending_limit": ["", "5"]},
        dtype=object,
    )
    rows = validate(frame, Vocabulary.DOCUMENTED).rows
    assert [dict(row.payload) for row in rows] == [{"unsubscribe_text": ""}, {"sending_limit": 5}]


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".json", ".jsonl"])
def test_retry_sends_explicitly_empty_values_as_the_earlier_run_would_have(
    tmp_path: Path, suffix: str
) -> None:
    source = tmp_path / "plan.parquet"
    pd.DataFrame(
        {
            "campaign_id": [1, 2],
            "unsubscribe_text": ["", None],  # row 1: set it empty; row 2: leave it
            "track_settings": [[], None],  # row 1: track everything; row 2: leave it
            "sending_limit": [None, 30],
        }
    ).to_parquet(source)
    first = tmp_path / f"first{suffix}"
    with SimulatorThread(SimulatorConfig(api_key=KEY, campaigns={99})) as missing:
        argv = ["run", "--input", str(source), "--report", str(first)]
        assert main([*argv, "--base-url", missing.base_url]) == 1  # both rows: 404, failed

    with SimulatorThread(SimulatorConfig(api_key=KEY)) as sim:
        for campaign_id in (1, 2):
            preset(sim, campaign_id, unsubscribe_text="Keep me", track_settings=["DONT_LINK_CLICK"])
        second = tmp_path / "second.csv"
        argv = ["retry", str(first), "--report", str(second), "--base-url", sim.base_url]
        assert main(argv) == 0
        one, two = sim.state.settings[1], sim.state.settings[2]
    assert (one["unsubscribe_text"], one["track_settings"]) == ("", [])
    assert (two["unsubscribe_text"], two["track_settings"]) == ("Keep me", ["DONT_LINK_CLICK"])
    assert two["sending_limit"] == 30


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_report_is_a_valid_input_file(
    tmp_path: Path, sim: SimulatorThread, capsys: pytest.CaptureFixture[str], suffix: str
) -> None:
    source = tmp_path / "plan.csv"
    source.write_text(
        "campaign_id,sending_limit,unsubscribe_text\n1,10,=ok\n2,20,\n3,30,-opt out\n"
    )
    report = tmp_path / f"preview{suffix}"
    assert main(["run", "--input", str(source), "--report", str(report), "--dry-run"]) == 0
    assert main(["validate", "--input", str(report)]) == 0
    assert f"{report}: 3 rows, 3 valid, 0 invalid" in capsys.readouterr().out

    preset(sim, 2, unsubscribe_text="Keep me")
    applied = tmp_path / "applied.csv"
    argv = ["run", "--input", str(report), "--report", str(applied), "--base-url", sim.base_url]
    assert main(argv) == 0
    settings = sim.state.settings
    assert [settings[n]["unsubscribe_text"] for n in (1, 2, 3)] == ["=ok", "Keep me", "-opt out"]
    assert [settings[n]["sending_limit"] for n in (1, 2, 3)] == [10, 20, 30]
    written = pd.read_csv(applied, dtype=str, keep_default_na=False)
    assert list(written.columns[:3]) == ["campaign_id", "sending_limit", "unsubscribe_text"]
    assert written["status"].tolist() == ["succeeded"] * 3

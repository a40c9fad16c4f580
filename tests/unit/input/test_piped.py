"""``--input -`` reads the input from standard input, kept as a file named by its content; and
``export --output -`` writes the export, CSV, on standard output with every other line on
standard error, so that ``bulkrunner export --output - > x.csv`` is a clean file and the two
can be piped into each other. Against the simulator on 127.0.0.1."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from bulkrunner.input.piped import save_piped
from bulkrunner.simulator import SimulatorConfig, SimulatorThread
from tests.fakes import one_line_error, run

KEY = "sk-streams-SENTINEL-64"
CSV = b"campaign_id,sending_limit\n11,40\n12,50\n"


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SMARTLEAD_API_KEY", KEY)
    monkeypatch.delenv("SMARTLEAD_BASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)


def pipe_in(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    """Standard input as a pipe holding ``data``."""
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))


def kept(folder: Path) -> list[str]:
    """The inputs kept in ``folder`` (not the reports named after them)."""
    named = re.compile(r"stdin-[0-9a-f]{16}\.(csv|parquet)")
    return sorted(p.name for p in folder.glob("stdin-*") if named.fullmatch(p.name))


# --- --input - ---------------------------------------------------------------------------------


def test_a_piped_input_is_run_and_kept_as_a_file_named_by_its_content(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with SimulatorThread(SimulatorConfig(api_key=KEY, campaigns={11, 12})) as sim:
        pipe_in(monkeypatch, CSV)
        code, out, err = run(capsys, "run", "--input", "-", "--base-url", sim.base_url)
        assert code == 0, out + err
        assert sim.state.settings[11]["sending_limit"] == 40
        (saved,) = kept(tmp_path / "reports")
        assert saved.startswith("stdin-")
        assert saved.endswith(".csv")
        assert (tmp_path / "reports" / saved).read_bytes() == CSV
        report = next((tmp_path / "reports").glob("stdin-*-2*/report.csv"))  # named after it
        assert pd.read_csv(report)["status"].tolist() == ["succeeded", "succeeded"]
        # the same content again is the same input file; other content another
        pipe_in(monkeypatch, CSV)
        code, out, err = run(capsys, "run", "-", "--base-url", sim.base_url)
        assert code == 0, out + err
        assert kept(tmp_path / "reports") == [saved]
        pipe_in(monkeypatch, CSV.replace(b"40", b"41"))
        assert run(capsys, "run", "-", "--base-url", sim.base_url)[0] == 0
        assert len(kept(tmp_path / "reports")) == 2


def test_the_hints_of_a_piped_input_name_the_file_it_was_kept_in(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What was piped in is gone when a hint is pasted: the resume command names its file."""
    with SimulatorThread(SimulatorConfig(api_key="another-key", campaigns={11, 12})) as sim:
        pipe_in(monkeypatch, CSV)
        code, out, err = run(capsys, "run", "-", "--base-url", sim.base_url, "--report", "r.csv")
    assert code == 3, out + err  # the key is refused: resumable
    (saved,) = kept(tmp_path)  # beside the report
    (hint,) = [line for line in out.splitlines() if "--resume" in line]
    assert f"bulkrunner run {saved} --base-url" in hint
    assert " - " not in hint


def test_a_piped_input_is_kept_beside_the_report_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pipe_in(monkeypatch, CSV)
    code, out, err = run(capsys, "run", "-", "--dry-run", "--report", "out/r.csv")
    assert code == 0, out + err
    assert len(kept(tmp_path / "out")) == 1
    assert not (tmp_path / "reports").exists()


def test_a_piped_parquet_file_is_read_as_parquet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    buffer = io.BytesIO()
    pd.DataFrame({"campaign_id": [11], "sending_limit": [7]}).to_parquet(buffer)
    pipe_in(monkeypatch, buffer.getvalue())
    code, out, err = run(capsys, "validate", "-")
    assert code == 0, out + err
    (saved,) = kept(tmp_path / "reports")
    assert saved.endswith(".parquet")
    assert "1 row, 1 valid, 0 invalid" in out


def test_a_job_file_may_read_its_input_from_standard_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "job.toml").write_text('input = "-"\n')
    pipe_in(monkeypatch, b"campaign_id,sending_limit\n11,abc\n")
    code, out, _ = run(capsys, "validate", "jobs/job.toml")
    assert code == 1
    assert "stdin-" in out
    assert "sending_limit: 'abc' is not a whole number" in out


@pytest.mark.parametrize(
    ("data", "problem"),
    [(b"", "standard input is empty"), (b"sending_limit\n5\n", "no 'campaign_id' column")],
)
def test_nothing_or_a_bad_file_piped_is_one_line_exit_2(
    data: bytes,
    problem: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pipe_in(monkeypatch, data)
    code, out, err = run(capsys, "run", "--input", "-", "--dry-run")
    assert code == 2
    assert problem in one_line_error(err)
    assert out == ""


# --- export --output - -------------------------------------------------------------------------


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_an_export_to_standard_output_is_the_csv_alone(
    log_format: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with SimulatorThread(SimulatorConfig(api_key=KEY, campaigns={11, 12})) as sim:
        words = ["export", "--base-url", sim.base_url, "--output", "-", "--log-format", log_format]
        code, out, err = run(capsys, *words)
        assert code == 0, err
        (tmp_path / "x.csv").write_text(out)
        frame = pd.read_csv(tmp_path / "x.csv")
        assert frame["campaign_id"].tolist() == [11, 12]
        assert list(frame.columns[:2]) == ["campaign_id", "name"]
        if log_format == "json":
            summary = [json.loads(line) for line in err.splitlines() if '"summary"' in line]
            assert summary[0]["output"] == "-"
        else:
            assert "exported 2 campaigns (settings) to standard output" in err
        assert not list(tmp_path.glob("exports/*"))  # no file written
        # and it runs back unchanged
        code, out, err = run(capsys, "run", "x.csv", "--base-url", sim.base_url)
        assert code == 0, out + err
        assert sim.state.writes() == []


def test_an_export_that_cannot_be_read_writes_nothing_on_standard_output(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(capsys, "export", "--base-url", "http://127.0.0.1:9/api", "--output", "-")
    assert code == 3
    assert out == ""
    assert "export aborted" in err


@pytest.mark.skipif(not hasattr(signal, "SIGTERM"), reason="no SIGTERM")
def test_sigterm_while_standard_input_is_kept_leaves_no_temporary_file(tmp_path: Path) -> None:
    """A producer that never ends, and a scheduler's SIGTERM: the copy is removed as it is on
    Ctrl-C (SIGTERM's own action left a hidden file of hundreds of MB, for good)."""

    class Endless(io.RawIOBase):
        reads = 0

        def isatty(self) -> bool:
            return False

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            self.reads += 1
            if self.reads == 3:
                os.kill(os.getpid(), signal.SIGTERM)
            buffer[:9] = b"1,2\n3,4\n\n"
            return 9

    previous = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt):
        save_piped(io.BufferedReader(Endless()), tmp_path / "reports")
    assert list((tmp_path / "reports").iterdir()) == []
    assert signal.getsignal(signal.SIGTERM) is previous

"""The Python API as the command line: a DataFrame is judged as a file is (its blank rows
ignored), what is said of it names "the DataFrame" (not the file it is kept in), ``quiet=True``
prints nothing, and ``help(bulkrunner.apply)`` lists every option with its types and default,
made from the options' one declaration."""

from __future__ import annotations

import logging
import math
import os
import pydoc
import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

import bulkrunner
from bulkrunner.config.run_config import OPTIONS
from bulkrunner.errors import UsageError
from bulkrunner.simulator import SimulatorConfig, SimulatorThread

KEY = "sk-parity-SENTINEL-44"


def help_text(function: Callable[..., object]) -> tuple[str, str]:
    """What ``help(function)`` prints, without its bold, and the signature it shows on one line
    (Python 3.13 shows a long one a parameter a line)."""
    shown = pydoc.plain(pydoc.render_doc(function))
    lines, depth = [], 0
    for line in shown.splitlines()[2:]:
        lines.append(line.strip())
        depth += line.count("(") - line.count(")")
        if depth <= 0:
            break
    return shown, " ".join(lines).replace("( ", "(").replace(", )", ")")


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No key unless a test gives one: ``plan`` without one is the offline dry run."""
    monkeypatch.delenv("SMARTLEAD_API_KEY", raising=False)
    monkeypatch.delenv("SMARTLEAD_BASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)


def test_the_blank_rows_of_a_dataframe_are_ignored_as_a_files_are(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SMARTLEAD_API_KEY", KEY)
    frame = pd.DataFrame(
        {
            "campaign_id": [11, None, 12, math.nan, None],
            "sending_limit": [40, None, 41, None, None],
            "unsubscribe_text": [None, "  ", None, None, ""],
        }
    )
    with SimulatorThread(SimulatorConfig(api_key=KEY, campaigns={11, 12})) as sim:
        report = bulkrunner.apply(frame, base_url=sim.base_url, rate=["100/1"])
    assert report["status"].tolist() == ["succeeded", "succeeded"]
    assert report["row"].tolist() == [1, 2]  # numbered as a file's rows are: blanks not counted
    assert report.attrs["blank_rows"] == 3
    assert report.attrs["exit_code"] == 0


def test_what_is_said_of_a_dataframe_names_it_not_its_file(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with pytest.raises(UsageError) as refused:
        bulkrunner.apply(pd.DataFrame({"campaign_id": [1], "sending_limt": [3]}), dry_run=True)
    message = str(refused.value)
    assert message.startswith("the DataFrame: unknown column 'sending_limt'")
    assert "frame-" not in message

    with caplog.at_level(logging.WARNING, logger="bulkrunner"):
        planned = bulkrunner.apply(
            pd.DataFrame({"campaign_id": [1, 2], "sending_limit": [3, -1]}), dry_run=True
        )
    assert planned["status"].tolist() == ["dry_run", "invalid"]
    said = [record.getMessage() for record in caplog.records]
    assert (
        "the DataFrame row 2 is invalid and will not be sent: sending_limit: -1 is below 0" in said
    )
    assert not [line for line in said if "frame-" in line]


def test_quiet_prints_nothing(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMARTLEAD_API_KEY", KEY)
    frame = pd.DataFrame({"campaign_id": [11, 12], "sending_limit": [40, -5]})
    with SimulatorThread(SimulatorConfig(api_key=KEY, campaigns={11, 12})) as sim:
        report = bulkrunner.apply(frame, base_url=sim.base_url, quiet=True)
        planned = bulkrunner.plan(frame, base_url=sim.base_url, quiet=True)
        exported = bulkrunner.export(base_url=sim.base_url, quiet=True)
    assert report["status"].tolist() == ["succeeded", "invalid"]
    assert planned["status"].tolist() == ["unchanged", "invalid"]
    assert len(exported) == 2
    out, err = capsys.readouterr()
    assert (out, err) == ("", "")
    # and without it, the summary is printed, as the command prints it
    with SimulatorThread(SimulatorConfig(api_key=KEY, campaigns={11, 12})) as sim:
        bulkrunner.plan(frame, base_url=sim.base_url)
    assert "rows: 2 (1 invalid, 1 dry_run)" in capsys.readouterr().out


@pytest.mark.parametrize(("function", "command"), [("apply", "run"), ("plan", "plan")])
def test_help_lists_every_option_with_its_types_and_default(function: str, command: str) -> None:
    shown, signature = help_text(getattr(bulkrunner, function))
    taken = [o for o in OPTIONS if command in o.commands and o.key not in ("input", "operation")]
    assert len(taken) > 20
    for each in taken:
        assert re.search(rf"\b{each.key}: '[^']+' = ", signature), each.key
        assert f"\n        {each.key}: " in shown, each.key
    assert "rate: 'list | str | tuple' = ['10/2', '60/60', '1000/3600']" in signature
    assert "max_attempts: 'int' = 6" in signature
    assert "report: 'str | os.PathLike' = None" in signature
    assert "verify: read each changed campaign back" in shown


def test_export_help_lists_its_own_options() -> None:
    _, signature = help_text(bulkrunner.export)
    assert "status: 'str' = None" in signature
    assert "client_id: 'int' = None" in signature
    assert "verify" not in signature  # a run's option, not export's


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="names a descriptor's file by /proc")
def test_the_dataframes_file_is_flushed_to_disk_before_it_is_used(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Written as every file bulkrunner replaces is: flushed, then renamed into place."""
    synced: list[str] = []
    real = os.fsync

    def fsync(descriptor: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{descriptor}"))
        real(descriptor)

    monkeypatch.setattr(os, "fsync", fsync)
    planned = bulkrunner.apply(
        pd.DataFrame({"campaign_id": [1], "sending_limit": [3]}), dry_run=True
    )
    assert planned["status"].tolist() == ["dry_run"]
    (kept,) = (tmp_path / "reports").glob("frame-*.parquet")
    assert any(Path(name).name.startswith(f".{kept.name}") for name in synced), synced

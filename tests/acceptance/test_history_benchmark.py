"""The run history's benchmark (``benchmarks/history.py``) in its smoke mode: it must keep
running and print every figure. No figure is asserted."""

from __future__ import annotations

import re

import pytest

from benchmarks.history import main


@pytest.mark.slow
@pytest.mark.acceptance  # a few seconds of runs on the simulator: CI runs it apart
def test_the_history_benchmark_runs_and_prints_every_figure(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--smoke"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")][2:]
    scenarios = {row.split(" | ")[0].removeprefix("| ") for row in rows}
    assert len(scenarios) == 4, scenarios
    assert len(rows) == 9
    for row in rows:
        assert re.search(r"\| [-+]?\d[\d.,]*", row), row

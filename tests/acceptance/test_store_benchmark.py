"""The state store's benchmark (``benchmarks/ledger.py``) in its smoke mode: it must keep
running and print every figure. No figure is asserted."""

from __future__ import annotations

import re

import pytest

from benchmarks.ledger import main


@pytest.mark.slow
@pytest.mark.acceptance  # about 10 s of processes posting to the simulator: CI runs it apart
def test_the_ledger_benchmark_runs_and_prints_every_figure(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--smoke"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")][2:]
    scenarios = {row.split(" | ")[0].removeprefix("| ") for row in rows}
    assert len(scenarios) == 5, scenarios
    for row in rows:
        assert re.search(r"\| [-+]?\d[\d.,]*", row), row

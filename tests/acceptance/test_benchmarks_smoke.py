"""The benchmark suite in its smoke mode: it must keep running. No figure is asserted."""

from __future__ import annotations

import re

import pytest

from benchmarks.run import SCENARIOS, main


@pytest.mark.slow
@pytest.mark.acceptance  # about 25 s of benchmarks: CI runs it after the suite
def test_the_benchmark_suite_runs_and_prints_every_figure(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--smoke"]) == 0
    table = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    for name in SCENARIOS:
        rows = [line for line in table if line.startswith(f"| {name} |")]
        assert rows, name
        for row in rows:
            assert re.search(r"\| -?\d+(\.\d+)? \|", row), row

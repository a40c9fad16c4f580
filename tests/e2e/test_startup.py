"""Start-up and large files: each command imports only the heavy libraries it
uses, and a CSV file is parsed at most twice per validate or dry run.

Not timed: each test runs a fresh interpreter and looks at ``sys.modules`` afterwards, which
is what start-up time follows from (pandas, pyarrow, aiohttp and rich take most of a second).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("pandas", "pyarrow", "numpy", "aiohttp", "rich")

_PROBE = """
import contextlib, io, json, sys
from bulkrunner.cli.app import main
argv = json.loads(sys.argv[1])
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    try:
        code = main(argv) if argv is not None else 0
    except SystemExit as exit:
        code = exit.code
print(json.dumps({"code": code, "modules": sorted(m for m in sys.modules if "." not in m)}))
"""


def _imported(argv: list[str] | None, cwd: Path) -> tuple[object, set[str]]:
    """Run ``main(argv)`` (or only import the CLI) in a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(argv)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    answer = json.loads(done.stdout)
    return answer["code"], set(answer["modules"])


@pytest.mark.parametrize(
    "argv",
    [None, ["--help"], ["run", "--help"], ["validate", "--help"], ["simulate", "--help"]],
    ids=["import", "help", "run-help", "validate-help", "simulate-help"],
)
def test_help_imports_no_heavy_library(argv: list[str] | None, tmp_path: Path) -> None:
    code, modules = _imported(argv, tmp_path)
    assert code == 0
    assert modules.isdisjoint(HEAVY), sorted(modules & set(HEAVY))


def test_importing_the_package_imports_no_heavy_library(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import sys, bulkrunner; print(' '.join(sys.modules))"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert set(done.stdout.split()).isdisjoint(HEAVY)


def test_the_public_names_still_resolve_on_first_use(tmp_path: Path) -> None:
    import bulkrunner
    from bulkrunner.api import apply
    from bulkrunner.errors import ExitCode

    assert bulkrunner.ExitCode is ExitCode
    assert bulkrunner.apply is apply
    with pytest.raises(AttributeError, match="no_such_name"):
        bulkrunner.no_such_name  # noqa: B018


def test_validate_of_a_small_csv_file_imports_no_heavy_library(tmp_path: Path) -> None:
    (tmp_path / "ten.csv").write_text(
        "campaign_id,sending_limit\n" + "".join(f"{i},50\n" for i in range(1, 11))
    )
    code, modules = _imported(["validate", "ten.csv"], tmp_path)
    assert code == 0
    unused = {*HEAVY, "anyio"}  # a small CSV file is read with the csv module
    assert modules.isdisjoint(unused), sorted(modules & unused)


@pytest.mark.parametrize("name", ["large.csv", "small.parquet"])
def test_validate_of_a_large_csv_or_a_parquet_file_reads_it_with_pandas(
    tmp_path: Path, name: str
) -> None:
    import pandas as pd

    from bulkrunner.commands.validate import SMALL_CSV_BYTES

    rows = SMALL_CSV_BYTES // 10 if name.endswith(".csv") else 10  # "123456,50\n": 10 bytes
    frame = pd.DataFrame({"campaign_id": range(100_000, 100_000 + rows), "sending_limit": 50})
    if name.endswith(".csv"):
        frame.to_csv(tmp_path / name, index=False)
        assert (tmp_path / name).stat().st_size > SMALL_CSV_BYTES
    else:
        frame.to_parquet(tmp_path / name)
    code, modules = _imported(["validate", name], tmp_path)
    assert code == 0
    assert "pandas" in modules
    unused = {"aiohttp", "rich", "anyio"}  # sending's, the progress bar's, the engine's
    assert modules.isdisjoint(unused), sorted(modules & unused)


# --- large files: a CSV file is parsed at most twice per validate or dry run -------------------


def _counting_parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    import pandas as pd

    import bulkrunner.input.loading

    parses: list[str] = []
    real = pd.read_csv

    def read_csv(path: object, *args: object, **kwargs: object) -> object:
        parses.append(str(path))
        return real(path, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(pd, "read_csv", read_csv)
    monkeypatch.setattr(bulkrunner.input.loading, "CHUNK_ROWS", 3)  # several chunks, even here
    return parses


def _plan(tmp_path: Path) -> Path:
    """Ten rows and a blank line; campaign 5 is on data rows 2 and 9, in different chunks."""
    lines = ["campaign_id,sending_limit"]
    lines += [f"{cid},50" for cid in (1, 5, 2, 3, 4)] + [","]
    lines += [f"{cid},50" for cid in (6, 7, 8, 5, 9)]
    path = tmp_path / "plan.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_validate_parses_a_csv_file_twice_and_still_finds_repeated_campaigns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bulkrunner.cli.app import main
    from bulkrunner.commands.validate import PATH_ENV

    monkeypatch.setenv(PATH_ENV, "pandas")  # a file this small is read without pandas else
    parses = _counting_parses(monkeypatch)
    assert main(["validate", str(_plan(tmp_path))]) == 1
    out = capsys.readouterr().out
    assert len(parses) == 2, parses
    assert "row 2: campaign_id: 5 appears in rows 2 and 9" in out
    assert "row 9: campaign_id: 5 appears in rows 2 and 9" in out
    assert "10 rows, 8 valid, 2 invalid" in out


def test_a_dry_run_parses_a_csv_file_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bulkrunner.cli.app import main

    parses = _counting_parses(monkeypatch)
    report = tmp_path / "dry.csv"
    assert main(["run", "--dry-run", str(_plan(tmp_path)), "--report", str(report)]) == 1
    capsys.readouterr()
    assert len(parses) == 2, parses
    with report.open() as handle:
        lines = handle.read().splitlines()
    assert len(lines) == 11
    assert sum("appears in rows 2 and 9" in line for line in lines) == 2


# --- large files: a real run's report is built and written a few thousand rows at a time --------


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".json", ".jsonl"])
def test_a_report_written_in_chunks_is_the_report_written_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    from datetime import UTC, datetime

    import pandas as pd

    from bulkrunner.commands.reporting import write_report as chunked_report
    from bulkrunner.input.loading import InputFile
    from bulkrunner.model import Change, Clock, Numbering, Outcome, Status
    from bulkrunner.output.report import build_report, cell_types
    from tests.fakes import write_report

    when = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)
    frame = pd.DataFrame(
        {
            "campaign_id": [str(100 + n) for n in range(7)],
            "sending_limit": ["10", "", "=1+1", "40", "50", "x", "70"],
            "send_as_plain_text": [None, True, False, None, "yes", True, None],  # mixed types
        },
        dtype=object,
    )
    outcomes = {
        n: Outcome(Status.SUCCEEDED, 200, 1, "", 12, when)
        if n % 3
        else Outcome(Status.FAILED, 503, 6, f"HTTP 503 on row {n}", 900, when)
        for n in range(1, 8)
    }
    changes = {n: {"sending_limit": Change(n, n * 10)} for n in (1, 2, 5, 7)}
    numbers = [3, 5, 8, 13, 21, 34, 55]  # a retry: the rows' numbers in the original file
    columns = list(frame.columns)
    whole = tmp_path / f"whole{suffix}"
    write_report(build_report(frame, outcomes, numbers, changes), whole, columns)
    chunked = tmp_path / f"chunked{suffix}"
    by_number = dict(zip(numbers, range(1, 8), strict=True))

    def results(
        offset: int, chunk: pd.DataFrame
    ) -> tuple[dict[int, Outcome], dict[int, dict[str, Change]]]:
        shown = numbers[offset : offset + len(chunk)]
        return (
            {n: outcomes[by_number[n]] for n in shown},
            {n: changes[by_number[n]] for n in shown if by_number[n] in changes},
        )

    written = chunked_report(
        InputFile.of(chunked, frame),
        Numbering(numbers),
        results,
        chunked,
        Clock(wall=lambda: when),
        rows=3,  # chunks of 3, 3 and 1 rows
        examples=lambda: cell_types([frame], columns),
    )
    assert written == chunked
    if suffix == ".parquet":
        assert pd.read_parquet(chunked).equals(pd.read_parquet(whole))
    else:
        assert chunked.read_bytes() == whole.read_bytes()
    assert not list(tmp_path.glob(".*.tmp"))


# What only running a command needs (`bulkrunner --help` should take about 0.15 s): a few
# milliseconds each, and with what they import in turn most of what --help took.
RUNNING_ONLY = (
    "typing",
    "logging",
    "json",
    "datetime",
    "pathlib",
    "urllib",
    "traceback",
    "tomllib",
    "difflib",
    "bulkrunner.output.events",
    "bulkrunner.config.redaction",
    "bulkrunner.operations.base",
)
# ... and what `bulkrunner --help` does without: the commands' options, declared as the fields of
# a dataclass, are added to a command's parser only when that command is given
COMMANDS_ONLY = (
    "dataclasses",
    "inspect",
    "bulkrunner.config.run_config",
    "bulkrunner.config.options",
)


@pytest.mark.parametrize(
    ("argv", "unneeded"),
    [
        (["--help"], RUNNING_ONLY + COMMANDS_ONLY),
        (["run", "--help"], RUNNING_ONLY),
        (["export", "--help"], RUNNING_ONLY),
        (["simulate", "--help"], (*RUNNING_ONLY, "bulkrunner.config.run_config")),
    ],
    ids=["help", "run-help", "export-help", "simulate-help"],
)
def test_help_imports_only_what_it_prints(
    argv: list[str], unneeded: tuple[str, ...], tmp_path: Path
) -> None:
    probe = (  # the modules main() imports, beyond those the interpreter started with
        "import contextlib, io, sys\n"
        # an editable install's import hook loads pathlib and more at startup: forgotten, they
        # count as a non-editable install (the CI's) would see them
        f"for name in {unneeded!r}:\n    sys.modules.pop(name, None)\n"
        "before = set(sys.modules)\n"
        "from bulkrunner.cli.app import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    try:\n        main({argv!r})\n    except SystemExit:\n        pass\n"
        "print(' '.join(set(sys.modules) - before))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    modules = set(done.stdout.split())
    assert "bulkrunner.cli.app" in modules
    assert modules.isdisjoint(unneeded), sorted(modules & set(unneeded))


def test_help_reads_only_the_option_declarations(tmp_path: Path) -> None:
    """``--help`` needs the options and the operations' names, not the operations behind them, nor
    what reads a job file or suggests a spelling."""
    probe = (
        "import contextlib, io, sys\nfrom bulkrunner.cli.app import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n        main(['run', '--help'])\n    except SystemExit:\n        pass\n"
        "print(' '.join(sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    modules = set(done.stdout.split())
    assert "bulkrunner.config.run_config" in modules
    unneeded = {"bulkrunner.operations.base", "tomllib", "difflib"}
    assert modules.isdisjoint(unneeded), sorted(modules & unneeded)


def test_the_api_names_cost_no_heavy_import_until_called(tmp_path: Path) -> None:
    probe = (
        "import sys, bulkrunner\n"
        "assert callable(bulkrunner.apply) and callable(bulkrunner.plan)\n"
        "assert callable(bulkrunner.export)\n"
        "print(' '.join(sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert set(done.stdout.split()).isdisjoint({"pandas", "pyarrow", "numpy", "aiohttp", "rich"})

"""Start-up: each command imports only the heavy libraries it uses (issue 10 §3).

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
from bulkrunner.cli import main
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
    from bulkrunner.errors import ExitCode
    from bulkrunner.runner import run_job

    assert bulkrunner.ExitCode is ExitCode
    assert bulkrunner.run_job is run_job
    with pytest.raises(AttributeError, match="no_such_name"):
        bulkrunner.no_such_name  # noqa: B018


def test_validate_needs_no_http_or_terminal_library(tmp_path: Path) -> None:
    (tmp_path / "ten.csv").write_text(
        "campaign_id,sending_limit\n" + "".join(f"{i},50\n" for i in range(1, 11))
    )
    code, modules = _imported(["validate", "ten.csv"], tmp_path)
    assert code == 0
    assert "pandas" in modules  # it does read the file
    assert modules.isdisjoint({"aiohttp", "rich"}), sorted(modules & {"aiohttp", "rich"})

"""The docs agree with the code: the generated reference pages and the README's exit-code table
are what ``python -m tools.reference`` writes from the code's declarations today, the README
keeps its promises (its two set-up commands, its length), the docs' job files are job files, and
the architecture page names every module.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from bulkrunner import ExitCode, Status
from bulkrunner.config.job_file import read_job_file
from bulkrunner.model import RESULT_COLUMN_MEANINGS, RESULT_COLUMNS
from bulkrunner.output import notify
from tests import ROOT
from tools import reference

DOCS = ROOT / "docs"
REGENERATE = "run `python -m tools.reference` to regenerate it"


@pytest.mark.parametrize("page", sorted(str(path) for path in reference.expected()))
def test_each_generated_page_is_what_the_code_declares(page: str) -> None:
    wanted = reference.expected()[Path(page)]
    found = (ROOT / page).read_text(encoding="utf-8") if (ROOT / page).exists() else ""
    assert found == wanted, f"{page} differs from what the code declares: {REGENERATE}"


def test_the_cli_page_shows_each_help_as_help_prints_it() -> None:
    """argparse's placeholders filled in: `(default 400)`, never `(default %(default)s)`."""
    page = reference.expected()[reference.REFERENCE / "cli.md"]
    assert "%(" not in page
    assert "the most leads one upload may carry (default 400)" in page


def test_a_page_that_differs_from_the_code_is_found_stale(tmp_path: Path) -> None:
    """The check itself: in a copy of the generated files, one edited by hand is reported, and
    only that one."""
    for path, text in reference.expected().items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text, encoding="utf-8")
    assert reference.stale(tmp_path) == []
    page = tmp_path / reference.REFERENCE / "cli.md"
    page.write_text(page.read_text() + "A line added by hand.\n")
    assert reference.stale(tmp_path) == [reference.REFERENCE / "cli.md"]


def test_the_readme_exit_code_table_is_filled_from_exit_code() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    emptied = re.sub(
        re.escape(reference.TABLE_START) + ".*?" + re.escape(reference.TABLE_END),
        reference.TABLE_START + "\n" + reference.TABLE_END,
        readme,
        flags=re.DOTALL,
    )
    assert emptied != readme  # the table was there, between its markers
    assert reference.with_exit_codes(emptied) == readme, f"README.md: {REGENERATE}"
    for code in ExitCode:
        assert f"| {int(code)} | {code.meaning} | {code.action} |" in readme


def test_every_exit_code_status_and_column_says_what_it_means() -> None:
    for code in ExitCode:
        assert all((code.brief, code.meaning, code.action)), code
    for status in Status:
        assert status.meaning, status
    assert tuple(RESULT_COLUMN_MEANINGS) == RESULT_COLUMNS
    assert all(RESULT_COLUMN_MEANINGS.values())


def test_a_notification_words_the_exit_code_as_exit_code_declares_it() -> None:
    body = notify.message(job="jobs/nightly.toml", command="run", exit_code=3, summary=None)
    assert "ended with exit 3 (aborted, resumable)" in body["text"]
    assert ExitCode.ABORTED.brief == "aborted, resumable"
    unknown = notify.message(job="j", command="run", exit_code=9, summary=None)
    assert "ended with exit 9 (failed)" in unknown["text"]


def test_the_readme_is_short_and_keeps_its_two_set_up_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 200
    assert "pip install . && bulkrunner run jobs/campaign_settings.toml --simulate" in readme
    assert "pip install '.[test]' && pytest" in readme


def _toml_blocks(page: Path) -> list[str]:
    return re.findall(r"```toml\n(.*?)```", page.read_text(encoding="utf-8"), flags=re.DOTALL)


def test_the_job_file_page_shows_the_shipped_job_file_as_it_is() -> None:
    shipped = (ROOT / "jobs" / "campaign_settings.toml").read_text(encoding="utf-8")
    assert shipped in _toml_blocks(DOCS / "how-to" / "job-files.md")


@pytest.mark.parametrize("page", sorted(DOCS.rglob("*.md")), ids=lambda p: p.name)
def test_every_job_file_in_the_docs_is_one_bulkrunner_reads(page: Path, tmp_path: Path) -> None:
    """A job file shown in the docs names only keys a job file may hold, with values of their
    types (an accounts file, ``[accounts.NAME]`` tables, is another kind of file)."""
    for block in _toml_blocks(page):
        if "[accounts." in block:
            continue
        path = tmp_path / "job.toml"
        path.write_text(block, encoding="utf-8")
        tomllib.loads(block)
        read_job_file(path)  # UsageError on an unknown key or a value of the wrong type


def test_the_architecture_page_names_every_module() -> None:
    page = (DOCS / "design" / "architecture.md").read_text(encoding="utf-8")
    package = ROOT / "bulkrunner"
    missing = [
        str(path.relative_to(package))
        for path in sorted(package.rglob("*.py"))
        if path.stem != "__init__" and f"`{path.stem}`" not in page
    ]
    assert missing == [], "docs/design/architecture.md does not name these modules"


def test_the_docs_link_to_no_benchmarks_file_that_is_gone() -> None:
    assert not (ROOT / "BENCHMARKS.md").exists()
    for path in [ROOT / "README.md", *DOCS.rglob("*.md")]:
        assert "BENCHMARKS.md" not in path.read_text(encoding="utf-8"), path

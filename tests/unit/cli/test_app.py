"""The command line as a user runs it: exit codes, stderr messages, job files, reports."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from aiohttp import web

from bulkrunner.cli import app as cli
from bulkrunner.config.environment import key_not_set
from bulkrunner.model import Rate
from bulkrunner.simulator import FaultPlan, SimulatorConfig, SimulatorThread
from tests import ROOT
from tests.fakes import one_line_error, rate_alone, run
from tests.hostile import ServerThread
from tests.realtime import JITTER

KEY = "sk-live-SENTINEL-5f2b9c"
SAMPLE = ROOT / "sample_data" / "campaign_settings.csv"
MISTAKES = ROOT / "sample_data" / "campaign_settings_with_mistakes.csv"


pytestmark = pytest.mark.usefixtures("no_ambient_settings")


def csv_file(tmp_path: Path, text: str, name: str = "in.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# --- exit 2: bad invocation or unusable input, nothing sent -------------------------------------


def test_a_missing_key_is_a_usage_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "run", "--input", str(SAMPLE), "--report", str(tmp_path / "r.csv"))
    assert code == 2
    assert one_line_error(err).startswith(f"bulkrunner: error: {key_not_set()}")
    assert not (tmp_path / "r.csv").exists()


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("missing.csv", None, "file not found"),
        ("empty.csv", "", "file is empty"),
        ("header.csv", "campaign_id,sending_limit\n", "has a header but no data rows"),
        ("noid.csv", "id,sending_limit\n1,2\n", "no 'campaign_id' column"),
        (
            "typo.csv",
            "campaign_id,folow_up_percentage\n1,2\n",
            "unknown column 'folow_up_percentage' (did you mean 'follow_up_percentage'?)",
        ),
        ("broken.parquet", "not parquet at all", "is not a readable Parquet file"),
        ("input.xlsx", "x", "unsupported input format '.xlsx'"),
    ],
)
def test_file_level_problems_exit_2_with_one_line_naming_the_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str, content: str | None, problem: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    for command in (["run", "--dry-run"], ["validate"]):
        code, out, err = run(capsys, *command, "--input", str(path))
        assert code == 2
        line = one_line_error(err)
        assert line.startswith(f"bulkrunner: error: {path}")
        assert problem in line
        assert out == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rate", "10"], "invalid rate '10'"),
        (["--concurrency", "0"], "concurrency must be between 1 and 1000"),
        (["--base-url", "ftp://x"], "base URL must start with http"),
        (["--report", "out.txt"], "unsupported report format '.txt'"),
    ],
)
def test_bad_options_exit_2(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, _, err = run_safely(capsys, "run", "--dry-run", "--input", str(SAMPLE), *args)
    assert code == 2
    assert message in err
    assert "Traceback" not in err


@pytest.mark.parametrize("under", ["afile", "afile/sub"])
def test_a_report_or_export_inside_a_file_is_refused_before_anything_is_read_or_sent(
    under: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SMARTLEAD_API_KEY", KEY)
    monkeypatch.chdir(tmp_path)
    path = csv_file(tmp_path, "campaign_id,sending_limit\n1,10\n2,20\n")
    (tmp_path / "afile").write_text("a file where a folder is expected")
    with SimulatorThread(SimulatorConfig(api_key=KEY, campaigns={1})) as sim:
        url = ("--base-url", sim.base_url)
        code, _, _ = run(capsys, "run", str(path), "--report", "earlier.csv", *url)
        assert code == 1  # a report with a failed row to retry, and a backup to roll back
        (tmp_path / "job.toml").write_text(
            f'input = "in.csv"\nreport = "{under}/{{timestamp}}.csv"\n'
        )
        bad = f"{under}/r.csv"
        commands = [
            ["run", str(path), "--report", bad, *url],
            ["run", str(path), "--dry-run", "--report", bad],
            ["plan", str(path), "--report", bad, *url],
            ["retry", "earlier.csv", "--report", bad, *url],
            ["rollback", "earlier.csv", "--report", bad, *url],
            ["run", "job.toml", *url],
            ["export", "--output", bad, *url],
        ]
        before = sorted(tmp_path.rglob("*"))
        requests = len(sim.state.requests)
        for command in commands:
            code, _, err = run(capsys, *command)
            assert code == 2, (command, err)
            what = "export" if command[0] == "export" else "report"
            line = one_line_error(err)
            assert f".csv: cannot write the {what} there: " in line
            assert line.endswith("afile is a file, not a folder"), line
            assert "internal error" not in err
            assert "resume" not in err
            assert len(sim.state.requests) == requests, command  # nothing read, nothing sent
        assert sorted(tmp_path.rglob("*")) == before  # no journal, lock or report left behind


def run_with_base_url(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    source: str,
    url: str,
) -> tuple[int, str, str, str]:
    """A run whose base URL is ``url``, given as ``source`` does: exit code, stdout, stderr and
    how the error should name where the URL came from."""
    monkeypatch.setenv("SMARTLEAD_API_KEY", KEY)
    plan = csv_file(tmp_path, "campaign_id,sending_limit\n1,10\n", "plan.csv")
    args = [str(plan)]
    where = source
    if source == "--base-url":
        args += ["--base-url", url]
    elif source == "SMARTLEAD_BASE_URL":
        monkeypatch.setenv("SMARTLEAD_BASE_URL", url)
    elif source == "job file":
        job = tmp_path / "job.toml"
        job.write_text(f'input = "plan.csv"\nbase_url = {json.dumps(url)}\n')
        args, where = [str(job)], f"{job}: base_url"
    else:  # an accounts file
        plan.write_text("campaign_id,account,sending_limit\n1,acme,10\n")
        accounts = tmp_path / "accounts.toml"
        accounts.write_text(
            f'[accounts.acme]\nkey_env = "ACME_KEY"\nbase_url = {json.dumps(url)}\n'
        )
        monkeypatch.setenv("ACME_KEY", KEY)
        args += ["--accounts", str(accounts)]
        where = f"{accounts}: account 'acme': base_url"
    report = tmp_path / "r.csv"
    code, out, err = run(capsys, "run", *args, "--report", str(report), "--max-attempts", "1")
    return code, out, err, where


BASE_URL_SOURCES = ["--base-url", "SMARTLEAD_BASE_URL", "job file", "accounts file"]


@pytest.mark.parametrize("source", BASE_URL_SOURCES)
@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://", "has no host"),
        ("http://127.0.0.1:99999/api/v1", "port must be a number between 1 and 65535"),
        ("http://[::1/api/v1", "is not a URL (Invalid IPv6 URL)"),
    ],
)
def test_a_base_url_that_cannot_be_a_server_is_one_line_and_exit_2_before_anything_is_read(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    source: str,
    url: str,
    problem: str,
) -> None:
    code, out, err, where = run_with_base_url(capsys, tmp_path, monkeypatch, source, url)
    assert code == 2, err
    assert one_line_error(err) == f"bulkrunner: error: {where}: base URL {problem}, got {url!r}"
    assert out == ""  # no summary: nothing was read or sent
    assert not (tmp_path / "r.csv").exists()


@pytest.mark.parametrize("source", BASE_URL_SOURCES)
def test_a_base_url_with_a_query_string_is_refused_unread_and_unechoed(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    source: str,
) -> None:
    """The request paths would go after the query (``...?x=1/campaigns/``): refused, exit 2,
    and what the query holds (here a key, as people paste it) is not shown."""
    with ServerThread(answer_nothing) as server:
        url = f"{server.url}/api/v1?api_key=sk-pasted-in-the-URL-71c2"
        code, out, err, where = run_with_base_url(capsys, tmp_path, monkeypatch, source, url)
    assert server.requests == []
    assert code == 2, err
    line = one_line_error(err)
    assert line.startswith(f"bulkrunner: error: {where}: base URL must not have a query string")
    assert line.endswith(f"got '{server.url}/api/v1?…'")
    assert "sk-pasted" not in out + err


async def answer_nothing(request: web.Request) -> web.Response:
    return web.Response(status=500)


def run_safely(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """argparse exits through SystemExit for its own errors; that is still exit 2."""
    try:
        return run(capsys, *argv)
    except SystemExit as exc:
        out, err = capsys.readouterr()
        return int(exc.code or 0), out, err


def test_no_command_at_all_is_a_usage_error_not_a_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run_safely(capsys)
    assert code == 2
    assert out == ""
    required = "bulkrunner: error: the following arguments are required: COMMAND"
    assert err == f"{required} (see bulkrunner --help)\n"


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["run", "in.csv", "--rate", "10"], "bulkrunner run: error: argument --rate: invalid rate"),
        (["rollback", "--run", "abc"], "bulkrunner rollback: error: argument --run: invalid int"),
    ],
)
def test_a_mistyped_value_is_one_line_not_the_commands_usage_first(
    capsys: pytest.CaptureFixture[str], argv: list[str], error: str
) -> None:
    """argparse prints the command's usage before the error: 23 lines for ``run``."""
    code, out, err = run_safely(capsys, *argv)
    assert (code, out) == (2, "")
    (line,) = err.splitlines()
    assert line.startswith(error)
    assert line.endswith(f"(see bulkrunner {argv[0]} --help)")


def test_a_job_file_with_an_unknown_option(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    job = tmp_path / "job.toml"
    job.write_text('input = "x.csv"\nconcurrancy = 3\n')
    code, _, err = run(capsys, "run", str(job))
    assert code == 2
    assert one_line_error(err) == (
        f"bulkrunner: error: {job}: unknown option 'concurrancy' (did you mean 'concurrency'?)"
    )


# --- dry run and validate ------------------------------------------------------------------------


def test_dry_run_needs_no_key_and_reports_every_row(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    report = tmp_path / "dry.csv"
    code, out, _ = run(capsys, "run", "--dry-run", "--input", str(SAMPLE), "--report", str(report))
    assert code == 0
    frame = pd.read_csv(report)
    assert len(frame) == len(pd.read_csv(SAMPLE))
    assert set(frame["status"]) == {"dry_run"}
    assert "54 dry_run" in out


def test_dry_run_with_invalid_rows_exits_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    report = tmp_path / "dry.jsonl"
    code, _, err = run(
        capsys, "run", "--dry-run", "--input", str(MISTAKES), "--report", str(report)
    )
    assert code == 1
    rows = [json.loads(line) for line in report.read_text().splitlines()]
    assert [r["status"] for r in rows].count("dry_run") == 2
    assert "row 3 is invalid and will not be sent: follow_up_percentage: 150 is above 100" in err


def test_validate_prints_each_invalid_row(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "validate", "--input", str(MISTAKES))
    assert code == 1
    assert f"{MISTAKES} row 3: follow_up_percentage: 150 is above 100" in out
    assert f"{MISTAKES} row 8: campaign_id: 1481209 appears in rows 8 and 9" in out
    assert out.strip().endswith("10 rows, 2 valid, 8 invalid")
    code, out, _ = run(capsys, "validate", "--input", str(SAMPLE))
    assert code == 0


def test_vocabulary_switch_changes_what_is_valid(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = csv_file(tmp_path, "campaign_id,track_settings\n1,DONT_TRACK_REPLY_TO_AN_EMAIL\n")
    assert run(capsys, "validate", "--input", str(path))[0] == 1
    assert run(capsys, "validate", "--input", str(path), "--vocabulary", "long")[0] == 0


# --- real runs against the simulator -------------------------------------------------------------


@pytest.mark.real_clock  # the server judges the windows on its own real time
@pytest.mark.slow
def test_a_run_applies_every_row_and_exits_0(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMARTLEAD_API_KEY", KEY)
    report = tmp_path / "r.csv"
    faults = FaultPlan(scripted={1480614: ["503"], 1480763: ["429"]}, retry_after=0.2)
    with SimulatorThread(SimulatorConfig(api_key=KEY, rates=[Rate(100, 1)], faults=faults)) as sim:
        code, out, err = run(
            capsys,
            "run",
            "--input",
            str(SAMPLE),
            "--report",
            str(report),
            "--base-url",
            sim.base_url,
            *rate_alone("100/1"),
            "--guard",
            str(JITTER),  # the server judges the window: allow for scheduling noise
            "-v",
        )
        state = sim.state
    assert code == 0, err
    frame = pd.read_csv(report)
    assert set(frame["status"]) == {"succeeded"}
    assert sorted(state.applied) == sorted(frame["campaign_id"])
    assert set(state.applied.values()) == {1}
    assert state.max_in_window(1.0) <= 100
    assert "(attempt 2 of 6) after HTTP 503: Service Unavailable" in err
    assert "rows: 54 (54 succeeded)" in out
    assert f"report: {report}" in out
    for text in (out, err, report.read_text()):
        assert KEY not in text


def test_unknown_campaigns_fail_and_the_run_exits_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMARTLEAD_API_KEY", KEY)
    path = csv_file(tmp_path, "campaign_id,sending_limit\n1,10\n2,20\n3,30\n")
    report = tmp_path / "r.json"
    with SimulatorThread(SimulatorConfig(api_key=KEY, campaigns={1, 3})) as sim:
        code, _, _ = run(
            capsys,
            "run",
            "--input",
            str(path),
            "--report",
            str(report),
            "--base-url",
            sim.base_url,
            "--rate",
            "100/1",
        )
        posted = [r.campaign_id for r in sim.state.posts()]
    assert code == 1
    rows = json.loads(report.read_text())
    assert [(r["status"], r["http_status"]) for r in rows] == [
        ("succeeded", 200),
        ("failed", 404),
        ("succeeded", 200),
    ]
    # Found missing by reading it before sending: flagged, never sent.
    assert rows[1]["error"] == "campaign 2 not found (404)"
    assert set(posted) == {1, 3}
    assert len(posted) == 2


def test_a_wrong_key_aborts_with_exit_3_and_reports_every_row(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMARTLEAD_API_KEY", KEY)
    report = tmp_path / "r.csv"
    with SimulatorThread(SimulatorConfig(api_key="the-right-key")) as sim:
        code, out, err = run(
            capsys,
            "run",
            "--input",
            str(SAMPLE),
            "--report",
            str(report),
            "--base-url",
            sim.base_url,
            "--rate",
            "100/1",
            "--concurrency",
            "1",
        )
        state = sim.state
    assert code == 3
    frame = pd.read_csv(report)
    assert len(frame) == 54
    # The first request, reading the current settings, is refused: nothing is sent at all.
    assert frame["status"].value_counts().to_dict() == {"not_attempted": 54}
    assert [(r.method, r.status) for r in state.requests] == [("GET", 401)]
    assert "run aborted: HTTP 401: Invalid API Key" in out
    for text in (out, err, report.read_text()):
        assert KEY not in text


def test_a_job_file_resolves_paths_beside_itself_and_flags_win(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    csv_file(tmp_path, "campaign_id,send_as_plain_text\n5,yes\n", name="plan.csv")
    (jobs / "nightly.toml").write_text(
        'input = "../plan.csv"\nreport = "../out/nightly.csv"\nrate = ["5/3600"]\n'
        "max-attempts = 2\ndry_run = true\n"
    )
    monkeypatch.chdir(tmp_path / "jobs")
    monkeypatch.setenv("SMARTLEAD_API_KEY", KEY)
    with SimulatorThread(SimulatorConfig(api_key=KEY)) as sim:
        code, _, _ = run(capsys, "run", "nightly.toml", "--no-dry-run", "--base-url", sim.base_url)
        applied = dict(sim.state.settings)
    assert code == 0
    assert applied[5]["send_as_plain_text"] is True
    assert pd.read_csv(tmp_path / "out" / "nightly.csv")["status"].tolist() == ["succeeded"]


def test_base_url_from_the_environment(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = csv_file(tmp_path, "campaign_id,sending_limit\n9,10\n")
    monkeypatch.setenv("SMARTLEAD_API_KEY", KEY)
    with SimulatorThread(SimulatorConfig(api_key=KEY)) as sim:
        monkeypatch.setenv("SMARTLEAD_BASE_URL", sim.base_url)
        code, _, _ = run(capsys, "run", "--input", str(path), "--report", str(tmp_path / "r.csv"))
        assert sim.state.applied[9] == 1
    assert code == 0


@pytest.mark.slow
def test_simulate_runs_the_job_without_a_key(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    report = tmp_path / "demo.parquet"
    parquet = ROOT / "sample_data" / "campaign_settings.parquet"
    code, out, err = run(
        capsys,
        "run",
        "--simulate",
        "--input",
        str(parquet),
        "--report",
        str(report),
        "--rate",
        "100/1",
    )
    assert code == 0, err
    frame = pd.read_parquet(report)
    assert set(frame["status"]) == {"succeeded"}
    assert (frame["attempts"] > 1).sum() >= 2  # the demo injects 429s and 503s
    assert "answered 429" in out


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (("--latency", "inf"), "simulate: latency must be a finite number >= 0, got inf"),
        (("--port", "99999"), "simulate: port must be between 0 and 65535, got 99999"),
        (("--campaigns", "1-99999999999"), "--campaigns: at most 1,000,000 campaigns, got "),
        (("--campaigns", "9-1"), "--campaigns: expected ids and ranges like 1-500,900, got "),
        (("--campaigns", "1,x"), "--campaigns: expected ids and ranges like 1-500,900, got "),
    ],
)
def test_the_simulator_refuses_a_bad_option_before_listening(
    option: tuple[str, str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["simulate", *option])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith(f"bulkrunner: error: {message}")
    assert "\n" not in err


@pytest.mark.parametrize(
    ("command", "journaled"), [("validate", False), ("plan", False), ("run", True)]
)
def test_an_internal_error_is_one_line_and_speaks_of_a_journal_only_where_there_is_one(
    command: str,
    journaled: bool,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import importlib

    def broken(*_: object) -> int:
        raise RuntimeError("a bug")

    if command == "validate":
        checking = importlib.import_module("bulkrunner.commands.validate")
        monkeypatch.setattr(checking, "validate_command", broken)
    else:  # the module of the command (commands.run, commands.plan) has its job
        job = importlib.import_module(f"bulkrunner.commands.{command}")
        monkeypatch.setattr(job, f"{command}_job", broken)
    plan = tmp_path / "in.csv"
    plan.write_text("campaign_id,sending_limit\n1,10\n")
    code = cli.main(
        [command, str(plan), "--simulate"] if command != "validate" else [command, str(plan)]
    )
    err = capsys.readouterr().err.strip()
    assert code == 3
    assert err.startswith("bulkrunner: internal error: RuntimeError: a bug (run with -v")
    assert ("journal" in err) is journaled
    assert "\n" not in err

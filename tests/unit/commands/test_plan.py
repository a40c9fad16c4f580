"""``bulkrunner plan``: the account's current state read as a run reads it, each row's changes
from -> to, the counts, the run's duration at the configured limits; nothing written. And the
one report pipeline every kind of run writes through."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest

from bulkrunner.cli.app import main
from bulkrunner.limits.rates import DEFAULT_RATES, ideal_seconds
from bulkrunner.model import Change, Rate, Row
from bulkrunner.operations import operation
from bulkrunner.operations.base import Wire
from bulkrunner.output.planning import Requests, change_line, change_lines, duration, shown
from bulkrunner.simulator import SimulatorConfig, SimulatorThread, default_settings
from tests.fakes import one_line_error

KEY = "sk-plan-SENTINEL-77"
SETTINGS = operation("settings")


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMARTLEAD_API_KEY", KEY)
    monkeypatch.delenv("SMARTLEAD_BASE_URL", raising=False)


# --- how a plan says things ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "?"),  # the current value is not known
        (50, "50"),
        (True, "true"),
        (False, "false"),
        ([], "[]"),
        (["DONT_EMAIL_OPEN", "DONT_LINK_CLICK"], "[DONT_EMAIL_OPEN, DONT_LINK_CLICK]"),
        ("REPLY_TO_AN_EMAIL", "REPLY_TO_AN_EMAIL"),
        ("", '""'),  # an empty text is seen, not a blank
        ("Reply STOP, thanks", '"Reply STOP, thanks"'),
        ({"tz": "UTC", "days": [1, 2]}, '{"tz":"UTC","days":[1,2]}'),
    ],
)
def test_values_are_shown_as_a_person_reads_them(value: object, text: str) -> None:
    assert shown(value) == text


def test_a_change_line_names_the_row_the_campaign_and_each_field_from_and_to() -> None:
    changes = {
        "sending_limit": Change(50, 25),
        "track_settings": Change([], ["DONT_EMAIL_OPEN"]),
    }
    assert change_line(3, 101, changes) == (
        "row 3 (campaign 101): sending_limit 50 -> 25, track_settings [] -> [DONT_EMAIL_OPEN]"
    )
    assert change_line(4, 102, {}) == "row 4 (campaign 102): no change, sent anyway"


def test_past_the_first_rows_the_others_are_counted() -> None:
    rows = [Row(n, 100 + n, {"sending_limit": n}) for n in range(1, 26)]
    changes = {row.number: {"sending_limit": Change(None, row.number)} for row in rows}
    lines = change_lines(rows, changes, shown=20)
    assert len(lines) == 21
    assert lines[0] == "row 1 (campaign 101): sending_limit ? -> 1"
    assert lines[19].startswith("row 20 (campaign 120)")
    assert lines[20] == (
        "... and 5 more rows to change (every row's before and after are in the report)"
    )
    assert len(change_lines(rows[:20], changes, shown=20)) == 20  # all shown: no count


def test_the_run_counts_its_reads_its_writes_and_its_reads_back() -> None:
    rows = [Row(n, 100 + n, {"sending_limit": n}) for n in range(1, 21)]
    needed = Requests.of(rows, 1, SETTINGS, Wire(), verify=False)
    assert (needed.reads, needed.writes, needed.verify, needed.total) == (1, 20, 0, 21)
    # 21 requests at 10 per 2 s: 10 at once, 10 two seconds later, the last at 4 s
    assert needed.seconds([Rate(10, 2)]) == 4.0
    assert needed.seconds(DEFAULT_RATES) == ideal_seconds(21, DEFAULT_RATES)
    assert needed.describe() == "21 requests (1 read, 20 writes)"
    checked = Requests.of(rows, 3, SETTINGS, Wire(), verify=True)
    assert (checked.total, checked.verify) == (43, 20)  # each campaign read back by id
    assert checked.describe() == "43 requests (3 reads, 20 writes, 20 reads back (--verify))"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0, "0.0 s"),
        (0.24, "0.2 s"),
        (12.4, "12 s"),
        (60, "1 min"),
        (185, "3 min 5 s"),
        (7800, "2 h 10 min"),
    ],
)
def test_durations_read_as_a_person_says_them(seconds: float, text: str) -> None:
    assert duration(seconds) == text


# --- the command against the simulator ----------------------------------------------------------


def plan_file(tmp_path: Path) -> Path:
    """Row 1 changes two settings of campaign 11, row 2 changes nothing (13 already has that
    limit), row 3 is invalid, row 4 names a campaign the account does not have."""
    path = tmp_path / "plan.csv"
    path.write_text(
        "campaign_id,sending_limit,track_settings\n"
        "11,150,DONT_EMAIL_OPEN\n"
        f"13,{default_settings(13)['sending_limit']},\n"
        "12,ten,\n"
        "99,40,\n"
    )
    return path


def words(out: str) -> list[str]:
    return [line for line in out.splitlines() if line]


def test_plan_reads_the_state_shows_each_change_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = plan_file(tmp_path)
    report = tmp_path / "plan-report.csv"
    config = SimulatorConfig(api_key=KEY, campaigns={11, 12, 13})
    with SimulatorThread(config) as sim:
        argv = ["plan", str(source), "--report", str(report), "--base-url", sim.base_url]
        code = main(argv)
        seen = list(sim.state.requests)
    out, err = capsys.readouterr()
    assert code == 1, err  # an invalid row, and a campaign the account does not have
    # read as a run reads, and nothing else: no write of any kind
    assert seen
    assert all(r.method == "GET" for r in seen)
    assert seen[0].path == "/api/v1/campaigns/"
    reads = len(seen)
    limit = default_settings(11)["sending_limit"]
    lines = words(out)
    assert lines[0] == (
        f"row 1 (campaign 11): sending_limit {limit} -> 150, track_settings [] -> [DONT_EMAIL_OPEN]"
    )
    assert "rows to change: 1, unchanged: 1, invalid: 1, missing from the account: 1" in lines
    # the run would read as the plan did, then write row 1: at the default limits
    seconds = ideal_seconds(reads + 1, DEFAULT_RATES)
    assert (
        f"the run would make {reads + 1} requests ({reads} read{'s' if reads > 1 else ''}, "
        f"1 write): at least {duration(seconds)} at 10/2, 60/60, 1000/3600"
    ) in lines
    assert "nothing was written to the account" in lines
    assert f"report: {report}" in lines
    assert KEY not in out + err
    lines_of = pd.read_csv(report, dtype=str, keep_default_na=False).to_dict("records")
    assert [line["status"] for line in lines_of] == ["dry_run", "unchanged", "invalid", "failed"]
    first = lines_of[0]
    assert json.loads(first["before"]) == {"sending_limit": limit, "track_settings": []}
    assert json.loads(first["after"]) == {
        "sending_limit": 150,
        "track_settings": ["DONT_EMAIL_OPEN"],
    }
    assert lines_of[1]["before"] == lines_of[1]["after"] == ""  # unchanged: nothing to show
    assert lines_of[2]["error"] == "sending_limit: 'ten' is not a whole number"
    assert (lines_of[3]["http_status"], lines_of[3]["error"]) == (
        "404",
        "campaign 99 not found (404)",
    )


def test_a_run_does_what_the_plan_said_and_the_next_plan_finds_nothing_to_change(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "plan.csv"
    source.write_text(
        "campaign_id,sending_limit,send_as_plain_text,unsubscribe_text\n"
        "21,75,true,\n"
        f"22,{default_settings(22)['sending_limit']},,\n"
        '23,,,""""""\n'  # "" (quoted in CSV): empty unsubscribe_text, as it already is
        "24,,false,Bye\n"
    )
    with SimulatorThread(SimulatorConfig(api_key=KEY, campaigns={21, 22, 23, 24})) as sim:
        base = ["--base-url", sim.base_url]
        first, run, second = (tmp_path / name for name in ("p1.csv", "run.csv", "p2.csv"))
        assert main(["plan", str(source), "--report", str(first), *base]) == 0
        planned = pd.read_csv(first, dtype=str, keep_default_na=False)
        assert sim.state.writes() == []
        assert main(["run", str(source), "--report", str(run), *base]) == 0
        ran = pd.read_csv(run, dtype=str, keep_default_na=False)
        # exactly the rows the plan said would change were sent, with the changes it showed
        assert {r.campaign_id for r in sim.state.writes()} == {21, 24}
        expected = planned["status"].map({"dry_run": "succeeded", "unchanged": "unchanged"})
        assert (
            ran["status"].tolist()
            == expected.tolist()
            == [
                "succeeded",
                "unchanged",
                "unchanged",
                "succeeded",
            ]
        )
        assert ran["before"].tolist() == planned["before"].tolist()
        assert ran["after"].tolist() == planned["after"].tolist()
        writes = len(sim.state.writes())
        capsys.readouterr()
        assert main(["plan", str(source), "--report", str(second), *base]) == 0
        assert len(sim.state.writes()) == writes
    out = capsys.readouterr().out
    assert "rows to change: 0, unchanged: 4, invalid: 0, missing from the account: 0" in out
    assert "the run would make 1 request (1 read, 0 writes)" in out
    again = pd.read_csv(second, dtype=str, keep_default_na=False)
    assert again["status"].tolist() == ["unchanged"] * 4


@pytest.mark.parametrize("command", ["plan", "run", "export"])
def test_without_a_key_plan_is_a_usage_error_as_run_and_export_are(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: str,
) -> None:
    """A plan reads the account: without a key it reads nothing and exits 2, naming the key and
    the offline preview (``run --dry-run``), as ``run`` and ``export`` do; no report is left."""
    source = plan_file(tmp_path)
    report = tmp_path / "plan-report.csv"
    monkeypatch.delenv("SMARTLEAD_API_KEY")
    with SimulatorThread(SimulatorConfig(api_key=KEY)) as sim:
        base = ["--base-url", sim.base_url]
        given = [] if command == "export" else [str(source), "--report", str(report)]
        assert main([command, *given, *base]) == 2
        assert sim.state.requests == []
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("bulkrunner: error: SMARTLEAD_API_KEY is not set")
    assert len(captured.err.splitlines()) == 1
    if command == "plan":
        assert "the offline preview, which reads nothing, is `bulkrunner run --dry-run`" in (
            captured.err
        )
    assert not report.exists()


@pytest.mark.parametrize("command", ["plan", "run"])
def test_plan_reads_through_the_limiter_and_stops_at_max_wait(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    """The server allows one read an hour: the list is read, and the read of campaign 99 (not in
    the list) is answered 429 asking for longer than --max-wait, so the plan stops, resumable
    like a run, having written nothing. (A run read one by one raised it inside an exception
    group: an internal error.)"""
    source = plan_file(tmp_path)
    report = tmp_path / "r.csv"
    config = SimulatorConfig(
        api_key=KEY, campaigns={11, 12, 13}, rates=(Rate(1, 3600),), limit_retry_after=600
    )
    with SimulatorThread(config) as sim:
        argv = [command, str(source), "--report", str(report), "--base-url", sim.base_url]
        code = main([*argv, "--max-wait", "60"])
        assert [(r.path, r.status) for r in sim.state.requests] == [
            ("/api/v1/campaigns/", 200),
            ("/api/v1/campaigns/99", 429),
        ]
    out, err = capsys.readouterr()
    assert code == 3, err
    assert "the server asked to wait 600s (Retry-After), more than --max-wait 60" in err
    assert "rows to change" not in out  # no plan without the state
    statuses = pd.read_csv(report)["status"].tolist()
    assert statuses == ["not_attempted", "not_attempted", "invalid", "not_attempted"]


def test_a_rejected_key_stops_the_plan_without_showing_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = plan_file(tmp_path)
    report = tmp_path / "r.json"
    with SimulatorThread(SimulatorConfig(api_key="another-key")) as sim:
        code = main(["plan", str(source), "--report", str(report), "--base-url", sim.base_url])
        assert sim.state.writes() == []
    out, err = capsys.readouterr()
    assert code == 3
    assert "Traceback" not in err
    assert KEY not in out + err + report.read_text()
    records = json.loads(report.read_text())
    assert [r["status"] for r in records] == [
        "not_attempted",
        "not_attempted",
        "invalid",
        "not_attempted",
    ]


def test_plan_takes_a_job_file_and_its_reading_options_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = plan_file(tmp_path)
    job = tmp_path / "job.toml"
    job.write_text(
        f'input = "{source.name}"\nreport = "out/plan.csv"\nrate = ["2/1"]\nverify = true\n'
    )
    with SimulatorThread(SimulatorConfig(api_key=KEY, campaigns={11, 12, 13})) as sim:
        assert main(["plan", str(job), "--base-url", sim.base_url]) == 1
        reads = len(sim.state.requests)
        assert sim.state.writes() == []
    out = capsys.readouterr().out
    # --verify would read row 1's campaign back; at 2 requests a second
    total = reads + 2
    assert f"the run would make {total} requests" in out
    assert f"at least {duration(ideal_seconds(total, [Rate(2, 1)]))} at 2/1" in out
    assert (tmp_path / "out" / "plan.csv").exists()
    for flag in ("--resume", "--dry-run", "--notify"):
        with pytest.raises(SystemExit) as exit_:
            main(["plan", str(job), flag, *(["http://127.0.0.1:9"] if flag == "--notify" else [])])
        assert exit_.value.code == 2
    assert "unrecognized arguments" in capsys.readouterr().err


def test_a_plan_of_several_accounts_reads_each_with_its_key_and_names_the_slowest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = {"acme": "sk-plan-ACME-1", "globex": "sk-plan-GLOBEX-2"}
    monkeypatch.delenv("SMARTLEAD_API_KEY")
    for name, key in keys.items():
        monkeypatch.setenv(f"{name.upper()}_KEY", key)
    source = tmp_path / "plan.csv"
    source.write_text(
        "campaign_id,account,sending_limit\n"
        + "".join(f"{1000 + n},acme,{n}\n{2000 + n},globex,{n}\n" for n in range(1, 4))
    )
    with (
        SimulatorThread(SimulatorConfig(api_key=keys["acme"])) as acme,
        SimulatorThread(SimulatorConfig(api_key=keys["globex"])) as globex,
    ):
        accounts = tmp_path / "accounts.toml"
        accounts.write_text(
            f'[accounts.acme]\nkey_env = "ACME_KEY"\nrate = ["100/1"]\n'
            f'base_url = "{acme.base_url}"\n'
            f'[accounts.globex]\nkey_env = "GLOBEX_KEY"\nrate = ["1/1"]\n'
            f'base_url = "{globex.base_url}"\n'
        )
        report = tmp_path / "r.csv"
        code = main(["plan", str(source), "--accounts", str(accounts), "--report", str(report)])
        seen = {"acme": list(acme.state.requests), "globex": list(globex.state.requests)}
    out, err = capsys.readouterr()
    assert code == 0, err
    for name, requests in seen.items():
        assert requests, name
        assert {r.method for r in requests} == {"GET"}  # each read with its own key, no 401
        assert {r.status for r in requests} == {200}
    globex_reads = len(seen["globex"])
    total = globex_reads + 3
    assert (
        f"the run would make {total} requests ({globex_reads} read"
        f"{'s' if globex_reads > 1 else ''}, 3 writes) (account globex, the slowest): at least "
        f"{duration(ideal_seconds(total, [Rate(1, 1)]))} at 1/1"
    ) in out
    assert "rows to change: 6, unchanged: 0, invalid: 0, missing from the account: 0" in out
    assert pd.read_csv(report)["status"].tolist() == ["dry_run"] * 6
    assert not any(key in out + err for key in keys.values())


def test_plan_with_simulate_reads_the_embedded_simulator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SMARTLEAD_API_KEY")
    source = plan_file(tmp_path)
    report = tmp_path / "r.csv"
    assert main(["plan", str(source), "--simulate", "--report", str(report)]) == 1
    out = capsys.readouterr().out
    limit = default_settings(11)["sending_limit"]
    assert f"row 1 (campaign 11): sending_limit {limit} -> 150" in out
    assert "rows to change: 2, unchanged: 1, invalid: 1, missing from the account: 0" in out
    assert pd.read_csv(report)["status"].tolist() == ["dry_run", "unchanged", "invalid", "dry_run"]


# --- one report pipeline, whatever the run ------------------------------------------------------


@pytest.mark.parametrize("command", [["run", "--dry-run"], ["plan"], ["run"]])
def test_with_no_space_anywhere_every_kind_of_run_prints_its_report(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: list[str],
) -> None:
    """The report cannot be written to its path, nor to the fallback path: it is printed, so no
    row's outcome is lost. (A dry run used to end in an internal error.)"""
    import errno

    from bulkrunner.output.report_writer import ReportWriter

    def full(*_: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(ReportWriter, "write", full)
    source = plan_file(tmp_path)
    report = tmp_path / "out" / "r.csv"
    with SimulatorThread(SimulatorConfig(api_key=KEY, campaigns={11, 12, 13})) as sim:
        argv = [*command, str(source), "--report", str(report), "--base-url", sim.base_url]
        code = main([*argv, "--no-backup"] if command == ["run"] else argv)
    out, err = capsys.readouterr()
    assert code == 1, err
    assert "printing it here instead" in err
    assert "internal error" not in err
    lines = out[out.index("campaign_id,") :].splitlines()[:5]  # the header and the 4 rows
    printed = pd.read_csv(io.StringIO("\n".join(lines)))
    assert printed["campaign_id"].tolist() == [11, 13, 12, 99]
    assert printed["status"].iloc[2] == "invalid"
    assert not report.exists()
    assert not list(tmp_path.rglob("*.tmp"))


def test_plan_reads_only_when_no_other_run_uses_its_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Its reads count in the key's budget: while another run holds the key's lock, a plan is
    refused (exit 4) and reads nothing."""
    from contextlib import ExitStack
    from datetime import UTC, datetime

    from bulkrunner.config.accounts import Account
    from bulkrunner.records.locks import lock_accounts

    source = plan_file(tmp_path)
    with SimulatorThread(SimulatorConfig(api_key=KEY)) as sim, ExitStack() as held:
        other = Account("", "SMARTLEAD_API_KEY", DEFAULT_RATES, sim.base_url)
        lock_accounts(held, [other], {"": KEY}, datetime.now(UTC))  # another run's
        code = main(
            ["plan", str(source), "--report", str(tmp_path / "r.csv"), "--base-url", sim.base_url]
        )
        assert sim.state.requests == []
    err = capsys.readouterr().err
    assert code == 4, err
    assert "the key SMARTLEAD_API_KEY: another bulkrunner run" in err


def test_a_plan_or_dry_run_never_replaces_a_runs_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A job file's fixed ``report = "reports/nightly.csv"``, or ``--report`` given again: a
    plan, a dry run of the same report path replaced the run's report (its backup left beside
    a report of ``dry_run`` rows). Each is refused, and the run's report stays as it was; a
    new run of the same report path is a run like any other."""
    source = tmp_path / "plan.csv"
    source.write_text("campaign_id,sending_limit\n21,75\n")
    report = tmp_path / "nightly.csv"
    with SimulatorThread(SimulatorConfig(api_key=KEY, campaigns={21})) as sim:
        base = ["--base-url", sim.base_url]
        assert main(["run", str(source), "--report", str(report), *base]) == 0
        ran = report.read_bytes()
        capsys.readouterr()
        for preview in (["plan"], ["run", "--dry-run"]):
            assert main([*preview, str(source), "--report", str(report), *base]) == 2
            kind = "plan" if preview == ["plan"] else "dry run"
            assert one_line_error(capsys.readouterr().err) == (
                f"bulkrunner: error: {report}: the report of a run (nightly.csv.backup.parquet "
                f"is beside it); a {kind} does not replace it: give the {kind}'s report a name "
                "of its own with --report"
            )
            assert report.read_bytes() == ran
        assert main(["run", str(source), "--report", str(report), *base]) == 0

"""Many accounts in one run, through the command line in the test's process, each account on a
simulator of its own."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pandas as pd
import pytest
from aiohttp import web

from bulkrunner.cli.app import main
from bulkrunner.config.accounts import Account
from bulkrunner.config.environment import key_not_set
from bulkrunner.config.run_config import RunConfig
from bulkrunner.limits.limiter import SlidingWindowLimiter
from bulkrunner.model import Outcome, Rate, Status
from bulkrunner.operations.base import Wire
from bulkrunner.operations.settings import SETTINGS
from bulkrunner.records.journal import Journal
from bulkrunner.sending.pipeline import Pipeline
from bulkrunner.sending.session import seed
from bulkrunner.sending.watching import figures, snapshot
from bulkrunner.simulator import SimulatorConfig, SimulatorThread
from tests.fakes import FakeClock, ScriptedSender, connection, one_line_error, run
from tests.hostile import ServerThread

KEYS = {"acme": "sk-live-ACME-7d1e", "globex": "sk-live-GLOBEX-91a0", "initech": "sk-live-INI-3b2c"}
FIRST_ID = {"acme": 1000, "globex": 2000, "initech": 3000}
ROWS = 6


pytestmark = pytest.mark.usefixtures("no_ambient_settings")


@pytest.fixture
def servers() -> Iterator[dict[str, SimulatorThread]]:
    """One simulator per account, each accepting only that account's key."""
    with ExitStack() as stack:
        yield {
            name: stack.enter_context(
                SimulatorThread(SimulatorConfig(api_key=key, rates=[Rate(200, 1)]))
            )
            for name, key in KEYS.items()
        }


def write_accounts(
    tmp_path: Path, servers: dict[str, SimulatorThread], rates: dict[str, str] | None = None
) -> Path:
    path = tmp_path / "accounts.toml"
    path.write_text(
        "".join(
            f'[accounts.{name}]\nkey_env = "{name.upper()}_SMARTLEAD_KEY"\n'
            f'rate = ["{(rates or {}).get(name, "100/1")}", "1000/3600"]\n'
            f'base_url = "{server.base_url}"\n\n'
            for name, server in servers.items()
        )
    )
    return path


def write_plan(tmp_path: Path, names: list[str], name: str = "plan.csv") -> Path:
    lines = ["campaign_id,account,sending_limit"]
    for n in range(ROWS):  # the accounts' rows interleaved, as a spreadsheet may have them
        lines += [f"{FIRST_ID[account] + n},{account},{10 + n}" for account in names]
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def export_keys(monkeypatch: pytest.MonkeyPatch, keys: dict[str, str] = KEYS) -> None:
    for name, key in keys.items():
        monkeypatch.setenv(f"{name.upper()}_SMARTLEAD_KEY", key)


def outputs(tmp_path: Path, *texts: str) -> Iterator[str]:
    yield from texts
    for path in tmp_path.rglob("*"):
        if path.is_file():
            yield path.read_bytes().decode("utf-8", errors="replace")


def run_accounts(
    capsys: pytest.CaptureFixture[str],
    command: str,
    target: Path,
    accounts: Path,
    report: Path,
    *extra: str,
) -> tuple[int, str, str]:
    """``bulkrunner COMMAND TARGET --accounts ACCOUNTS --report REPORT [EXTRA...]``."""
    return run(
        capsys, command, str(target), "--accounts", str(accounts), "--report", str(report), *extra
    )


def test_each_account_rows_go_with_its_own_key_to_its_own_server(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    servers: dict[str, SimulatorThread],
) -> None:
    export_keys(monkeypatch)
    accounts = write_accounts(tmp_path, servers, {"acme": "50/1", "globex": "60/1"})
    plan = write_plan(tmp_path, list(KEYS))
    report = tmp_path / "r.csv"
    code, out, err = run_accounts(capsys, "run", plan, accounts, report, "--log-format", "json")
    assert code == 0, err
    for name, server in servers.items():
        # Only its own campaigns reached it (with its key, or the simulator would answer 401).
        assert sorted(server.state.applied) == [FIRST_ID[name] + n for n in range(ROWS)]
        assert {r.status for r in server.state.requests} == {200}
    frame = pd.read_csv(report)
    assert list(frame["account"]) == [name for _ in range(ROWS) for name in KEYS]
    assert set(frame["status"]) == {"succeeded"}
    (summary,) = [e for line in out.splitlines() if (e := json.loads(line))["event"] == "summary"]
    message = summary["message"]  # the text summary's lines, joined by "; "
    assert message.startswith(f"rows: {3 * ROWS} ({3 * ROWS} succeeded); account acme: ")
    for name, server in servers.items():  # a line per account, in order, with its own requests
        seen = len(server.state.requests)  # its reads before sending and its POSTs
        line = f"account {name}: {ROWS} rows ({ROWS} succeeded); {seen} requests, 0 answered 429"
        assert line in message
    assert message.index("account acme") < message.index("account globex")
    # Each account's session holds its own limits.
    starts = [e for line in err.splitlines() if (e := json.loads(line))["event"] == "run_start"]
    limits = {e["account"]: e["limits"] for e in starts}
    assert limits == {  # and SmartLead's published windows that its own do not name
        "acme": ["50/1", "10/2", "60/60", "1000/3600"],
        "globex": ["60/1", "10/2", "60/60", "1000/3600"],
        "initech": ["100/1", "10/2", "60/60", "1000/3600"],
    }
    for text in outputs(tmp_path, out, err):
        for key in KEYS.values():
            assert key not in text


def test_a_rejected_key_stops_only_its_account_and_exits_3(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    servers: dict[str, SimulatorThread],
) -> None:
    export_keys(monkeypatch, {**KEYS, "globex": "sk-live-REVOKED-0000"})
    accounts = write_accounts(tmp_path, servers)
    report = tmp_path / "r.csv"
    code, out, err = run_accounts(capsys, "run", write_plan(tmp_path, list(KEYS)), accounts, report)
    assert code == 3, err
    frame = pd.read_csv(report)
    statuses = frame.groupby("account")["status"].agg(set).to_dict()
    assert statuses == {
        "acme": {"succeeded"},
        "globex": {"not_attempted"},
        "initech": {"succeeded"},
    }
    assert len(servers["acme"].state.applied) == len(servers["initech"].state.applied) == ROWS
    assert not servers["globex"].state.applied
    globex = next(line for line in out.splitlines() if line.startswith("account globex:"))
    assert f"{ROWS} not_attempted" in globex
    assert "run aborted: HTTP 401" in globex
    assert "account acme: 6 rows (6 succeeded)" in out
    assert "sk-live-REVOKED-0000" not in out + err + report.read_text()
    # Resumable: with the key put right, --resume sends globex's rows and only those.
    export_keys(monkeypatch)
    code, out, err = run_accounts(
        capsys, "run", tmp_path / "plan.csv", accounts, report, "--resume"
    )
    assert code == 0, err
    assert set(pd.read_csv(report)["status"]) == {"succeeded"}
    assert len(servers["globex"].state.applied) == ROWS
    assert all(n == 1 for server in servers.values() for n in server.state.applied.values())


def test_a_plan_with_one_rejected_key_still_plans_the_other_accounts_rows(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    servers: dict[str, SimulatorThread],
) -> None:
    """As ``run`` would send them: a rejected key stops only its own account's rows."""
    export_keys(monkeypatch, {**KEYS, "globex": "sk-live-REVOKED-0000"})
    accounts = write_accounts(tmp_path, servers)
    report = tmp_path / "plan-report.csv"
    source = write_plan(tmp_path, list(KEYS))
    code, out, err = run_accounts(capsys, "plan", source, accounts, report)
    assert code == 3, err
    assert all(not server.state.writes() for server in servers.values())
    frame = pd.read_csv(report)
    statuses = frame.groupby("account")["status"].agg(set).to_dict()
    assert statuses == {"acme": {"dry_run"}, "globex": {"not_attempted"}, "initech": {"dry_run"}}
    globex = frame[frame["account"] == "globex"]
    assert all("run aborted: HTTP 401" in error for error in globex["error"])
    acme = frame[frame["account"] == "acme"].iloc[0]
    assert json.loads(acme["after"]) == {"sending_limit": 10}
    assert f"rows to change: {2 * ROWS}" in out
    assert f"row 1 (campaign {FIRST_ID['acme']}): sending_limit " in out
    assert "sk-live-REVOKED-0000" not in out + err + report.read_text()


def test_a_missing_key_variable_is_named_before_anything_is_sent(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    servers: dict[str, SimulatorThread],
) -> None:
    export_keys(monkeypatch, {"acme": KEYS["acme"], "initech": KEYS["initech"]})
    monkeypatch.delenv("GLOBEX_SMARTLEAD_KEY", raising=False)
    accounts = write_accounts(tmp_path, servers)
    report = tmp_path / "r.csv"
    code, _, err = run_accounts(capsys, "run", write_plan(tmp_path, list(KEYS)), accounts, report)
    assert code == 2
    line = one_line_error(err)
    assert key_not_set("GLOBEX_SMARTLEAD_KEY", "that account's") in line
    assert "'globex'" in line
    assert str(accounts) in line
    assert not report.exists()
    assert all(not server.state.requests for server in servers.values())


def test_an_account_no_row_names_needs_no_key(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    servers: dict[str, SimulatorThread],
) -> None:
    export_keys(monkeypatch, {"acme": KEYS["acme"], "globex": KEYS["globex"]})
    monkeypatch.delenv("INITECH_SMARTLEAD_KEY", raising=False)
    accounts = write_accounts(tmp_path, servers)
    plan = write_plan(tmp_path, ["acme", "globex"])
    code, _, err = run(
        capsys, "run", str(plan), "--accounts", str(accounts), "--report", str(tmp_path / "r.csv")
    )
    assert code == 0, err
    assert not servers["initech"].state.requests


def test_a_row_naming_an_unknown_account_is_invalid_and_the_others_are_sent(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    servers: dict[str, SimulatorThread],
) -> None:
    export_keys(monkeypatch)
    accounts = write_accounts(tmp_path, servers)
    plan = tmp_path / "plan.csv"
    plan.write_text("campaign_id,account,sending_limit\n1000,acme,10\n2000,globx,20\n3000,,30\n")
    report = tmp_path / "r.csv"
    code, _, err = run(
        capsys, "run", str(plan), "--accounts", str(accounts), "--report", str(report)
    )
    assert code == 1, err
    frame = pd.read_csv(report)
    assert list(frame["status"]) == ["succeeded", "invalid", "invalid"]
    assert "'globx' is not in" in frame["error"][1]
    assert "did you mean 'globex'?" in frame["error"][1]
    assert frame["error"][2].startswith("account: missing")
    assert servers["acme"].state.applied[1000] == 1
    assert not servers["globex"].state.requests
    assert not servers["initech"].state.requests


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('[accounts.acme]\nkey_env = "ACME_SMARTLEAD_KEY"\nkey = "sk-oops"\n', "never holds a key"),
        ('[accounts.acme]\nkey-env = "ACME_SMARTLEAD_KEY"\n', "unknown setting 'key-env'"),
        ('[accounts.acme]\nkey_env = "ACME_SMARTLEAD_KEY"\nrate = ["ten/1"]\n', "rate:"),
        ('[accounts.acme]\nkey_env = "ACME_SMARTLEAD_KEY"\nbase_url = "ftp://x"\n', "base_url"),
        (
            '[accounts.acme]\nkey_env = "ACME_SMARTLEAD_KEY"\nbase_url = "http://127.0.0.1:99999"\n',
            "base_url: base URL port must be a number between 1 and 65535",
        ),
        (
            '[accounts.acme]\nkey_env = "ACME_SMARTLEAD_KEY"\n'
            'base_url = "http://127.0.0.1:9/api/v1?api_key=sk-oops"\n',
            "base_url: base URL must not have a query string",
        ),
        ("[accounts.acme]\n", "key_env must name the environment variable"),
        (  # a row's cell " acme" is read as "acme": sent with acme's key, never with its own
            '[accounts.acme]\nkey_env = "ACME_SMARTLEAD_KEY"\n'
            '[accounts." acme"]\nkey_env = "ACME_SMARTLEAD_KEY"\n',
            "account ' acme': a name with no spaces around it is needed",
        ),
        (  # a blank cell would name it, where it names no account
            '[accounts.""]\nkey_env = "ACME_SMARTLEAD_KEY"\n',
            "account '': a name with no spaces around it is needed",
        ),
        ("title = 1\n", "unknown entry 'title'"),
        ("[accounts]\n", "no accounts"),
        ("[accounts.acme\n", "not valid TOML"),
    ],
)
def test_a_bad_accounts_file_is_a_one_line_error_naming_it(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    content: str,
    expected: str,
) -> None:
    export_keys(monkeypatch)
    accounts = tmp_path / "accounts.toml"
    accounts.write_text(content)
    plan = tmp_path / "plan.csv"
    plan.write_text("campaign_id,account,sending_limit\n1000,acme,10\n")
    code, _, err = run(
        capsys, "run", str(plan), "--accounts", str(accounts), "--report", str(tmp_path / "r.csv")
    )
    assert code == 2
    line = one_line_error(err)
    assert str(accounts) in line
    assert expected in line
    assert "sk-oops" not in line


PASTED_KEYS = {
    "uuid-like": "3f2a9c1e-8b7d-4e6f-a1b2-c3d4e5f6a7b8_91ab2c",
    "name-like": "sk_live_4eC39HqLyjWDarjtT1zdp7dc",  # letters, digits, _: a variable's shape
}


@pytest.mark.parametrize("log_format", ["text", "json"])
@pytest.mark.parametrize("pasted", PASTED_KEYS.values(), ids=PASTED_KEYS.keys())
def test_a_key_pasted_as_key_env_is_refused_and_shown_nowhere(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    pasted: str,
    log_format: str,
) -> None:
    """Not in the error (text or JSON) nor in the webhook's message: the key is not known to
    be one (no variable holds it), so only not echoing it keeps it out."""
    accounts = tmp_path / "accounts.toml"
    accounts.write_text(f'[accounts.acme]\nkey_env = "{pasted}"\n')
    plan = tmp_path / "plan.csv"
    plan.write_text("campaign_id,account,sending_limit\n1000,acme,10\n")
    bodies: list[str] = []

    async def webhook(request: web.Request) -> web.Response:
        bodies.append(await request.text())
        return web.Response(text="ok")

    with ServerThread(webhook) as hook:
        code, out, err = run_accounts(
            capsys, "run", plan, accounts, tmp_path / "r.csv",
            "--notify", f"{hook.url}/hook", "--log-format", log_format,
        )  # fmt: skip
    assert code == 2
    assert "key_env must name the environment variable holding its key" in err
    assert str(accounts) in err
    assert len(bodies) == 1  # the notification was sent, with the error
    assert "key_env must name" in json.loads(bodies[0])["error"]
    for text in (out, err, *bodies):
        assert pasted not in text
        assert pasted[:12] not in text


def test_the_account_column_and_the_accounts_file_go_together(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    servers: dict[str, SimulatorThread],
) -> None:
    export_keys(monkeypatch)
    monkeypatch.setenv("SMARTLEAD_API_KEY", KEYS["acme"])
    accounts = write_accounts(tmp_path, servers)
    with_column = write_plan(tmp_path, ["acme"])
    without = tmp_path / "single.csv"
    without.write_text("campaign_id,sending_limit\n1000,10\n")
    report = str(tmp_path / "r.csv")
    code, _, err = run(capsys, "run", str(with_column), "--report", report)
    assert code == 2
    assert "has an 'account' column but no accounts file" in one_line_error(err)
    code, _, err = run(capsys, "run", str(without), "--accounts", str(accounts), "--report", report)
    assert code == 2
    assert "no 'account' column" in one_line_error(err)
    assert all(not server.state.requests for server in servers.values())


def test_an_accounts_file_named_in_a_job_file_resolves_beside_it(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    servers: dict[str, SimulatorThread],
) -> None:
    export_keys(monkeypatch)
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    write_accounts(jobs, servers)
    write_plan(jobs, list(KEYS))
    (jobs / "nightly.toml").write_text(
        'input = "plan.csv"\naccounts = "accounts.toml"\nreport = "out.csv"\n'
    )
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "run", str(jobs / "nightly.toml"))
    assert code == 0, err
    assert all(len(server.state.applied) == ROWS for server in servers.values())


def test_rollback_restores_every_account_with_its_own_key(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    servers: dict[str, SimulatorThread],
) -> None:
    export_keys(monkeypatch)
    accounts = write_accounts(tmp_path, servers)
    report = tmp_path / "r.csv"
    plan = write_plan(tmp_path, list(KEYS))
    before: dict[str, dict[int, int]] = {name: {} for name in KEYS}  # as the run read them
    code, _, err = run(
        capsys, "run", str(plan), "--accounts", str(accounts), "--report", str(report)
    )
    assert code == 0, err
    frame = pd.read_csv(report)
    for account, campaign, read in zip(
        frame["account"], frame["campaign_id"], frame["before"], strict=True
    ):
        before[str(account)][int(campaign)] = json.loads(str(read))["sending_limit"]
    backup = pd.read_parquet(tmp_path / "r.csv.backup.parquet")
    assert dict(zip(backup["campaign_id"], backup["account"], strict=True)) == {
        FIRST_ID[name] + n: name for name in KEYS for n in range(ROWS)
    }
    code, _, err = run_accounts(capsys, "rollback", report, accounts, tmp_path / "undo.csv")
    assert code == 0, err
    for name, server in servers.items():
        restored = {cid: server.state.settings[cid]["sending_limit"] for cid in before[name]}
        assert restored == before[name]
        assert {r.status for r in server.state.requests} == {200}  # every request its own key


def test_a_dry_run_and_validate_check_the_account_names(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    servers: dict[str, SimulatorThread],
) -> None:
    monkeypatch.delenv("ACME_SMARTLEAD_KEY", raising=False)  # neither needs a key
    accounts = write_accounts(tmp_path, servers)
    plan = tmp_path / "plan.csv"
    plan.write_text("campaign_id,account,sending_limit\n1000,acme,10\n2000,nobody,20\n")
    report = tmp_path / "dry.csv"
    code, out, err = run(
        capsys, "run", str(plan), "--accounts", str(accounts), "--dry-run", "--report", str(report)
    )
    assert code == 1, err
    assert list(pd.read_csv(report)["status"]) == ["dry_run", "invalid"]
    assert "rows setting each field: sending_limit 1" in out  # the account column is no setting
    code, out, _ = run(capsys, "validate", str(plan), "--accounts", str(accounts))
    assert code == 1
    assert f"{plan} row 2: account: 'nobody' is not in {accounts}" in out
    assert all(not server.state.requests for server in servers.values())


# --- one code path for one account and for many ---------------------------------------------------


def test_each_row_finished_event_names_the_account_it_was_sent_with(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    servers: dict[str, SimulatorThread],
) -> None:
    export_keys(monkeypatch)
    plan = write_plan(tmp_path, list(KEYS))
    accounts = write_accounts(tmp_path, servers)
    code, _, err = run_accounts(
        capsys, "run", plan, accounts, tmp_path / "r.csv", "--log-format", "json"
    )
    assert code == 0, err
    finished = [
        e for line in err.splitlines() if (e := json.loads(line))["event"] == "row_finished"
    ]
    assert len(finished) == ROWS * len(KEYS)
    for event in finished:  # campaigns 1000..., 2000..., 3000...: acme's, globex's, initech's
        assert event["account"] == next(n for n, first in FIRST_ID.items() if
                                        first <= event["campaign_id"] < first + ROWS)  # fmt: skip


def test_a_run_of_several_accounts_shows_its_progress(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, servers: dict[str, SimulatorThread]
) -> None:
    """The progress display watches every account's pipeline (a run of several accounts showed
    none)."""
    import bulkrunner.sending.session as session

    watched: list[list[str | None]] = []

    async def watch(config: object, pipelines: list[Pipeline], clock: object) -> None:
        watched.append([pipeline.connection.name for pipeline in pipelines])

    monkeypatch.setattr(session, "watch", watch)
    export_keys(monkeypatch)
    plan = write_plan(tmp_path, list(KEYS))
    accounts = write_accounts(tmp_path, servers)
    code = main(
        ["run", str(plan), "--accounts", str(accounts), "--report", str(tmp_path / "r.csv")]
    )
    assert code == 0
    assert watched == [list(KEYS)]


def test_the_progress_of_several_accounts_is_their_figures_together() -> None:
    pipelines = []
    for name, total, earlier, rate in (
        ("acme", 60, {Status.SUCCEEDED: 3, Status.FAILED: 1}, Rate(10, 2)),
        ("globex", 40, {Status.SUCCEEDED: 2}, Rate(5, 1)),
    ):
        account = Account(name, "K", (rate,), "http://127.0.0.1:9/api/v1", "k")
        through = connection(ScriptedSender(), FakeClock(), rates=[rate])
        through.account = account
        pipeline = Pipeline(RunConfig(input=Path("in.csv")), through, SETTINGS, Wire(), total=total)
        pipeline.earlier.update(earlier)
        pipelines.append(pipeline)
    shown = snapshot(pipelines, 1000.0)
    assert (shown.total, shown.succeeded, shown.failed) == (100, 5, 1)
    assert shown.limits == "acme 10/2; globex 5/1"
    each = [figures(pipeline, 1000.0).eta for pipeline in pipelines]
    assert shown.eta == max(each) > 0  # the accounts send at once: the slowest's time


def test_each_account_is_seeded_only_with_its_own_journaled_requests(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A resumed run of several accounts: the interrupted run's requests still fill their own
    account's windows, and no other's."""
    journal = tmp_path / "r.csv.journal"
    clock = FakeClock()
    with Journal.open(journal, input_path=tmp_path / "in.csv", started=clock.wall()) as kept:
        for number in (1, 2, 3):  # acme's rows, just finished
            done = Outcome(Status.SUCCEEDED, finished_at=clock.wall())
            kept.record(f"k{number}", number, number, done, account="acme")
    waits = {}
    for name in ("acme", "globex"):
        limiter = SlidingWindowLimiter([Rate(3, 60)], guard=0, clock=clock, sleep=clock.sleep)
        with caplog.at_level(logging.INFO, logger="bulkrunner"):
            seed(limiter, journal, name, 0, clock.clock)
        waits[name] = limiter.wait_time(clock())
    assert waits["acme"] == pytest.approx(60)  # its three requests fill its window
    assert waits["globex"] == 0
    lines = [r.getMessage() for r in caplog.records if "rate window" in r.getMessage()]
    assert lines == [
        "account acme: waiting 60s for the previous run's requests to leave the rate window"
    ]

"""``bulkrunner doctor``: one read of each account of the job or accounts file (or of the one key),
saying whether its key is accepted, the limits its server announces and how long it took to
answer; exit 1 when one fails, and never a key in the output."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from aiohttp import web

from bulkrunner.commands.doctor import doctor_job
from bulkrunner.config.job_file import build_config
from bulkrunner.errors import ExitCode, UsageError
from bulkrunner.model import Rate
from bulkrunner.simulator import SimulatorConfig, SimulatorThread
from tests.fakes import FakeClock, one_line_error, run
from tests.hostile import ServerThread

ACME_KEY = "sk-acme-doctor-SENTINEL-1"
BETA_KEY = "sk-beta-doctor-SENTINEL-2"


@pytest.fixture(autouse=True)
def keys(monkeypatch: pytest.MonkeyPatch, no_ambient_settings: None) -> None:
    monkeypatch.setenv("ACME_KEY", ACME_KEY)
    monkeypatch.setenv("BETA_KEY", BETA_KEY)
    monkeypatch.delenv("GAMMA_KEY", raising=False)


def accounts_file(tmp_path: Path, acme: str, beta: str) -> Path:
    path = tmp_path / "accounts.toml"
    path.write_text(
        f'[accounts.acme]\nkey_env = "ACME_KEY"\nrate = ["10/2", "60/60"]\nbase_url = "{acme}"\n'
        f'[accounts.beta]\nkey_env = "BETA_KEY"\nbase_url = "{beta}"\n'
        f'[accounts.gamma]\nkey_env = "GAMMA_KEY"\nbase_url = "{beta}"\n'
    )
    return path


@pytest.mark.real_clock  # it measures how long a real server took to answer
def test_each_account_is_read_once_and_its_verdict_said(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """acme's key is accepted (its server announces its limit and answers in 200 ms or more),
    beta's server refuses beta's key, gamma's variable is not set: exit 1."""
    acme = SimulatorConfig(api_key=ACME_KEY, campaigns={1, 2, 3}, rates=[Rate(60, 60)], latency=0.2)
    with (
        SimulatorThread(acme) as first,
        SimulatorThread(SimulatorConfig(api_key="another")) as second,
    ):
        acme_url, beta_url = first.base_url, second.base_url
        path = accounts_file(tmp_path, acme_url, beta_url)
        code, out, err = run(capsys, "doctor", str(path))
        assert [r.method + " " + r.path for r in first.state.requests] == ["GET /api/v1/campaigns/"]
        assert len(second.state.requests) == 1  # beta's one read; gamma's was never made
    assert code == ExitCode.ROWS_FAILED
    lines = out.splitlines()
    assert lines[0].startswith(
        f"account acme (ACME_KEY) at {acme_url}: key accepted, 3 campaigns listed, answered in "
    )
    latency = int(re.findall(r"answered in (\d+) ms", lines[0])[0])
    assert latency >= 200
    assert lines[0].endswith(
        "; the server announces 60 requests (59 left, renewing in 60s); "
        "limits held 10/2, 60/60, 1000/3600"
    )
    assert lines[1].startswith(f"account beta (BETA_KEY) at {beta_url}: key rejected: ")
    assert "401" in lines[1]
    assert lines[2] == (
        f"account gamma (GAMMA_KEY) at {beta_url}: GAMMA_KEY is not set: export that "
        "account's SmartLead API key in it"
    )
    assert lines[3] == "3 accounts checked: 2 failing"
    assert ACME_KEY not in out + err
    assert BETA_KEY not in out + err


def test_one_key_without_an_accounts_file(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SMARTLEAD_API_KEY", ACME_KEY)
    with SimulatorThread(SimulatorConfig(api_key=ACME_KEY, campaigns={5})) as sim:
        url = sim.base_url
        code, out, _ = run(capsys, "doctor", "--base-url", url, "--rate", "10/2")
    assert code == ExitCode.OK
    assert out.splitlines() == [
        out.splitlines()[0],
        "1 account checked: every key accepted",
    ]
    assert out.startswith(f"SMARTLEAD_API_KEY at {url}: key accepted, 1 campaign listed")
    assert "no rate-limit headers; limits held 10/2, 60/60, 1000/3600" in out


def test_a_job_file_gives_its_accounts_file_and_nothing_is_sent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with SimulatorThread(SimulatorConfig(api_key=ACME_KEY)) as sim:
        path = accounts_file(tmp_path, sim.base_url, sim.base_url)
        job = tmp_path / "job.toml"
        job.write_text(f'input = "plan.csv"\naccounts = "{path.name}"\nverify = true\n')
        code, out, _ = run(capsys, "doctor", str(job), "--log-format", "json")
        assert sim.state.writes() == []
    assert code == ExitCode.ROWS_FAILED
    (found,) = [json.loads(line) for line in out.splitlines()]
    assert found["event"] == "doctor"
    assert found["failing"] == 2
    acme, beta, gamma = found["accounts"]
    assert (acme["account"], acme["ok"], acme["http_status"], acme["campaigns"]) == (
        "acme", True, 200, acme["campaigns"],
    )  # fmt: skip
    assert acme["limits"] == ["10/2", "60/60", "1000/3600"]  # (the hour: published)
    assert (beta["ok"], beta["http_status"]) == (False, 401)
    assert (gamma["ok"], gamma["http_status"], gamma["attempts"]) == (False, None, 0)


def test_without_a_key_or_an_accounts_file_it_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = run(capsys, "doctor")
    assert code == ExitCode.USAGE
    assert one_line_error(err).startswith(
        "bulkrunner: error: SMARTLEAD_API_KEY is not set: export your SmartLead API key in it"
    )


def test_nothing_listening_is_a_failing_account(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SMARTLEAD_API_KEY", ACME_KEY)
    code, out, _ = run(capsys, "doctor", "--base-url", "http://127.0.0.1:9/api/v1")
    assert code == ExitCode.ROWS_FAILED
    assert "no answer: cannot connect: connection refused" in out
    assert "(is the base URL right?)" in out
    assert ACME_KEY not in out


def test_the_read_goes_through_the_retry_policy(tmp_path: Path) -> None:
    """A 503, then the list: the account is fine, after two attempts (the wait between them
    on the run's clock)."""
    answers = [web.Response(status=503, text="busy"), web.json_response([{"id": 1}])]

    async def handler(request: web.Request) -> web.StreamResponse:
        return answers.pop(0)

    clock = FakeClock()
    with ServerThread(handler) as server:
        config = build_config({}, {"input": "", "base_url": f"{server.url}/api/v1"})
        out = io.StringIO()
        code = doctor_job(config, out, {"SMARTLEAD_API_KEY": ACME_KEY}, clock.clock)
    assert code == ExitCode.OK
    assert len(clock.sleeps) == 1  # the retry's wait, not waited in real time
    first = out.getvalue().splitlines()[0]
    assert "key accepted, 1 campaign listed, answered in 0 ms after 2 attempts" in first


def test_an_error_of_the_command_is_its_one_line_not_an_internal_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An account's connection that cannot be made for a reason of the command (a state store
    that cannot be used...) ends it as that error says, though the accounts are read at once."""
    import bulkrunner.sending.connection as connection

    def refused(*args: object, **kwargs: object) -> object:
        raise UsageError("state.sqlite3: the store cannot be used")

    monkeypatch.setattr(connection, "connect", refused)
    monkeypatch.setenv("SMARTLEAD_API_KEY", ACME_KEY)
    code, _, err = run(capsys, "doctor")
    assert code == ExitCode.USAGE
    assert one_line_error(err) == "bulkrunner: error: state.sqlite3: the store cannot be used"


def test_doctor_simulate_lists_the_campaigns_export_simulate_exports(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """On a new simulated account, doctor said "0 campaigns listed" where export wrote 20."""
    from bulkrunner.cli.app import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SMARTLEAD_API_KEY", raising=False)
    assert main(["doctor", "--simulate"]) == 0
    assert "key accepted, 20 campaigns listed" in capsys.readouterr().out
    assert main(["export", "--simulate", "--output", "all.csv"]) == 0
    assert "exported 20 campaigns" in capsys.readouterr().out

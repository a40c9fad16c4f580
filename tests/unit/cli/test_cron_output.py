"""Output for cron and log shippers: --log-format json on every line, -q, --version, --notify.

The CLI runs in this process against the simulator (or a tiny webhook server) on 127.0.0.1;
Ctrl-C during the webhook call, which needs a process of its own, is in
``tests/e2e/test_interrupted_notify.py``.
"""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import threading
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bulkrunner.cli import app as cli
from bulkrunner.commands import run as job
from bulkrunner.output import notify
from bulkrunner.simulator import SimulatorConfig, SimulatorThread
from tests.fakes import rate_alone
from tests.hostile import RawServer, RunCli, ServerThread, trickle

KEY = "sk-live-SENTINEL-cron-7d1e"
FAST = (*rate_alone("200/1"), "--guard", "0")


def plan(folder: Path, ids: tuple[int, ...] = (1, 2, 3)) -> Path:
    path = folder / "plan.csv"
    path.write_text("campaign_id,sending_limit\n" + "".join(f"{i},{40 + i}\n" for i in ids))
    return path


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line of ``text`` as a JSON object (fails the test on any other line)."""
    entries = []
    for line in text.splitlines():
        entry = json.loads(line)
        assert isinstance(entry, dict), line
        assert "event" in entry, line
        assert "time" in entry, line
        entries.append(entry)
    return entries


def of(entries: list[dict[str, Any]], event: str) -> list[dict[str, Any]]:
    return [e for e in entries if e["event"] == event]


def run(cli: RunCli, folder: Path, *args: str, key: str = KEY) -> subprocess.CompletedProcess[str]:
    return cli(folder, key, "run", str(plan(folder)), "--report", "r.csv", *FAST, *args)


def test_json_mode_every_line_is_json_when_the_run_succeeds(
    tmp_path: Path, cli_here: RunCli
) -> None:
    with SimulatorThread(SimulatorConfig(api_key=KEY)) as sim:
        done = run(cli_here, tmp_path, "--base-url", sim.base_url, "--log-format", "json")
    assert done.returncode == 0, done.stderr
    out, err = json_lines(done.stdout), json_lines(done.stderr)
    (summary,) = of(out, "summary")
    assert summary["counts"] == {"succeeded": 3}
    assert summary["report"] == "r.csv"
    assert summary["requests"] == len(sim.state.requests)  # its reads first, then 3 POSTs
    assert len(sim.state.posts()) == 3
    assert of(err, "run_end")
    assert KEY not in done.stdout + done.stderr


def test_json_mode_every_line_is_json_when_rows_fail(tmp_path: Path, cli_here: RunCli) -> None:
    with SimulatorThread(SimulatorConfig(api_key=KEY, campaigns={1, 2})) as sim:
        done = run(cli_here, tmp_path, "--base-url", sim.base_url, "--log-format", "json")
    assert done.returncode == 1, done.stderr
    (summary,) = of(json_lines(done.stdout), "summary")
    assert summary["counts"] == {"succeeded": 2, "failed": 1}
    json_lines(done.stderr)


def test_json_mode_an_aborted_run_gives_its_resume_hint_as_json(
    tmp_path: Path, cli_here: RunCli
) -> None:
    with SimulatorThread(SimulatorConfig(api_key="another-key")) as sim:
        done = run(cli_here, tmp_path, "--base-url", sim.base_url, "--log-format", "json")
    assert done.returncode == 3, done.stderr
    out = json_lines(done.stdout)
    (hint,) = of(out, "resume_hint")
    assert "--resume" in hint["command"]
    assert hint["journal"] == "r.csv.journal"
    (summary,) = of(out, "summary")
    assert summary["aborted"].startswith("run aborted")
    assert any(e["level"] == "error" for e in json_lines(done.stderr))
    assert KEY not in done.stdout + done.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("run", "missing.csv", "--log-format", "json"),  # unusable input
        ("run", "--log-format", "json", "--no-such-option"),  # refused by the parser
        ("run", "--log-format=json", "--concurrency", "many"),
    ],
)
def test_json_mode_a_usage_error_is_one_json_line(
    tmp_path: Path, args: tuple[str, ...], cli_here: RunCli
) -> None:
    done = cli_here(tmp_path, KEY, *args)
    assert done.returncode == 2
    assert done.stdout == ""
    (error,) = json_lines(done.stderr)
    assert error["event"] == "error"
    assert error["level"] == "error"
    assert error["exit_code"] == 2
    assert error["message"]


def test_json_mode_an_internal_error_is_one_json_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(*_: object) -> int:
        raise RuntimeError(f"bug near https://x/?api_key={KEY}")

    monkeypatch.setenv("SMARTLEAD_API_KEY", KEY)
    monkeypatch.setattr(job, "run_job", broken)  # the CLI imports it when the command runs
    code = cli.main(["run", str(plan(tmp_path)), "--log-format", "json"])
    out, err = capsys.readouterr()
    assert code == 3
    assert out == ""
    (error,) = json_lines(err)
    assert error["internal"] is True
    assert "RuntimeError: bug near" in error["message"]
    assert KEY not in err


def test_quiet_shows_the_summary_and_nothing_below_errors(tmp_path: Path, cli_here: RunCli) -> None:
    with SimulatorThread(SimulatorConfig(api_key=KEY, campaigns={1, 2})) as sim:
        done = run(cli_here, tmp_path, "--base-url", sim.base_url, "-q", "--progress-interval", "0")
    assert done.returncode == 1
    assert done.stderr == ""  # the failed row is a warning: the summary counts it
    # the failed row's reason, then the summary (what a cron mail needs, even with -q)
    assert done.stdout.startswith(
        "1 row failed or was invalid:\n  row 3 (campaign 3): failed: campaign 3 not found (404)\n"
        "rows: 3 (2 succeeded, 1 failed)"
    )
    assert "report: r.csv" in done.stdout


def test_quiet_shows_errors_only(tmp_path: Path, cli_here: RunCli) -> None:
    with SimulatorThread(SimulatorConfig(api_key="another-key")) as sim:
        done = run(cli_here, tmp_path, "--base-url", sim.base_url, "-q")
    assert done.returncode == 3
    lines = done.stderr.splitlines()
    assert lines  # the error is there
    assert all("run aborted" in line for line in lines)  # and nothing else
    assert "to resume:" in done.stdout


def test_version_is_the_installed_packages(tmp_path: Path, cli_here: RunCli) -> None:
    done = cli_here(tmp_path, KEY, "--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"bulkrunner {version('bulkrunner')}"


# --- --notify ----------------------------------------------------------------------------------


class Webhook(ServerThread):
    """A webhook on 127.0.0.1 that keeps every JSON body posted to it."""

    def __init__(self, status: int = 200) -> None:
        self.bodies: list[Any] = []

        async def handler(request: web.Request) -> web.StreamResponse:
            self.bodies.append(await request.json())
            return web.Response(status=status, text="ok")

        super().__init__(handler)

    def __enter__(self) -> Webhook:
        super().__enter__()
        return self


def test_notify_posts_a_slack_compatible_message_when_rows_fail(
    tmp_path: Path, cli_here: RunCli
) -> None:
    with Webhook() as hook, SimulatorThread(SimulatorConfig(api_key=KEY, campaigns={1})) as sim:
        done = run(
            cli_here, tmp_path, "--base-url", sim.base_url, "--notify", f"{hook.url}/hook/T0/secret"
        )
    assert done.returncode == 1, done.stderr
    assert hook.requests == [("POST", "/hook/T0/secret")]
    (body,) = hook.bodies
    assert body["exit_code"] == 1
    assert body["counts"] == {"succeeded": 1, "failed": 2}
    assert body["report"] == "r.csv"
    assert body["job"].endswith("plan.csv")
    assert "exit 1" in body["text"]
    assert "2 failed" in body["text"]
    assert KEY not in json.dumps(body)
    # a webhook URL carries a token: messages show only its host, hints to paste leave it out
    assert "secret" not in done.stderr + done.stdout


def test_notify_says_why_a_run_stopped(tmp_path: Path, cli_here: RunCli) -> None:
    with Webhook() as hook:
        done = cli_here(tmp_path, "", "run", str(plan(tmp_path)), "--notify", hook.url)
    assert done.returncode == 2
    (body,) = hook.bodies
    assert body["exit_code"] == 2
    assert "SMARTLEAD_API_KEY is not set" in body["text"]


def test_notify_posts_nothing_when_the_run_succeeds(tmp_path: Path, cli_here: RunCli) -> None:
    with Webhook() as hook, SimulatorThread(SimulatorConfig(api_key=KEY)) as sim:
        done = run(cli_here, tmp_path, "--base-url", sim.base_url, "--notify", hook.url)
    assert done.returncode == 0
    assert hook.bodies == []


def refused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("answer", ["refused", "500"])
def test_a_notification_that_fails_is_logged_and_changes_no_exit_code(
    tmp_path: Path, answer: str, cli_here: RunCli
) -> None:
    with (
        Webhook(status=500) as hook,
        SimulatorThread(SimulatorConfig(api_key=KEY, campaigns={1})) as sim,
    ):
        url = f"http://127.0.0.1:{refused_port()}/x" if answer == "refused" else hook.url
        done = run(
            cli_here, tmp_path, "--base-url", sim.base_url, "--notify", url, "--log-format", "json"
        )
    assert done.returncode == 1
    messages = [str(e.get("message", "")) for e in json_lines(done.stderr)]
    warnings = [m for m in messages if m.startswith("notification")]
    assert len(warnings) == 1
    assert "not delivered" in warnings[0]


def test_notify_takes_only_http_urls(tmp_path: Path, cli_here: RunCli) -> None:
    done = cli_here(tmp_path, KEY, "run", str(plan(tmp_path)), "--notify", "ftp://example/x")
    assert done.returncode == 2
    assert "notify must be a webhook URL" in done.stderr


@pytest.mark.parametrize(
    ("given", "said"),
    [
        (["--notify", ""], "notify is empty: give a webhook URL, or leave it out"),
        (["--notify-env", ""], "notify env is empty: give the variable holding a webhook URL"),
        (["jobs/empty.toml"], "heartbeat is empty: give a heartbeat URL, or leave it out"),
    ],
    ids=["notify", "notify-env", "job file's heartbeat"],
)
def test_an_empty_url_is_refused_not_taken_as_none(
    tmp_path: Path, cli_here: RunCli, given: list[str], said: str
) -> None:
    """A cron job whose URL was templated out stopped alerting without a word."""
    source = plan(tmp_path)
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "empty.toml").write_text(f'input = "{source}"\nheartbeat = ""\n')
    args = given if given[0].endswith(".toml") else [str(source), *given]
    done = cli_here(tmp_path, KEY, "run", *args, "--simulate")
    assert done.returncode == 2
    assert said in done.stderr


# --- the webhook call: one deadline, never raises, Ctrl-C ends it cleanly -------------------------

TOKEN = "T0SECRET/B0SECRET/xoxSECRETtoken"
BODY = {"text": "bulkrunner run plan.csv ended with exit 1 (some rows failed)"}


def notification_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("notification")]


@pytest.mark.timeout(60)
def test_the_webhook_call_has_one_deadline_however_the_answer_trickles(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A byte every 20 ms: no read ever waits 0.5 s, yet the call gives up at 0.5 s in all and
    hangs up (not hours later, when the header line would grow too long)."""
    caplog.set_level(logging.INFO, "bulkrunner")
    with RawServer(trickle) as server:
        delivered = notify.send(f"{server.url}/hook/{TOKEN}", BODY, timeout=0.5)
        assert server.hung_up.wait(10)  # the client closed the connection it gave up on
    assert delivered is False
    assert notification_warnings(caplog) == [
        "notification to http://127.0.0.1 not delivered: no answer within 0.5s"
    ]


BAD_STATUS_LINE = b"SSH-2.0-OpenSSH_9.6 " + TOKEN.encode() + b"\r\n"
TOO_MANY_HEADERS = b"HTTP/1.1 200 OK\r\n" + b"X-Hop: a\r\n" * 101 + b"\r\n"


def answering(raw: bytes) -> Callable[[socket.socket, threading.Event], None]:
    def reply(connection: socket.socket, stopping: threading.Event) -> None:
        connection.sendall(raw)

    return reply


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (BAD_STATUS_LINE, "it did not answer HTTP (a malformed status line)"),
        (TOO_MANY_HEADERS, "it did not answer HTTP (got more than 100 headers)"),
        (b"", "it closed the connection without answering"),
        (b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n", "it answered HTTP 503"),
    ],
)
def test_a_webhook_answering_what_is_not_http_is_logged_never_raised(
    raw: bytes, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    with RawServer(answering(raw)) as server:
        delivered = notify.send(f"{server.url}/hook/{TOKEN}", BODY, timeout=5)
    assert delivered is False
    assert notification_warnings(caplog) == [
        f"notification to http://127.0.0.1 not delivered: {reason}"
    ]


@pytest.mark.parametrize(
    "url",
    [
        f"http://[::1/hook/{TOKEN}",
        f"http://hooks.example:port/{TOKEN}",
        f"http://hooks.example:99999/{TOKEN}",
        f"http://hooks example/{TOKEN}",
        f"http://127.0.0.1:9/hook/{TOKEN} with a space",
        f"https:///{TOKEN}",
    ],
)
def test_an_unusable_webhook_url_is_logged_without_its_token_never_raised(
    url: str, caplog: pytest.LogCaptureFixture, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert notify.send(url, BODY) is False
    (warning,) = notification_warnings(caplog)
    assert warning.startswith("notification not sent: the webhook URL must be a valid URL")
    assert "SECRET" not in warning
    # given to a run: refused before anything starts (exit 2), the token in no message either
    code = cli.main(["run", str(plan(tmp_path)), "--dry-run", "--notify", url])
    err = capsys.readouterr().err
    assert code == 2
    assert "notify must be a valid URL" in err
    assert "SECRET" not in err
    assert "Traceback" not in err


# --- the webhook URL from an environment variable -------------------------------------------------


def test_notify_env_reads_the_webhook_url_from_a_variable_never_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli_here: RunCli
) -> None:
    with Webhook() as hook, SimulatorThread(SimulatorConfig(api_key=KEY, campaigns={1})) as sim:
        monkeypatch.setenv("ALERT_WEBHOOK", f"{hook.url}/hook/{TOKEN}")
        done = run(cli_here, tmp_path, "--base-url", sim.base_url, "--notify-env", "ALERT_WEBHOOK")
        job_file = tmp_path / "nightly.toml"
        job_file.write_text(
            f'input = "plan.csv"\nreport = "j.csv"\nbase_url = "{sim.base_url}"\n'
            'notify_env = "ALERT_WEBHOOK"\n'
        )
        from_job = cli_here(tmp_path, KEY, "run", str(job_file), *FAST)
    assert (done.returncode, from_job.returncode) == (1, 1)
    assert hook.requests == [("POST", f"/hook/{TOKEN}")] * 2
    assert [body["exit_code"] for body in hook.bodies] == [1, 1]
    for output in (done.stdout + done.stderr, from_job.stdout + from_job.stderr):
        assert "SECRET" not in output
        assert "notification sent to http://127.0.0.1" in output


@pytest.mark.parametrize(
    ("value", "args", "message"),
    [
        (
            None,
            ("--notify-env", "ALERT_WEBHOOK"),
            "the environment variable ALERT_WEBHOOK is not set",
        ),
        (
            f"ftp://hooks.example/{TOKEN}",
            ("--notify-env", "ALERT_WEBHOOK"),
            "ALERT_WEBHOOK must hold a webhook URL starting with http:// or https://, got "
            "'ftp://hooks.example'",
        ),
        (
            f"http://127.0.0.1:9/{TOKEN}",
            ("--notify-env", "ALERT_WEBHOOK", "--notify", "http://127.0.0.1:9/x"),
            "notify and notify env both name a webhook: give one of them",
        ),
    ],
)
def test_a_notify_env_without_a_webhook_url_is_a_usage_error_naming_the_variable(
    value: str | None,
    args: tuple[str, ...],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if value is None:
        monkeypatch.delenv("ALERT_WEBHOOK", raising=False)
    else:
        monkeypatch.setenv("ALERT_WEBHOOK", value)
    code = cli.main(["run", str(plan(tmp_path)), "--dry-run", *args])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert message in err
    assert "SECRET" not in err


def test_a_job_files_webhook_gives_way_to_the_command_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bulkrunner.config.job_file import build_config

    monkeypatch.setenv("ALERT_WEBHOOK", f"http://127.0.0.1:9/{TOKEN}")
    job_values = {"input": "in.csv", "notify": "http://127.0.0.1:9/from-the-job"}
    config = build_config(job_values, {"notify_env": "ALERT_WEBHOOK"})
    assert config.notify == f"http://127.0.0.1:9/{TOKEN}"
    config = build_config(
        {"input": "in.csv", "notify_env": "ALERT_WEBHOOK"}, {"notify": "http://h/x"}
    )
    assert config.notify == "http://h/x"

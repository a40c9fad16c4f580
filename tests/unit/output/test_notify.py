"""Which exits notify (``--notify-on``, job file ``notify_on``; every failure but 4 by default),
what the message says happened, and ``--heartbeat URL``, pinged when a run succeeds, for a
dead-man switch. The command line runs in this process against the simulator and small servers
of the test's own, all on 127.0.0.1."""

from __future__ import annotations

import logging
import signal
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bulkrunner.cli import app as cli
from bulkrunner.config.folders import input_lock_path
from bulkrunner.output import notify
from bulkrunner.records.locks import RunLock
from bulkrunner.simulator import SimulatorConfig, SimulatorThread
from tests.hostile import RawServer, ServerThread, silent

KEY = "sk-notify-on-SENTINEL-12"
TOKEN = "HBSECRET-5d1c/ping"


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SMARTLEAD_API_KEY", KEY)
    monkeypatch.delenv("SMARTLEAD_BASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)


class Receiver(ServerThread):
    """A webhook or heartbeat endpoint: records each request (method and path) and each body."""

    def __init__(self, status: int = 200) -> None:
        self.bodies: list[bytes] = []

        async def handler(request: web.Request) -> web.StreamResponse:
            self.bodies.append(await request.read())
            return web.Response(status=status, text="OK")

        super().__init__(handler)


def plan(tmp_path: Path, text: str = "campaign_id,sending_limit\n1,41\n2,42\n") -> Path:
    path = tmp_path / "plan.csv"
    path.write_text(text)
    return path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = cli.main(["run", *args, "--rate", "100/1", "--report", "r.csv"])
    out, err = capsys.readouterr()
    return code, out + err


# --- notify_on ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("notify_on", "posted"),
    [(None, 1), ("1,3", 1), ("3", 0), ("2, 3", 0), ("0,1", 1)],
)
def test_only_the_exit_codes_of_notify_on_notify(
    notify_on: str | None,
    posted: int,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    chosen = ("--notify-on", notify_on) if notify_on is not None else ()
    with Receiver() as hook, SimulatorThread(SimulatorConfig(api_key=KEY, campaigns={1})) as sim:
        code, said = run(capsys, str(plan(tmp_path)), "--base-url", sim.base_url,
                         "--notify", f"{hook.url}/hook", *chosen)  # fmt: skip
    assert code == 1, said  # campaign 2 does not exist
    assert len(hook.requests) == posted


def test_another_run_in_progress_notifies_no_one_by_default(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = plan(tmp_path)
    with (
        Receiver() as hook,
        SimulatorThread(SimulatorConfig(api_key=KEY)) as sim,
        RunLock(input_lock_path(path), datetime.now(UTC)),
    ):
        args = (str(path), "--base-url", sim.base_url, "--notify", hook.url)
        code, said = run(capsys, *args)
        assert code == 4, said
        assert hook.requests == []
        code, said = run(capsys, *args, "--notify-on", "4")
        assert code == 4, said
        assert len(hook.requests) == 1
        assert sim.state.requests == []


def test_a_job_file_gives_notify_on_as_a_list(tmp_path: Path) -> None:
    from bulkrunner.config.job_file import build_config, read_job_file

    job = tmp_path / "job.toml"
    job.write_text('input = "plan.csv"\nnotify_on = [3, 1, 3]\n')
    assert build_config(read_job_file(job), {}).notify_on == (1, 3)
    assert build_config(read_job_file(job), {"notify_on": "2"}).notify_on == (2,)
    assert build_config({"input": "x.csv"}, {}).notify_on == (1, 2, 3)


@pytest.mark.parametrize("given", ["1,9", "one", "[1]"])
def test_a_notify_on_that_is_no_exit_code_is_a_usage_error(
    given: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, said = run(capsys, str(plan(tmp_path)), "--dry-run", "--notify-on", given)
    assert code == 2
    assert "notify on:" in said
    assert "is not an exit code (0, 1, 2, 3, 4, 5)" in said


# --- what the message says ---------------------------------------------------------------------


def test_the_message_says_what_happened_not_that_rows_failed_when_none_did(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    path = plan(tmp_path, "campaign_id,sending_limit\n1,41\n2,many\n")
    with Receiver() as hook, SimulatorThread(SimulatorConfig(api_key=KEY, campaigns={1})) as sim:
        code, said = run(capsys, str(path), "--base-url", sim.base_url, "--notify", hook.url)
    assert code == 1, said
    (body,) = [json.loads(raw) for raw in hook.bodies]
    assert "ended with exit 1 (1 row invalid): 1 succeeded, 1 invalid" in body["text"]
    assert "failed" not in body["text"]


@pytest.mark.parametrize(
    ("code", "counts", "unrestorable", "headline"),
    [
        (1, {"succeeded": 3, "failed": 2, "invalid": 1}, 0, "2 rows failed, 1 row invalid"),
        (1, {"succeeded": 1, "mismatch": 1, "not_attempted": 4}, 0,
         "1 row mismatched, 4 rows not attempted"),
        (1, {"succeeded": 2}, 3, "3 campaigns not restored"),
        (1, {}, 0, "some rows failed"),  # nothing to say it better with
        (3, {"succeeded": 1, "not_attempted": 9}, 0, "aborted, resumable"),
        (2, {}, 0, "usage error, nothing sent"),
    ],
)  # fmt: skip
def test_the_headline_of_a_message(
    code: int, counts: dict[str, int], unrestorable: int, headline: str
) -> None:
    summary: dict[str, Any] = {"counts": counts}
    body = notify.message(
        job="j.toml", command="run", exit_code=code, summary=summary, unrestorable=unrestorable
    )
    assert body["text"].startswith(f"bulkrunner run j.toml ended with exit {code} ({headline})")


# --- --heartbeat -------------------------------------------------------------------------------


def test_a_run_that_succeeds_pings_the_heartbeat_with_a_get_and_one_that_fails_does_not(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Receiver() as beat, SimulatorThread(SimulatorConfig(api_key=KEY)) as sim:
        url = f"{beat.url}/{TOKEN}"
        code, said = run(capsys, str(plan(tmp_path)), "--base-url", sim.base_url,
                         "--heartbeat", url)  # fmt: skip
        assert code == 0, said
        assert beat.requests == [("GET", f"/{TOKEN}")]
        assert beat.bodies == [b""]
        assert "heartbeat sent to http://127.0.0.1" in said
        assert "SECRET" not in said  # the URL is a token: only its host is shown
        bad = plan(tmp_path, "campaign_id,sending_limit\n1,many\n")
        code, said = run(capsys, str(bad), "--base-url", sim.base_url, "--heartbeat", url)
        assert code == 1
        assert len(beat.requests) == 1  # no ping: the dead-man switch alerts


def nightly_job(
    folder: Path, sim: SimulatorThread, heartbeat: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``folder/job.toml``, of ``plan.csv`` against ``sim``, pinging the URL its variable
    ``NIGHTLY_HEARTBEAT`` holds: ``heartbeat``."""
    monkeypatch.setenv("NIGHTLY_HEARTBEAT", heartbeat)
    plan(folder)
    (folder / "job.toml").write_text(
        f'input = "plan.csv"\nbase_url = "{sim.base_url}"\nheartbeat_env = "NIGHTLY_HEARTBEAT"\n'
    )


def test_the_heartbeat_url_may_come_from_a_variable_and_a_job_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with Receiver() as beat, SimulatorThread(SimulatorConfig(api_key=KEY)) as sim:
        nightly_job(tmp_path, sim, f"{beat.url}/{TOKEN}", monkeypatch)
        code, said = run(capsys, "job.toml")
    assert code == 0, said
    assert beat.requests == [("GET", f"/{TOKEN}")]
    assert "SECRET" not in said


def test_a_rollback_of_the_job_pings_no_heartbeat_nor_is_told_to(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The heartbeat says the job ran: a rollback undoes it. Its pasted command leaves the
    heartbeat out, and a rollback of the job file's heartbeat does not ping it."""
    with Receiver() as beat, SimulatorThread(SimulatorConfig(api_key=KEY)) as sim:
        nightly_job(tmp_path, sim, f"{beat.url}/{TOKEN}", monkeypatch)
        code, said = run(capsys, "job.toml", "--heartbeat-env", "NIGHTLY_HEARTBEAT")
        assert code == 0, said
        assert len(beat.requests) == 1
        (undo,) = [line for line in said.splitlines() if "bulkrunner rollback" in line]
        assert "heartbeat" not in undo
        assert cli.main(["rollback", "r.csv", "job.toml", "--report", "u.csv"]) == 0
        assert len(beat.requests) == 1
        capsys.readouterr()
        with pytest.raises(SystemExit):
            cli.main(["rollback", "r.csv", "--heartbeat", f"{beat.url}/{TOKEN}"])
        assert "unrecognized arguments: --heartbeat" in capsys.readouterr().err


@pytest.mark.parametrize("answer", ["refused", "500"])
def test_a_heartbeat_that_fails_is_logged_and_changes_no_exit_code(
    answer: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}/{TOKEN}"
    with Receiver(status=500) as beat, SimulatorThread(SimulatorConfig(api_key=KEY)) as sim:
        url = closed if answer == "refused" else f"{beat.url}/{TOKEN}"
        code, said = run(capsys, str(plan(tmp_path)), "--base-url", sim.base_url,
                         "--heartbeat", url)  # fmt: skip
    assert code == 0
    (warning,) = [line for line in said.splitlines() if "heartbeat" in line]
    assert "heartbeat to http://127.0.0.1 not delivered" in warning
    assert "SECRET" not in said


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--heartbeat", "ftp://beats.example/x"), "heartbeat must be a heartbeat URL starting"),
        (("--heartbeat-env", "NO_SUCH_VARIABLE"), "heartbeat env: the environment variable "
         "NO_SUCH_VARIABLE is not set: export the heartbeat URL in it"),
    ],
)  # fmt: skip
def test_an_unusable_heartbeat_is_a_usage_error(
    args: tuple[str, ...], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, said = run(capsys, str(plan(tmp_path)), "--dry-run", *args)
    assert code == 2
    assert message in said


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="no signals to one thread")
@pytest.mark.timeout(30)  # a wait woken only at its deadline, an hour away, fails here
def test_ctrl_c_the_kernel_gives_the_calls_thread_still_abandons_the_call(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A process's signal may go to any of its threads; given to the one making the call, it
    does not wake the main thread's wait for it, whose handler must still run at once, not at
    the call's deadline (ten seconds after Ctrl-C, as a loaded machine's run showed)."""

    def interrupt_the_call() -> None:
        server.accepted.wait(30)
        (call,) = [t for t in threading.enumerate() if t.name == "bulkrunner-notification"]
        assert call.ident is not None
        signal.pthread_kill(call.ident, signal.SIGINT)

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with RawServer(silent) as server, caplog.at_level(logging.WARNING, "bulkrunner"):
            threading.Thread(target=interrupt_the_call, daemon=True).start()
            delivered = notify.send(f"{server.url}/hook", {"text": "done"}, timeout=3600)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert not delivered
    assert [r.getMessage() for r in caplog.records] == [
        "notification to http://127.0.0.1 abandoned: interrupted"
    ]


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="no signals to one thread")
@pytest.mark.timeout(30)
def test_sigterm_while_a_call_waits_abandons_it_as_ctrl_c_does(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A scheduler stopping the job as the webhook is called: SIGTERM's own action would end
    the process (143), losing the run's exit code."""

    def terminate() -> None:
        server.accepted.wait(30)
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGTERM)

    previous = signal.getsignal(signal.SIGTERM)
    with RawServer(silent) as server, caplog.at_level(logging.WARNING, "bulkrunner"):
        threading.Thread(target=terminate, daemon=True).start()
        delivered = notify.send(f"{server.url}/hook", {"text": "done"}, timeout=3600)
    assert not delivered
    assert [r.getMessage() for r in caplog.records] == [
        "notification to http://127.0.0.1 abandoned: interrupted"
    ]
    assert signal.getsignal(signal.SIGTERM) is previous  # given back


@pytest.mark.timeout(30)
def test_a_call_abandoned_while_it_connects_sends_nothing_and_leaves_no_connection_open(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """At its deadline the call may still be connecting (a host name being resolved, or a
    thread the machine has not run yet): it must not send the message afterwards, which the
    run has already said was not delivered, and the connection it goes on to make is closed,
    not left open for the garbage collector to find in a later test."""
    import http.client

    release = threading.Event()
    made: list[http.client.HTTPConnection] = []
    sent: list[str] = []
    connect, request = http.client.HTTPConnection.connect, http.client.HTTPConnection.request

    def late_connect(connection: http.client.HTTPConnection) -> None:
        made.append(connection)
        release.wait(30)
        connect(connection)

    def recorded(
        connection: http.client.HTTPConnection, method: str, *args: Any, **kw: Any
    ) -> None:
        sent.append(method)
        request(connection, method, *args, **kw)

    monkeypatch.setattr(http.client.HTTPConnection, "connect", late_connect)
    monkeypatch.setattr(http.client.HTTPConnection, "request", recorded)
    # a server of plain sockets, each closed by the thread answering it: no server's transport
    # is left to the garbage collector when the test ends as the client hangs up
    with RawServer(silent) as server, caplog.at_level(logging.WARNING, "bulkrunner"):
        delivered = notify.send(f"{server.url}/hook", {"text": "done"}, timeout=0.05)
        (call,) = [t for t in threading.enumerate() if t.name == "bulkrunner-notification"]
        release.set()
        call.join(30)
        assert not call.is_alive()
    assert not delivered
    assert [r.getMessage() for r in caplog.records] == [
        "notification to http://127.0.0.1 not delivered: no answer within 0.05s"
    ]
    assert sent == []
    assert [connection.sock for connection in made] == [None]  # closed


@pytest.mark.timeout(30)
def test_a_call_abandoned_after_it_connected_and_before_it_sent_sends_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The caller's deadline may come between the call's last look and its request: the
    connection abandoning closes must not open itself again to send (http.client would)."""
    import http.client

    sent: list[bytes] = []
    send, given_up = http.client.HTTPConnection.send, notify._Call._given_up

    def recorded(connection: http.client.HTTPConnection, data: Any) -> None:
        send(connection, data)
        sent.append(bytes(data))

    def then_abandoned(call: Any) -> bool:
        answer = given_up(call)
        call.abandon()  # the caller's deadline, just after the call looked
        return answer

    monkeypatch.setattr(http.client.HTTPConnection, "send", recorded)
    monkeypatch.setattr(notify._Call, "_given_up", then_abandoned)
    with RawServer(silent) as server:
        delivered = notify.send(f"{server.url}/hook", {"text": "done"}, timeout=1)
    assert not delivered
    assert sent == []

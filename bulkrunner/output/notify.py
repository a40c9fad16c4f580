"""``--notify URL``: when a run ends with an exit code of ``--notify-on`` (every failure but 4 by
default), POST a short JSON message to a webhook; ``--heartbeat URL``: when it ends with exit 0,
GET a URL, for a dead-man switch that alerts when a job stops running.

The message is Slack-compatible (its ``text`` is what a person reads: what happened, ``1 row
invalid``) and carries the same facts as fields for other receivers: the job, the exit code, the
rows of each status, why the run stopped and where its report is. Never the API key. The
heartbeat is a GET without a body: the one request every such service (healthchecks.io,
Cronitor, Dead Man's Snitch, Better Stack...) documents, the ``curl URL`` of their pages. Either
URL is itself a secret (it carries a token): it may come from an environment variable
(``--notify-env VAR``, ``--heartbeat-env VAR``), so that it is not in the process list, and
messages about it name only its scheme and host.

Either call is best effort, bounded and harmless: it has one deadline for everything (resolving
the host, connecting, sending, the answer), however a server trickles its answer; whatever goes
wrong, a malformed answer or Ctrl-C included, is logged, never raised, and never changes the
run's exit code.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import SplitResult

from bulkrunner.config.environment import sigterm_as_ctrl_c
from bulkrunner.config.redaction import redact
from bulkrunner.config.webhook import target, webhook_label, webhook_problem
from bulkrunner.errors import ExitCode
from bulkrunner.model import FINE, Status, count

log = logging.getLogger("bulkrunner")

TIMEOUT = 10.0  # seconds for the whole call: a webhook that does not answer must not hold up cron
_SLICE = 0.1  # seconds: how soon Ctrl-C is acted on while the call waits
_SHORTEST_SECRET = 4  # parts of a URL shorter than this are not hidden from messages (no token)


def message(
    *,
    job: str,
    command: str,
    exit_code: int,
    summary: Mapping[str, Any] | None,
    error: str | None = None,
    unrestorable: int = 0,
) -> dict[str, Any]:
    """The JSON body: ``text`` for people (and Slack), the same facts as fields.
    ``unrestorable``: the campaigns a rollback left as they are."""
    summary = summary or {}
    counts: dict[str, int] = dict(summary.get("counts") or {})
    report = summary.get("report")
    aborted = summary.get("aborted")
    text = (
        f"bulkrunner {command} {job} ended with exit {exit_code} "
        f"({_headline(exit_code, counts, unrestorable)})"
    )
    if counts:
        text += ": " + ", ".join(f"{n} {status}" for status, n in counts.items())
    for extra in (aborted, error):
        if extra:
            text += f"; {extra}"
    if report:
        text += f"; report: {report}"
    return {
        "text": text,
        "job": job,
        "command": command,
        "exit_code": exit_code,
        "counts": counts,
        "aborted": aborted,
        "error": error,
        "report": report,
        "host": socket.gethostname(),
    }


def _headline(exit_code: int, counts: Mapping[str, int], unrestorable: int) -> str:
    """What the exit code says happened: for rows that did not all succeed, which did not and
    how many (``1 row invalid``), else the code's meaning."""
    if exit_code == ExitCode.ROWS_FAILED:
        said = [
            f"{count(n, 'row')} {_SAID.get(status, status.replace('_', ' '))}"
            for status, n in counts.items()
            if n and status not in FINE
        ]
        if unrestorable:
            said.append(f"{count(unrestorable, 'campaign')} not restored")
        if said:
            return ", ".join(said)
    try:
        return ExitCode(exit_code).brief
    except ValueError:  # not one of bulkrunner's codes
        return "failed"


_SAID = {Status.MISMATCH.value: "mismatched"}  # a status as the headline says it, if not as is


def send(
    url: str, body: Mapping[str, Any], secrets: Iterable[str] = (), timeout: float = TIMEOUT
) -> bool:
    """POST ``body`` to ``url`` (key redacted) within ``timeout`` seconds in all; True when the
    webhook answered 2xx. Failures, the deadline and Ctrl-C are logged, never raised."""
    data = redact(json.dumps(body), secrets).encode()
    return _deliver(url, data, secrets, timeout, "notification", "the webhook URL")


def ping(url: str, secrets: Iterable[str] = (), timeout: float = TIMEOUT) -> bool:
    """GET ``url`` (``--heartbeat``) within ``timeout`` seconds in all; True when it answered
    2xx. Failures, the deadline and Ctrl-C are logged, never raised."""
    return _deliver(url, None, secrets, timeout, "heartbeat", "the heartbeat URL")


def _deliver(
    url: str, data: bytes | None, secrets: Iterable[str], timeout: float, what: str, called: str
) -> bool:
    """POST ``data`` to ``url``, or GET it when None (``what``: "notification", "heartbeat";
    ``called``: how the URL is named), as ``send`` says."""
    where = webhook_label(url)
    hidden = [*secrets, *_secret_parts(url)]
    problem = webhook_problem(url, called.replace("the ", "a ", 1))
    if problem:
        log.warning("%s not sent: %s must be %s", what, called, redact(problem, hidden))
        return False
    call = _Call(target(url), data, timeout)
    try:
        with sigterm_as_ctrl_c():  # before the call starts: a signal may come as soon as it does
            threading.Thread(target=call.run, name=f"bulkrunner-{what}", daemon=True).start()
            answered = _waited(call.done, timeout)
    except KeyboardInterrupt:
        call.abandon()
        log.warning("%s to %s abandoned: interrupted", what, where)
        return False
    if not answered:
        call.abandon()
        log.warning("%s to %s not delivered: no answer within %gs", what, where, timeout)
        return False
    if call.error is not None:
        reason = redact(_describe(call.error, timeout), hidden)
        log.warning("%s to %s not delivered: %s", what, where, reason)
        return False
    if call.status is None or not 200 <= call.status < 300:
        log.warning("%s to %s not delivered: it answered HTTP %s", what, where, call.status)
        return False
    log.info("%s sent to %s", what, where)
    return True


def _waited(done: threading.Event, timeout: float) -> bool:
    """``done.wait(timeout)`` a slice at a time: the kernel may give a signal to the call's
    thread, which does not wake this one's wait, and its handler (Ctrl-C) runs only when this
    thread next runs Python."""
    deadline = time.monotonic() + timeout
    while not done.wait(min(_SLICE, max(0.0, deadline - time.monotonic()))):
        if time.monotonic() >= deadline:
            return False
    return True


class _Call:
    """One POST (of ``data``) or GET (``data`` None), made in a thread of its own so that the
    caller can give up on it at its deadline (a host name being resolved cannot be
    interrupted); abandoning it closes its connection, which ends a read the server keeps
    alive, and one abandoned while it connects sends nothing."""

    def __init__(self, target: SplitResult, data: bytes | None, timeout: float) -> None:
        self.target = target
        self.data = data
        self.timeout = timeout  # of each socket operation; the caller holds the deadline
        self.done = threading.Event()
        self.status: int | None = None
        self.error: BaseException | None = None
        self._lock = threading.Lock()
        self._connection: Any = None  # http.client.HTTPConnection, once made
        self._abandoned = False

    def run(self) -> None:
        import http.client  # only when a notification goes out

        target = self.target
        path = (target.path or "/") + (f"?{target.query}" if target.query else "")
        connection: http.client.HTTPConnection | None = None
        try:
            if target.scheme == "https":
                import ssl

                connection = http.client.HTTPSConnection(
                    target.hostname or "",
                    target.port,
                    timeout=self.timeout,
                    context=ssl.create_default_context(),
                )
            else:
                connection = http.client.HTTPConnection(
                    target.hostname or "", target.port, timeout=self.timeout
                )
            with self._lock:
                if self._abandoned:
                    return
                self._connection = connection
            # closed by abandon(), the connection must not open itself again to send
            connection.auto_open = 0
            connection.connect()
            if self._given_up():  # while connecting: the caller has said it was not sent
                return
            # Neither proxies from the environment nor redirects: as for the API itself.
            headers = {"User-Agent": "bulkrunner"}
            if self.data is None:
                connection.request("GET", path, headers=headers)
            else:
                headers["Content-Type"] = "application/json"
                connection.request("POST", path, body=self.data, headers=headers)
            self.status = connection.getresponse().status
        except BaseException as exc:  # a thread's exception would only be printed: keep it
            self.error = exc
        finally:
            self.abandon()
            if connection is not None:  # one abandoned before it had a socket has one now
                connection.close()
            self.done.set()

    def _given_up(self) -> bool:
        with self._lock:
            return self._abandoned

    def abandon(self) -> None:
        with self._lock:
            self._abandoned = True
            connection, self._connection = self._connection, None
        if connection is not None:
            sock = connection.sock
            if sock is not None:
                with contextlib.suppress(OSError):  # (already closed by the server)
                    sock.shutdown(socket.SHUT_RDWR)  # ends a read blocked in the other thread
            connection.close()


_AFTER_HOST = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://(?:([^/?#]*)@)?[^/?#]*(.*)$", re.DOTALL)


def _secret_parts(url: str) -> list[str]:
    """What of ``url`` a message must not repeat: all of it but its scheme and host (the path
    and query of a Slack webhook are its token; a user and password), whole and piece by
    piece, as an exception message may quote any of them."""
    found = _AFTER_HOST.match(url)
    userinfo, rest = (found.group(1) or "", found.group(2)) if found else ("", url)
    pieces = [url, userinfo, rest, *re.split(r"[/?&=;#:@]", f"{userinfo}/{rest}")]
    return [piece for piece in pieces if len(piece) >= _SHORTEST_SECRET]


def _describe(error: BaseException, timeout: float) -> str:
    """What went wrong, in words that do not repeat the URL."""
    import http.client

    if isinstance(error, TimeoutError):
        return f"no answer within {timeout:g}s"
    if isinstance(error, http.client.RemoteDisconnected):  # a BadStatusLine too, but not one
        return "it closed the connection without answering"
    if isinstance(error, http.client.BadStatusLine):
        return "it did not answer HTTP (a malformed status line)"
    if isinstance(error, http.client.LineTooLong):
        return "it did not answer HTTP (a line too long)"
    if isinstance(error, http.client.HTTPException):
        return f"it did not answer HTTP ({error})"
    if isinstance(error, OSError):
        return str(getattr(error, "verify_message", None) or error.strerror or error)
    return f"{type(error).__name__}: {error}"

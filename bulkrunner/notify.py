"""``--notify URL``: when a run ends with a non-zero exit, POST a short JSON message to a webhook.

The message is Slack-compatible (its ``text`` is what a person reads) and carries the same facts
as fields for other receivers: the job, the exit code, the rows of each status, why the run
stopped and where its report is. Never the API key. A webhook URL is itself a secret (Slack's
carry a token), so messages about it name only its scheme and host. A notification that cannot
be delivered is logged; it never changes the run's exit code.
"""

from __future__ import annotations

import json
import logging
import socket
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from bulkrunner.errors import ExitCode
from bulkrunner.redaction import redact

log = logging.getLogger("bulkrunner")

TIMEOUT = 10.0  # seconds: a webhook that does not answer must not hold up cron


def webhook_label(url: str) -> str:
    """The URL as messages may show it: scheme and host only."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}" if parts.scheme else "(not a URL)"


def message(
    *,
    job: str,
    command: str,
    exit_code: int,
    summary: Mapping[str, Any] | None,
    error: str | None = None,
) -> dict[str, Any]:
    """The JSON body: ``text`` for people (and Slack), the same facts as fields."""
    summary = summary or {}
    counts: dict[str, int] = dict(summary.get("counts") or {})
    report = summary.get("report")
    aborted = summary.get("aborted")
    try:
        meaning = ExitCode(exit_code).brief
    except ValueError:  # not one of bulkrunner's codes
        meaning = "failed"
    text = f"bulkrunner {command} {job} ended with exit {exit_code} ({meaning})"
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


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a redirect is an answer like any other: not delivered


def send(
    url: str, body: Mapping[str, Any], secrets: Iterable[str] = (), timeout: float = TIMEOUT
) -> bool:
    """POST ``body`` to ``url`` (key redacted); True when the webhook answered 2xx. Failures are
    logged, never raised."""
    if not url.startswith(("http://", "https://")):
        log.warning("notification not sent: %s is not an http(s) URL", webhook_label(url))
        return False
    data = redact(json.dumps(body), secrets).encode()
    request = urllib.request.Request(
        url, data=data, method="POST", headers={"Content-Type": "application/json"}
    )
    # Proxies from the environment are not used, as for the API itself (aiohttp's default).
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect)
    where = webhook_label(url)
    try:
        with opener.open(request, timeout=timeout) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        log.warning("notification to %s not delivered: it answered HTTP %d", where, exc.code)
        return False
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        log.warning("notification to %s not delivered: %s", where, redact(str(reason), secrets))
        return False
    if not 200 <= status < 300:
        log.warning("notification to %s not delivered: it answered HTTP %d", where, status)
        return False
    log.info("notification sent to %s", where)
    return True

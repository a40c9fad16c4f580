"""The webhook URL of ``--notify`` / ``--notify-env`` and the heartbeat URL of ``--heartbeat`` /
``--heartbeat-env``: whether one can be used, and how messages may name it (its path and query
are a token: only its scheme and host are shown)."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import SplitResult, urlsplit

from bulkrunner.errors import UsageError


def webhook_label(url: str) -> str:
    """The URL as messages may show it: scheme and host only."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(not a valid URL)"
    return f"{parts.scheme}://{parts.hostname or '?'}" if parts.scheme else "(not a URL)"


def webhook_problem(url: str, what: str = "a webhook URL") -> str:
    """What ``url`` must be to be a webhook (``what``: or another URL called), if it is not (""
    when it is), in words that follow "must be" and do not repeat its secret parts."""
    if not url.startswith(("http://", "https://")):
        return f"{what} starting with http:// or https://, got {webhook_label(url)!r}"
    try:
        target(url)
    except ValueError:
        return f"a valid URL (a host, a port number if any, no spaces), got {webhook_label(url)!r}"
    return ""


def from_environment(
    variable: str, environ: Mapping[str, str], option: str = "notify", what: str = "a webhook URL"
) -> str:
    """The URL held by the environment variable ``variable`` (``--notify-env``, or the
    ``--<option>-env`` of another URL, ``what``); a UsageError naming the variable, never its
    value, when it holds none."""
    url = environ.get(variable, "").strip()
    if not url:
        raise UsageError(
            f"{option} env: the environment variable {variable} is not set: export "
            f"the {what.removeprefix('a ')} in it"
        )
    problem = webhook_problem(url, what)
    if problem:
        raise UsageError(f"{option} env: {variable} must hold {problem}")
    return url


def target(url: str) -> SplitResult:
    """``url`` split, its host and port checked; ValueError when they cannot be read."""
    parts = urlsplit(url)
    _ = parts.port  # a port that is not a number from 0 to 65535 raises ValueError
    host = parts.hostname
    if not host or any(ch.isspace() or ord(ch) < 32 for ch in host):
        raise ValueError("no host")
    if any(ch.isspace() or ord(ch) < 32 for ch in parts.path + parts.query):
        raise ValueError("a space or control character in the path")
    return parts

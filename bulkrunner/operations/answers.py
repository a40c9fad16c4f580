"""What came back for one request, and how to read SmartLead's many body shapes.

Success bodies seen in the wild: ``{"success": true, "data": {}}``, ``{"ok": true}``, plain text.
Error bodies: ``{"error": "..."}``, ``{"error": {"code", "message", "details"}}``,
``{"message": "..."}``, plain text. Nothing here fails because a body is not JSON.
"""

from __future__ import annotations

import json
import math
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

_MAX_MESSAGE = 300


def parse_json(body: str) -> Any:
    """The JSON value of ``body``, or None when it is not JSON (or nested deeper than Python's
    parser goes: a hostile ``[[[[...`` of 100 KB)."""
    try:
        return json.loads(body) if body else None
    except (ValueError, RecursionError):
        return None


_FALSE_FLAGS = ("success", "ok")
_FAILED_STATUSES = frozenset({"error", "failed", "failure", "fail"})


def whole(value: Any) -> int | None:
    """An id or a count as an answer shows it: a whole number, or a string of digits."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value.strip()) if len(value) < 40 else None
    return None


def reports_failure(body: str) -> bool:
    """True when a 2xx body nevertheless says it failed: ``"success": false`` or ``"ok": false``
    (also spelled as the string ``"false"``), or ``"status": "error"`` (or ``"failed"``)."""
    data = parse_json(body)
    if not isinstance(data, dict):
        return False
    for flag in _FALSE_FLAGS:
        value = data.get(flag)
        if value is False or (isinstance(value, str) and value.strip().lower() == "false"):
            return True
    status = data.get("status")
    return isinstance(status, str) and status.strip().lower() in _FAILED_STATUSES


def error_message(body: str) -> str:
    """A readable one-line message from any of SmartLead's error body shapes."""
    data = parse_json(body)
    message = _message_in(data) if data is not None else None
    if message is None:
        message = body if body.strip() else ""
    return _one_line(message)


def _message_in(data: Any) -> str | None:
    if isinstance(data, str):
        return data
    if not isinstance(data, dict):
        return json.dumps(data) if data is not None else None
    error = data.get("error")
    if isinstance(error, dict):
        text = _message_in(error)
        code = error.get("code")
        if text and isinstance(code, str) and code not in text:
            return f"{code}: {text}"
        return text
    if isinstance(error, str) and error:
        return error
    for key in ("message", "msg", "detail", "details", "errors"):
        value = data.get(key)
        if isinstance(value, str) and value:
            return value
        if isinstance(value, list | dict) and value:
            return json.dumps(value, separators=(",", ":"))
    return json.dumps(data, separators=(",", ":"))


def body_retry_after(body: str) -> float | None:
    """The ``retry_after`` seconds a 429 body carries, at top level or inside ``error``."""
    data = parse_json(body)
    if not isinstance(data, dict):
        return None
    error = data.get("error")
    for holder in (error if isinstance(error, dict) else {}, data):
        seconds = _seconds(holder.get("retry_after"))
        if seconds is not None:
            return seconds
    return None


def header_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if value is None or not value.strip():
        return None
    seconds = _seconds(value.strip())
    if seconds is not None:
        return seconds
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def header_count(value: str | None) -> int | None:
    """A non-negative whole number from a header such as X-RateLimit-Remaining."""
    if value is None:
        return None
    try:
        count = int(value.strip())
    except ValueError:
        return None
    return count if count >= 0 else None


# An X-RateLimit-Reset at least this large is a Unix time (2001-09-09 or later), not seconds.
_EPOCH_FROM = 1_000_000_000


def header_reset(value: str | None, now: float | None = None) -> float | None:
    """X-RateLimit-Reset as seconds from now: delta-seconds, or a Unix timestamp (a value of a
    billion or more), turned into the seconds left until it (0 once it is past). ``now`` is
    the Unix time to count from (default: the system clock)."""
    seconds = _seconds(value.strip()) if value is not None else None
    if seconds is None or seconds < _EPOCH_FROM:
        return seconds
    return max(0.0, seconds - (time.time() if now is None else now))


def _seconds(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= _MAX_MESSAGE else line[: _MAX_MESSAGE - 1] + "…"

"""What came back for one request, and how to read SmartLead's many body shapes.

Success bodies seen in the wild: ``{"success": true, "data": {}}``, ``{"ok": true}``, plain text.
Error bodies: ``{"error": "..."}``, ``{"error": {"code", "message", "details"}}``,
``{"message": "..."}``, plain text. Nothing here fails because a body is not JSON.
"""

from __future__ import annotations

import json
import math
import re
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

_MAX_MESSAGE = 300


def parse_json(body: str) -> Any:
    """The JSON value of ``body``, or None when it is not JSON (or nested deeper than Python's
    parser goes: a hostile ``[[[[...`` of 100 KB). Its texts are ``sound``: JSON may escape
    half a character (``"\\ud800"``), which no file can hold."""
    try:
        data = json.loads(body) if body else None
        return _sound_texts(data) if _ESCAPED_SURROGATE.search(body) else data
    except (ValueError, RecursionError):
        return None


_SURROGATE = re.compile(r"[\ud800-\udfff]")
# an escaped half of a character, which may be alone once parsed (an escaped backslash
# before it or not: it is looked for, and its pair too, in what the text parses to)
_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")
# what would act on a terminal rather than show: C0 and C1 controls (but the newline and the
# tab), and the marks that reorder the text around them
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def sound(text: str) -> str:
    """``text`` with each half of a character (a lone surrogate, which a server's JSON escape
    or an odd charset can give) replaced by U+FFFD: text every file can hold."""
    return _SURROGATE.sub("\ufffd", text) if _SURROGATE.search(text) else text


def _sound_texts(data: Any) -> Any:
    if isinstance(data, str):
        return sound(data)
    if isinstance(data, list):
        return [_sound_texts(item) for item in data]
    if isinstance(data, dict):
        return {sound(key): _sound_texts(value) for key, value in data.items()}
    return data


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
    return one_line(message)


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


def one_line(text: str) -> str:
    """A server's text as one line of a message: whitespace collapsed, ``printable``, cut
    short."""
    line = printable(" ".join(text.split()))
    return line if len(line) <= _MAX_MESSAGE else line[: _MAX_MESSAGE - 1] + "…"


def printable(text: str) -> str:
    """``text`` ``sound``, its controls but newlines and tabs written out (``\\x1b``): text
    shown on a terminal never moves its cursor, retitles it or reorders what it shows."""
    text = sound(text)
    return _CONTROL.sub(_written_out, text) if _CONTROL.search(text) else text


def _written_out(control: re.Match[str]) -> str:
    code = ord(control.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

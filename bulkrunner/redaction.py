"""Keep the API key out of everything a person or a file can see.

SmartLead takes the key in the query string, so URLs in log lines and in exception messages
(aiohttp's own included) carry it. Every message that leaves the process goes through ``redact``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

REDACTED = "REDACTED"
_QUERY_KEY = re.compile(r"(api_key=)[^&\s'\"#)>\]]*", re.IGNORECASE)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every ``api_key=...`` value and every given secret replaced."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return _QUERY_KEY.sub(rf"\g<1>{REDACTED}", text)


class RedactingFilter(logging.Filter):
    """A logging filter that redacts the formatted message (and exception text) of each record."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = tuple(s for s in secrets if s)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage(), self.secrets)
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            record.exc_text = redact(
                logging.Formatter().formatException(record.exc_info), self.secrets
            )
            record.exc_info = (type(exc), exc, None)
        return True

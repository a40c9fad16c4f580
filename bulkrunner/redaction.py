"""Keep the API key out of everything a person or a file can see.

SmartLead takes the key in the query string, so URLs in log lines and in exception messages
(aiohttp's own included) carry it, and a hostile server may echo the request line back in its
answer. Every text that comes from a server or an exception goes through ``redact`` where the
sender makes it, and again where it is written (log, JSON event, journal, report, backup,
summary): the key a run uses is remembered with ``remember`` so those writers need not know it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

REDACTED = "REDACTED"
_QUERY_KEY = re.compile(r"(api_key(?:=|%3D))[^&\s'\"#)>\]]*", re.IGNORECASE)
_remembered: set[str] = set()


def remember(secret: str) -> None:
    """Redact ``secret`` from every text ``redact`` sees from now on (in this process)."""
    if secret:
        _remembered.add(secret)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every ``api_key=...`` value, every given secret and every remembered one
    replaced, also as a URL spells it (longest first, so no part of one is left)."""
    forms = {
        form
        for secret in (*secrets, *_remembered)
        if secret
        for form in (secret, quote(secret, safe=""), quote_plus(secret, safe=""))
    }
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, REDACTED)
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

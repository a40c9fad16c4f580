"""Keep the API key out of everything a person or a file can see, and nothing else.

SmartLead takes the key in the query string, so URLs in log lines and in exception messages
(aiohttp's own included) carry it, and a hostile server may echo the request line back in its
answer, in whatever spelling it saw or chose. Every text that comes from a server or an
exception goes through ``redact`` where the sender makes it, and again where it is written
(log, JSON event, journal, report, backup, export, summary, webhook): the key a run uses is
remembered with ``remember`` so those writers need not know it.

``redact`` replaces the key itself, in every spelling it can take on the wire or in a file: as
it is, percent-encoded (``%20`` or ``+`` for a space, either case of hex digits, any mix of
encoded and plain characters, as ``quote``, ``quote_plus`` and yarl each write it, or encoded
twice), JSON-escaped (``\\u0027``, ``\\"``) and as HTML character references. It changes
nothing else: a campaign's ``unsubscribe_text`` holding ``...?api_key=abc123`` (a link of the
user's, not the key) is backed up, compared, exported and restored as it is.

``redact_url`` also hides the value of any ``api_key=`` query parameter, for texts that are
request URLs or quote them (a redirect's Location, aiohttp's exception messages), never for
values.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Iterable

REDACTED = "REDACTED"
_remembered: set[str] = set()
# a backslash that escapes, itself escaped (JSON inside JSON...), or percent-encoded; at most 8,
# so that a hostile answer of a million backslashes is scanned in linear time, not quadratic
_ESCAPE = r"(?:\\|%(?:25)?5[cC]){1,8}"
_NAMED = {"&": "amp", "<": "lt", ">": "gt", '"': "quot", "'": "apos", "=": "equals", "_": "lowbar"}
_SHORT = {"\b": "b", "\t": "t", "\n": "n", "\f": "f", "\r": "r"}  # JSON's short escapes


def remember(secret: str) -> None:
    """Redact ``secret`` from every text ``redact`` sees from now on (in this process)."""
    if secret:
        _remembered.add(secret)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every given secret and every remembered one replaced by ``REDACTED``, in
    any spelling of it (see the module's docstring); nothing else changes."""
    for pattern in _patterns(frozenset(secret for secret in (*secrets, *_remembered) if secret)):
        text = pattern.sub(REDACTED, text)
    return text


def holds_secret(value: object) -> bool:
    """Whether ``value`` (or an item of it, if it is a list) holds a key, as text: a remembered
    one in any spelling, or ``REDACTED`` where a server's answer showed one (answers are
    redacted as they are read). No file may hold such a value, nor a rollback put it back."""
    items = value if isinstance(value, list | tuple | set | frozenset) else [value]
    for item in items:
        if item is None or isinstance(item, int | float):
            continue
        text = str(item)
        if REDACTED in text or redact(text) != text:
            return True
    return False


def redact_url(text: str, secrets: Iterable[str] = ()) -> str:
    """``redact``, and the value of every ``api_key=`` query parameter, whatever key it is:
    for a URL, or a message quoting one (never for a value a campaign holds)."""
    return _QUERY_KEY.sub(rf"\g<1>{REDACTED}", redact(text, secrets))


@functools.lru_cache(maxsize=64)
def _patterns(secrets: frozenset[str]) -> tuple[re.Pattern[str], ...]:
    """The patterns of ``secrets``, the longest first, so that no part of one is left when
    another is a part of it. Each secret's pattern is made once a process (``_pattern``): a
    run that remembers one more secret (another account's key, a webhook's URL) compiles that
    one alone."""
    return tuple(_pattern(secret) for secret in sorted(secrets, key=lambda s: (-len(s), s)))


@functools.lru_cache(maxsize=256)
def _pattern(secret: str) -> re.Pattern[str]:
    """One pattern matching any spelling of ``secret``: some milliseconds to compile for a key."""
    return re.compile("".join(map(_spellings, secret)))


def _spellings(char: str) -> str:
    """A pattern matching ``char`` in any spelling: as it is, percent-encoded (its UTF-8 bytes,
    once or twice, hex in either case; ``+`` for a space), as a JSON or Python escape (escaped
    again: JSON quoted inside JSON), or as an HTML character reference."""
    forms = [re.escape(char)]
    encoded = char.encode("utf-8", "surrogatepass")
    forms.append("".join(f"%(?:25)?{_hex(byte, 2)}" for byte in encoded))
    if char == " ":
        forms.append(r"\+")
    if len(encoded) > 1:  # its UTF-8 bytes read in the charset a server wrongly declared
        for charset in ("latin-1", "cp1252"):
            misread = encoded.decode(charset, "replace")
            if "\ufffd" not in misread:
                forms.append(re.escape(misread))
    if char in _SHORT:
        forms.append(f"{_ESCAPE}{_SHORT[char]}")
    # JSON escapes a character beyond U+FFFF as two units
    units = char.encode("utf-16-be", "surrogatepass")
    forms.append(
        "".join(
            f"{_ESCAPE}u{_hex(int.from_bytes(units[i : i + 2], 'big'), 4)}"
            for i in range(0, len(units), 2)
        )
    )
    if not char.isalnum():
        forms.append(f"{_ESCAPE}{re.escape(char)}")  # \" \/ \' \\
    forms.append(f"&#0*{ord(char)};")
    forms.append(f"&#[xX]0*{_hex(ord(char), 1)};")
    if char in _NAMED:
        forms.append(f"&{_NAMED[char]};")
    return f"(?:{'|'.join(forms)})"


def _hex(number: int, width: int) -> str:
    """A pattern of ``number`` in hexadecimal digits of either case."""
    return "".join(
        f"[{digit.upper()}{digit}]" if digit.isalpha() else digit for digit in f"{number:0{width}x}"
    )


# ``api_key=`` in any spelling ``_spellings`` knows (``api_key%253D``, ``api_key&#61;``,
# ``api_key\u003d``...), and its value up to the end of the query parameter, in any spelling too
_QUERY_KEY = re.compile(
    f"({''.join(map(_spellings, 'api_key='))})"
    rf"(?:[^\s'\"<>)\]&#%\\]+|(?!{_spellings('&')}|{_spellings('#')})[%\\])*",
    re.IGNORECASE,
)


class RedactingFilter(logging.Filter):
    """A logging filter that redacts the formatted message (and exception text) of each record:
    the key from the message, and from an exception's text also any URL's ``api_key``."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = tuple(s for s in secrets if s)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage(), self.secrets)
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            record.exc_text = redact_url(
                logging.Formatter().formatException(record.exc_info), self.secrets
            )
            record.exc_info = (type(exc), exc, None)
        return True

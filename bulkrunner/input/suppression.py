"""``--suppress FILE``: the addresses and domains a leads run never sends.

The file is a CSV with an ``email`` and/or a ``domain`` column (headers matched as input headers
are: ``Email``, ``E-mail``), or a plain list: one address or domain a line. An entry starting
with ``@`` is a domain too. A domain suppresses its subdomains (``acme.com`` suppresses
``jo@eu.acme.com``). Addresses and domains compare in any case. A line that is neither an
address nor a domain is left out, and counted in a warning: it could match no lead anyway.

A row whose lead is suppressed is never sent: its status is ``suppressed``, its error names the
entry that matched.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bulkrunner.errors import UsageError
from bulkrunner.input.files import encoding_of, not_text
from bulkrunner.model import Status, count
from bulkrunner.operations.addresses import address_key, is_address
from bulkrunner.operations.base import Operation
from bulkrunner.operations.fields import column_key

log = logging.getLogger("bulkrunner")

EMAIL, DOMAIN = "email", "domain"
_DOMAIN = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")
_SHOWN_ODD = 3  # entries that are neither, named in the warning


@dataclass(frozen=True, slots=True)
class Suppression:
    """The addresses (``address_key``) and domains (lower case) of a suppression list."""

    path: Path
    addresses: frozenset[str]
    domains: frozenset[str]

    def __len__(self) -> int:
        return len(self.addresses) + len(self.domains)

    def match(self, email: str) -> str | None:
        """Why the lead with address ``email`` is suppressed, or None when it is not."""
        key = address_key(email)
        if key in self.addresses:
            return f"suppressed: {key} is on the suppression list {self.path.name}"
        labels = key.rpartition("@")[2].split(".")
        for start in range(len(labels) - 1):
            domain = ".".join(labels[start:])
            if domain in self.domains:
                return (
                    f"suppressed: its domain {domain} is on the suppression list {self.path.name}"
                )
        return None

    @classmethod
    def load(cls, path: Path) -> Suppression:
        """The list at ``path``; UsageError naming the file when it cannot be read."""
        try:
            encoding = encoding_of(path)
            text = path.read_text(encoding=encoding)
        except FileNotFoundError:
            raise UsageError(f"{path}: suppression list not found (--suppress)") from None
        except OSError as exc:
            problem = exc.strerror or exc
            raise UsageError(f"{path}: cannot read the suppression list ({problem})") from None
        except UnicodeDecodeError:
            raise UsageError(f"{path}: {not_text('utf-8')}") from None
        except UsageError as exc:  # (encoding_of names the file itself)
            raise UsageError(f"{exc} (--suppress)") from None
        addresses: set[str] = set()
        domains: set[str] = set()
        odd: list[str] = []
        for entry, column in _entries(text):
            kind = _kind(entry, column)
            if kind == EMAIL:
                addresses.add(address_key(entry))
            elif kind == DOMAIN:
                domains.add(entry.strip().lower().lstrip("@*."))
            elif entry.strip():
                odd.append(entry.strip())
        if odd:
            shown = ", ".join(repr(entry[:60]) for entry in odd[:_SHOWN_ODD])
            log.warning(
                "%s: %s neither an address nor a domain, left out (%s%s)",
                path,
                count(len(odd), "entry is", "entries are"),
                shown,
                ", ..." if len(odd) > _SHOWN_ODD else "",
            )
        found = cls(path, frozenset(addresses), frozenset(domains))
        log.info(
            "%s: suppressing %s and %s",
            path,
            count(len(found.addresses), "address", "addresses"),
            count(len(found.domains), "domain"),
        )
        return found


def suppression_of(path: Path | None, operation: Operation) -> Suppression | None:
    """The ``--suppress`` list of a run of ``operation`` (None without one); UsageError for
    an operation that sends no leads."""
    if path is None:
        return None
    if operation.identity is None:
        raise UsageError(
            f"--suppress {path}: a suppression list names leads never sent: it is for "
            f"--operation leads, not {operation.name}"
        )
    return Suppression.load(path)


def _kind(entry: str, column: str | None) -> str | None:
    """Whether ``entry`` is an address or a domain (None: neither); a domain column's entries
    are domains, any other's by their form."""
    text = entry.strip().lower()
    if column != DOMAIN and "@" in text.lstrip("@") and is_address(text):
        return EMAIL
    bare = text.lstrip("@*.")
    if ("@" not in text or text.startswith("@")) and _DOMAIN.fullmatch(bare):
        return DOMAIN
    return None


def _entries(text: str) -> list[tuple[str, str | None]]:
    """Each entry of the file, with the column it is in (None: a plain list)."""
    lines = text.splitlines()
    first = next((line for line in lines if line.strip()), "")
    for delimiter in (",", ";", "\t"):
        header = next(csv.reader([first], delimiter=delimiter), [])
        named = {column_key(cell): at for at, cell in enumerate(header)}
        columns = {kind: named[kind] for kind in (EMAIL, DOMAIN) if kind in named}
        if columns:
            reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
            next(cells for cells in reader if any(cell.strip() for cell in cells))  # the header
            return [
                (cells[at], kind)
                for cells in reader
                for kind, at in columns.items()
                if at < len(cells) and cells[at].strip()
            ]
    return [(line.strip().strip('"'), None) for line in lines if line.strip()]


def say_unsent(skipped: Counter[Status], suppression: Suppression | None) -> None:
    """Log the rows a run will not send although they are valid: suppressed leads, and leads
    that repeat an earlier row's."""
    if skipped[Status.SUPPRESSED] and suppression is not None:
        log.info(
            "%s suppressed (their lead is on %s): not sent",
            count(skipped[Status.SUPPRESSED], "row"),
            suppression.path,
        )
    if skipped[Status.UNCHANGED]:
        log.info(
            "%s the same lead (campaign and address) as an earlier row: each lead is sent once",
            count(skipped[Status.UNCHANGED], "row repeats", "rows repeat"),
        )

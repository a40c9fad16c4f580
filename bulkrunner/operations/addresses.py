"""Email addresses as an input cell holds them: checked before anything is sent, and compared as
SmartLead compares them, in any case.

The check is the shape SmartLead accepts: one ``@``, an ASCII local part without leading,
trailing or doubled dots, and a dotted domain whose last label is letters. An address that is
not one is an ``invalid`` row, never sent.
"""

from __future__ import annotations

import re
from typing import Any

from bulkrunner.operations.cells import quoted

_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+")
_DOMAIN = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}")


def address_key(email: str) -> str:
    """How addresses compare: without surrounding spaces, in lower case (as SmartLead does)."""
    return email.strip().lower()


def is_address(email: str) -> bool:
    """Whether ``email`` (surrounding spaces aside) has the shape of an address."""
    local, at, domain = email.strip().rpartition("@")
    return (
        bool(at)
        and len(local) <= 64
        and len(local) + len(domain) < 254
        and _LOCAL.fullmatch(local) is not None
        and not local.startswith(".")
        and not local.endswith(".")
        and ".." not in local
        and _DOMAIN.fullmatch(domain) is not None
    )


def parse_address(cell: Any) -> tuple[str | None, str | None]:
    """An address cell: the address as it compares (``address_key``), or why it is not one."""
    if not isinstance(cell, str):
        return None, f"{quoted(cell)} is not an email address"
    text = cell.strip()
    if text.lower().startswith("mailto:"):
        return None, f"{quoted(text)} is a link: write the address alone ({text[7:].strip()})"
    if not is_address(text):
        return None, f"{quoted(text)} is not an email address"
    return address_key(text), None

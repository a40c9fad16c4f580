"""A schedule's ``timezone`` cell: an IANA name, spelled as the timezone database spells it.

People also write the abbreviations of a standard or summer time (``EST``, ``PST``, ``CET``).
Such a cell is accepted as what it literally names, a fixed offset from UTC, with one warning
(once a process for each distinct value, however many rows hold it) naming the zone it most
likely means: a New York client's window written ``EST`` is UTC-05:00 all year, an hour off
all summer. On the wire it stays an IANA name: one the database has (``EST``, ``MST``, and
``CET``, ``EET``, ``WET``, which the database keeps as zones of their own) is sent as it is, as
the database defines it, so that a campaign that has one reads back, is backed up and rolled
back unchanged; one it lacks (``PST``, ``EDT``, ``CEST``...) is sent as the database's name for
its offset (``Etc/GMT+8``: POSIX counts west as positive). Sending the zone most likely meant
instead would be a guess the cell does not say; the warning says it, and the fix.

A name the database does not have is refused, with the name most likely meant: ``New York``
(a city as written) is ``America/New_York``, ``Europe/Londn`` is ``Europe/London``.
"""

from __future__ import annotations

import difflib
import functools
import logging
import re
import zoneinfo
from datetime import UTC, datetime
from typing import Any

from bulkrunner.operations.cells import quoted

Parsed = tuple[Any, str | None]

log = logging.getLogger("bulkrunner")

_TIMEZONE_LIKE = re.compile(r"UTC|[A-Z][A-Za-z_]+(?:/[A-Za-z0-9_+\-]+)+")
# Each abbreviation: its offset from UTC in hours, the zone it most likely means, and whether it
# is that zone's summer time (an hour off all winter) or its standard time (all summer).
_ABBREVIATIONS: dict[str, tuple[int, str, bool]] = {
    "EST": (-5, "America/New_York", False),
    "EDT": (-4, "America/New_York", True),
    "CST": (-6, "America/Chicago", False),
    "CDT": (-5, "America/Chicago", True),
    "MST": (-7, "America/Denver", False),
    "MDT": (-6, "America/Denver", True),
    "PST": (-8, "America/Los_Angeles", False),
    "PDT": (-7, "America/Los_Angeles", True),
    "AKST": (-9, "America/Anchorage", False),
    "AKDT": (-8, "America/Anchorage", True),
    "WET": (0, "Europe/Lisbon", False),
    "WEST": (1, "Europe/Lisbon", True),
    "BST": (1, "Europe/London", True),
    "CET": (1, "Europe/Berlin", False),
    "CEST": (2, "Europe/Berlin", True),
    "EET": (2, "Europe/Athens", False),
    "EEST": (3, "Europe/Athens", True),
    "AEST": (10, "Australia/Sydney", False),
    "AEDT": (11, "Australia/Sydney", True),
}
WARNED: set[str] = set()  # the abbreviations warned of in this process


@functools.cache
def _zones() -> dict[str, str]:
    """Every IANA zone the machine knows, by its lower-case name (listing them reads the whole
    database, about 20 ms: once per process)."""
    return {name.lower(): name for name in zoneinfo.available_timezones()}


@functools.cache
def _places() -> dict[str, str]:
    """The zones by their place, as a person writes it (``new york``, ``sao paulo``): the last
    part of the name, lower case, with spaces for underscores; the shortest name wins."""
    found: dict[str, str] = {}
    for name in sorted(_zones().values(), key=lambda zone: (len(zone), zone)):
        if "/" in name and not name.startswith("Etc/"):
            found.setdefault(name.rsplit("/", 1)[1].replace("_", " ").lower(), name)
    return found


def parse_timezone(value: Any) -> Parsed:
    """An IANA timezone name, spelled as the database spells it (``europe/london`` is
    ``Europe/London``); an abbreviation as the fixed offset it names, warned of once."""
    if not isinstance(value, str):
        return None, f"{quoted(value)} is not a timezone name (use an IANA name like Europe/London)"
    text = value.strip()
    zones = _zones()
    abbreviation = _ABBREVIATIONS.get(text.upper())
    found = zones.get(text.lower())
    if abbreviation is not None:
        offset = abbreviation[0]
        zone = found or zones.get(_fixed(offset).lower()) or _fixed(offset)
        _warn(text.upper(), zone, abbreviation)
        return zone, None
    if found is not None:
        return found, None
    if not zones:  # no timezone database on this machine: accept what looks like a zone
        if _TIMEZONE_LIKE.fullmatch(text):
            return text, None
        return None, f"{quoted(text)} is not an IANA timezone name (like Europe/London)"
    return None, f"{quoted(text)} is not an IANA timezone ({_suggestion(text)})"


def zone_name(value: Any) -> Any:
    """A timezone as the server shows it, spelled as the database does (abbreviations too, as
    the database has them: what is read is compared and restored as it is), or as it is."""
    if isinstance(value, str):
        return _zones().get(value.strip().lower(), value)
    return value


def _fixed(offset: int) -> str:
    """The database's name of a whole-hour offset (POSIX signs: ``Etc/GMT+5`` is UTC-05:00)."""
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"


def _suggestion(text: str) -> str:
    """The name most likely meant: a place as written (``New York``), else a near spelling of a
    name or of a place."""
    zones, places = _zones(), _places()
    place = re.sub(r"[\s_]+", " ", text.lower()).strip()
    if place in places:
        return f"did you mean {places[place]}?"
    close = difflib.get_close_matches(text.lower(), list(zones), n=1, cutoff=0.8)
    if close:
        return f"did you mean {zones[close[0]]}?"
    close = difflib.get_close_matches(place, list(places), n=1, cutoff=0.8)
    if close:
        return f"did you mean {places[close[0]]}?"
    return "use a name like Europe/London"


def _warn(abbreviation: str, zone: str, meaning: tuple[int, str, bool]) -> None:
    """Say once a process what an abbreviation is sent as, and the zone most likely meant."""
    if abbreviation in WARNED:
        return
    WARNED.add(abbreviation)
    offset, likely, summer = meaning
    place = likely.rsplit("/", 1)[1].replace("_", " ")
    sent = f" (sent as {zone})" if zone != abbreviation else ""
    if _keeps_summer_time(zone):  # CET, EET, WET: zones of the database, with summer time
        log.warning(
            "timezone %s is sent as the timezone database's zone %s, which keeps summer time; "
            "for %s's clock, write its own zone, %s",
            abbreviation,
            zone,
            place,
            likely,
        )
        return
    log.warning(
        "timezone %s is a fixed offset, UTC%s all year%s: for %s's clock, write %s, or the "
        "window is an hour off all %s",
        abbreviation,
        f"{offset:+03d}:00",
        sent,
        place,
        likely,
        "winter" if summer else "summer",
    )


def _keeps_summer_time(zone: str) -> bool:
    """Whether ``zone`` (of the database) changes its offset in the year."""
    try:
        info = zoneinfo.ZoneInfo(zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return False
    year = datetime.now(UTC).year
    winter, summer = (datetime(year, month, 15, tzinfo=info).utcoffset() for month in (1, 7))
    return winter != summer

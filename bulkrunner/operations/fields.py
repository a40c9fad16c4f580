"""The settings fields of ``POST /campaigns/{id}/settings`` and their two enum vocabularies.

SmartLead documents two spellings of the same enum values. The current API reference page uses
the *documented* (short) names; the older help centre and every public client use the *long*
names. Input in either spelling is understood; the vocabulary sent on the wire is a setting.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable
from dataclasses import dataclass

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (`--help` needs none)
if TYPE_CHECKING:
    from typing import Any, Literal, TypeAlias

CAMPAIGN_ID = "campaign_id"
ACCOUNT = "account"  # an input column naming, per row, the account of an accounts file
# An export's column of each campaign's name, for people: read back, it is never sent, never
# judged (an export run again, or edited, has it), and the report echoes it.
NAME = "name"
# A backup's column of what its run set in each campaign (JSON, as a report's ``after``), which
# a rollback compares with the campaign as it is now: carried like a column of the user's own.
SET_BY_RUN = "set_by_run"


def column_key(header: str) -> str:
    """A header as it is matched to a column: case, surrounding spaces and the spaces,
    underscores or hyphens between words aside (``Campaign ID`` is ``campaign_id``)."""
    return re.sub(r"[\s_-]+", "", header.strip().lower())


# A lead upload's settings booleans (POST /campaigns/{id}/leads), each false unless a run's option
# of the same name says otherwise, and how many leads one upload carries (by default, what the
# vendor's own library sends; at most, what the current reference allows: older pages say 350).
UPLOAD_SETTINGS = (
    "ignore_global_block_list",
    "ignore_unsubscribe_list",
    "ignore_duplicate_leads_in_other_campaign",
)
LEADS_PER_REQUEST = 100
MOST_PER_REQUEST = 400

# The statuses a campaign reads back with (``START`` is what is written to get ``ACTIVE``).
CAMPAIGN_STATUSES = ("DRAFTED", "ACTIVE", "PAUSED", "STOPPED", "COMPLETED")


class Vocabulary(enum.StrEnum):
    DOCUMENTED = "documented"
    LONG = "long"


class ScheduleShape(enum.StrEnum):
    """The two bodies SmartLead's pages give ``POST /campaigns/{id}/schedule``."""

    NESTED = "nested"
    FLAT = "flat"

    @property
    def meaning(self) -> str:
        return _SHAPES[self]

    @property
    def other(self) -> ScheduleShape:
        return ScheduleShape.FLAT if self is ScheduleShape.NESTED else ScheduleShape.NESTED

    @classmethod
    def described(cls) -> str:
        """``nested (current reference, days 0=Sunday) or flat (...)``, for a help text."""
        return " or ".join(f"{shape} ({shape.meaning})" for shape in cls)


_SHAPES = {
    ScheduleShape.NESTED: "current reference, days 0=Sunday",
    ScheduleShape.FLAT: "older docs, days_of_the_week 1=Monday",
}


if TYPE_CHECKING:
    FieldKind: TypeAlias = Literal["enum_list", "enum", "int", "bool", "text", "custom"]
    # A custom field's cell parser: a cell that is not blank -> (value to send, None) or
    # (None, why)
    CellParser: TypeAlias = Callable[[Any], tuple[Any, str | None]]


@dataclass(frozen=True, slots=True)
class Field:
    """One input column of an operation: its name, its type and the bounds a value must
    respect; a ``custom`` field parses its cells with ``parse`` (blank cells never reach it)."""

    name: str
    kind: FieldKind
    minimum: int | None = None
    maximum: int | None = None
    parse: CellParser | None = None
    arrow: str = "string"  # a custom field's type in a backup or export file: string, int64,
    # list<string>, list<int64>
    # A regular expression (RE2) a plain text cell may match whole to be its own value without
    # ``parse``, checked on a column at once: a part of what ``parse`` takes as it is (a cell
    # it does not match goes through ``parse``, which takes it or says why not).
    fast: str | None = None


FIELDS: tuple[Field, ...] = (
    Field("track_settings", "enum_list"),
    Field("stop_lead_settings", "enum"),
    Field("sending_limit", "int", minimum=0),
    Field("min_time_btwn_emails", "int", minimum=0),
    Field("enable_ai_esp_matching", "bool"),
    Field("send_as_plain_text", "bool"),
    Field("follow_up_percentage", "int", minimum=0, maximum=100),
    Field("unsubscribe_text", "text"),
    Field("client_id", "int", minimum=1),
)
FIELDS_BY_NAME: dict[str, Field] = {field.name: field for field in FIELDS}
SETTING_NAMES: tuple[str, ...] = tuple(FIELDS_BY_NAME)

# Each enum value as (documented name, long name); None where a vocabulary has no such value.
_ENUM_PAIRS: dict[str, tuple[tuple[str | None, str | None], ...]] = {
    "track_settings": (
        ("DONT_EMAIL_OPEN", "DONT_TRACK_EMAIL_OPEN"),
        ("DONT_LINK_CLICK", "DONT_TRACK_LINK_CLICK"),
        (None, "DONT_TRACK_REPLY_TO_AN_EMAIL"),
    ),
    "stop_lead_settings": (
        ("REPLY_TO_AN_EMAIL", "REPLY_TO_AN_EMAIL"),
        ("OPENED_EMAIL", "OPEN_AN_EMAIL"),
        ("CLICKED_LINK", "CLICK_ON_A_LINK"),
    ),
}


@dataclass(frozen=True, slots=True)
class EnumValue:
    """One enum value with its spelling in each vocabulary (None where it has none)."""

    documented: str | None
    long: str | None

    def spelled(self, vocabulary: Vocabulary) -> str | None:
        return self.documented if vocabulary is Vocabulary.DOCUMENTED else self.long

    def vocabularies(self) -> list[Vocabulary]:
        return [v for v in Vocabulary if self.spelled(v) is not None]


def _index(pairs: tuple[tuple[str | None, str | None], ...]) -> dict[str, EnumValue]:
    index: dict[str, EnumValue] = {}
    for documented, long in pairs:
        value = EnumValue(documented, long)
        for name in (documented, long):
            if name is not None:
                index[name] = value
    return index


ENUMS: dict[str, dict[str, EnumValue]] = {
    name: _index(pairs) for name, pairs in _ENUM_PAIRS.items()
}


def enum_names(field: str, vocabulary: Vocabulary) -> list[str]:
    """Every value ``field`` accepts on the wire in ``vocabulary``, in documentation order."""
    names = [value.spelled(vocabulary) for value in dict.fromkeys(ENUMS[field].values())]
    return [name for name in names if name is not None]


def translate(field: str, name: str, vocabulary: Vocabulary) -> str | None:
    """The spelling of enum value ``name`` (either vocabulary) in ``vocabulary``, if it has one.

    Raises KeyError when ``name`` is in neither vocabulary.
    """
    return ENUMS[field][name].spelled(vocabulary)

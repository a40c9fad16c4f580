"""How a row ended: its status and the facts the report shows for it."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

# The columns a report adds after the input's own: a file that has them (at least ``row`` and
# ``status``) is a report, and as an input its result columns are recognised and not sent.
RESULT_COLUMNS = (
    "row",
    "status",
    "http_status",
    "attempts",
    "error",
    "duration_ms",
    "finished_at",
    "before",  # JSON of the fields the row changes, as they were (a real run read them first)
    "after",  # JSON of the same fields as the row sets them
)


class Status(enum.StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    INVALID = "invalid"
    NOT_ATTEMPTED = "not_attempted"
    DRY_RUN = "dry_run"
    UNCHANGED = "unchanged"  # every field already had the wanted value: nothing was sent
    MISMATCH = "mismatch"  # applied, but reading it back showed other values


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one row ended."""

    status: Status
    http_status: int | None = None
    attempts: int = 0
    error: str = ""
    duration_ms: int | None = None
    finished_at: datetime | None = None

"""Stop early when the server keeps refusing what is sent: the wrong vocabulary, or the wrong
schedule body shape.

SmartLead accounts differ in the enum names their settings endpoint takes (see ``fields``). Sent
in the other vocabulary, every row that sets ``track_settings`` or ``stop_lead_settings`` comes
back 400 naming the value; failing them one by one burns the rate budget and leaves a report
full of the same error. After a few such refusals in a row the run stops (aborted, resumable)
and says to run again with the other vocabulary.
"""

from __future__ import annotations

from collections.abc import Callable

from bulkrunner.model import Answer, Row
from bulkrunner.operations.fields import ENUMS, ScheduleShape, Vocabulary

ENUM_REFUSALS = 3  # refusals in a row that stop a run
SHAPE_REFUSALS = 3  # schedule rows refused, none accepted, that stop a run
_REFUSED = frozenset({400, 422})


def names_an_enum(row: Row, answer: Answer, message: str) -> bool:
    """Whether ``answer`` refuses ``row`` naming one of the enum values it sent (or the enum
    field itself)."""
    if answer.status not in _REFUSED:
        return False
    text = message.lower()
    for field in ENUMS:
        value = row.payload.get(field)
        if value is None:
            continue
        sent = value if isinstance(value, list) else [value]
        if field in text or any(str(name).lower() in text for name in sent):
            return True
    return False


class EnumRefusals:
    """Called with each row's final answer (``Engine.judge``): returns why the run must stop once
    ``threshold`` rows in a row were refused naming an enum value, else None."""

    def __init__(
        self,
        vocabulary: Vocabulary,
        command: Callable[[Vocabulary], str],
        threshold: int = ENUM_REFUSALS,
    ) -> None:
        self.vocabulary = vocabulary
        self.command = command  # the command to run with the other vocabulary
        self.threshold = threshold
        self.in_a_row = 0

    def __call__(self, row: Row, answer: Answer, message: str) -> str | None:
        if not names_an_enum(row, answer, message):
            self.in_a_row = 0
            return None
        self.in_a_row += 1
        if self.in_a_row < self.threshold:
            return None
        other = next(v for v in Vocabulary if v is not self.vocabulary)
        return (
            f"run aborted: {self.in_a_row} rows in a row were refused naming an enum value "
            f"(last: {message}); this account seems to take the {other.value} names, not the "
            f"{self.vocabulary.value} ones: run again with --vocabulary {other.value}: "
            f"{self.command(other)}"
        )


class ShapeRefusals:
    """``Engine.judge`` of a schedule run: SmartLead's pages disagree on the body's shape
    (``--schedule-shape``), and an account taking the other one refuses every row with a 400.
    Rows are checked before sending (timezone, days, hours), so when the first ``threshold``
    rows are all refused and none was accepted, the shape is the likely cause: the run stops
    (aborted, resumable) and says to start over with the other shape. Once one row is
    accepted, the shape is right and a refusal is that row's own."""

    def __init__(
        self, shape: str, command: Callable[[str], str], threshold: int = SHAPE_REFUSALS
    ) -> None:
        self.shape = ScheduleShape(shape)
        self.command = command  # the command to run with the other shape
        self.threshold = threshold
        self.refused = 0
        self.accepted = False

    def __call__(self, row: Row, answer: Answer, message: str) -> str | None:
        if self.accepted or answer.status not in _REFUSED:
            self.accepted = self.accepted or answer.status in range(200, 300)
            return None
        self.refused += 1
        if self.refused < self.threshold:
            return None
        other = self.shape.other
        return (
            f"run aborted: the first {self.refused} schedule rows were all refused and none "
            f"accepted (last: {message}); this account may take the {other} body shape, not "
            f"the {self.shape} one: run again with --schedule-shape {other}: "
            f"{self.command(other)}"
        )

"""A leads run's custom fields: every column of its input that is not one of its own (nor the
campaign, nor the account, nor a column ``--keep-columns`` carries) is sent as a custom field,
under its header as written; the run says, once, which columns those are."""

from __future__ import annotations

import difflib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from bulkrunner.model import count
from bulkrunner.operations.fields import ACCOUNT, CAMPAIGN_ID, column_key

if TYPE_CHECKING:
    from bulkrunner.operations import Operation

log = logging.getLogger("bulkrunner")


def as_read(raw: Sequence[str], names: Sequence[str], operation: Operation | None) -> list[str]:
    """The columns ``names`` (each header ``raw`` as the column it means) as a run of
    ``operation`` reads them: for an operation whose other columns are custom fields, a column
    that is none of its own (nor the campaign, nor the account) keeps its header as written
    (``Status`` is sent as ``Status``, though a status run reads it as ``status``)."""
    if operation is None or not operation.custom_fields:
        return list(names)
    own = {CAMPAIGN_ID, ACCOUNT, *operation.columns}
    return [name if name in own else header for header, name in zip(raw, names, strict=True)]


def custom_columns(
    names: Sequence[str], operation: Operation, keep: Sequence[str] = ()
) -> list[str]:
    """The columns of ``names`` a run of ``operation`` sends as custom fields."""
    from bulkrunner.operations.base import Wire

    wire = Wire(kept=frozenset(column_key(name) for name in keep))
    return [name for name in names if operation.custom(name, wire)]


def say_custom(path: Path, names: Sequence[str], operation: Operation, keep: Sequence[str]) -> None:
    """Log, once, which columns are sent as custom fields (one like an own column, with it)."""
    custom = custom_columns(names, operation, keep)
    if not custom:
        return
    shown = []
    for name in custom:
        close = difflib.get_close_matches(column_key(name), operation.columns, n=1, cutoff=0.75)
        shown.append(f"{name} (did you mean {close[0]}?)" if close else name)
    log.info(
        "%s: sending %s as custom fields: %s (--keep-columns keeps a column unsent)",
        path,
        count(len(custom), "column"),
        ", ".join(shown),
    )

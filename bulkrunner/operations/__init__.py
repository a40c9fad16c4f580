"""The campaign writes bulkrunner applies, one module each, all declared the same way
(:class:`~bulkrunner.operations.base.Operation`): ``settings`` (the default), ``schedule``,
``status``, ``email-accounts``, ``leads`` and ``lead-status``; and ``lead-removal``, which only
a rollback of a ``leads`` run uses (not an ``--operation`` choice).
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (`--help` needs none)
if TYPE_CHECKING:
    from typing import Any

    from bulkrunner.operations.base import Operation, Request, Said, Undo, Wire

_BASE = frozenset(
    {"Operation", "Request", "Said", "Undo", "Wire"}
)  # from .base, when first asked for


def __getattr__(name: str) -> Any:
    """``Operation``, ``Request``, ``Undo`` and ``Wire`` on first use: the option declarations
    (and so ``--help``) need only the operations' names, not the model behind them."""
    if name in _BASE:
        from bulkrunner.operations import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# name -> (module, attribute): imported when first asked for
_OPERATIONS: dict[str, tuple[str, str]] = {
    "settings": ("settings", "SETTINGS"),
    "schedule": ("schedule", "SCHEDULE"),
    "status": ("status", "STATUS"),
    "email-accounts": ("email_accounts", "EMAIL_ACCOUNTS"),
    "leads": ("leads", "LEADS"),
    "lead-status": ("lead_status", "LEAD_STATUS"),
}
NAMES = tuple(_OPERATIONS)
# operations a command chooses itself, never --operation: a leads run's rollback
_INTERNAL: dict[str, tuple[str, str]] = {"lead-removal": ("lead_removal", "LEAD_REMOVAL")}
_EVERY = (*NAMES, *_INTERNAL)


def operation(name: str) -> Operation:
    """The operation called ``name``; ValueError naming the known ones for any other."""
    try:
        module, attribute = _OPERATIONS[name] if name in _OPERATIONS else _INTERNAL[name]
    except KeyError:
        raise ValueError(f"unknown operation {name!r} (known: {', '.join(NAMES)})") from None
    found: Operation = getattr(
        importlib.import_module(f"bulkrunner.operations.{module}"), attribute
    )
    return found


def every_column() -> tuple[str, ...]:
    """The input columns of every operation, each once: how a header is recognised whatever
    the operation (a column of another operation is then refused by name)."""
    return tuple(dict.fromkeys(name for each in _EVERY for name in operation(each).columns))


def sent_columns(columns: list[str], operation: Operation, wire: Wire) -> list[str]:
    """The columns of ``columns`` a row of ``operation`` sends (each judged): its own, any other
    operation's (which loading refuses: a frame made in code may have one), and its custom
    fields; the others (name, --keep-columns) are carried, never judged."""
    if operation.custom_fields:
        own = operation.columns
        return [name for name in columns if name in own or operation.custom(name, wire)]
    sent = {*operation.columns, *every_column()}
    return [name for name in columns if name in sent]


def fitting(columns: list[str], given: str) -> str:
    """The operation whose input ``columns`` are (besides campaign_id, account and the columns
    carried unsent, such as an export's name): ``given`` when they are its own, else the one
    other operation they all belong to, if there is one (a report of an email-accounts run
    retried without --operation), else ``given``."""
    sent = every_column()
    own = [name for name in columns if name in sent]
    if not own or all(name in operation(given).columns for name in own):
        return given
    fits = [each for each in _EVERY if all(name in operation(each).columns for name in own)]
    public = [each for each in fits if each in NAMES]
    if len(public) == 1:
        return public[0]
    return fits[0] if len(fits) == 1 else given


def owner(column: str) -> str | None:
    """The first operation with ``column`` among its input columns."""
    return next((each for each in NAMES if column in operation(each).columns), None)


__all__ = [
    "NAMES",
    "Operation",
    "Request",
    "Said",
    "Undo",
    "Wire",
    "every_column",
    "operation",
    "owner",
    "sent_columns",
]

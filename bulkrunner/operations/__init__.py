"""The campaign writes bulkrunner applies, one module each, all declared the same way
(:class:`~bulkrunner.operations.base.Operation`): ``settings`` (the default), ``schedule``,
``status`` and ``email-accounts``.
"""

from __future__ import annotations

import importlib

from bulkrunner.operations.base import Operation, Request, Undo, Wire

# name -> (module, attribute): imported when first asked for
_OPERATIONS: dict[str, tuple[str, str]] = {
    "settings": ("settings", "SETTINGS"),
}
NAMES = tuple(_OPERATIONS)
DEFAULT = "settings"


def operation(name: str) -> Operation:
    """The operation called ``name``; ValueError naming the known ones for any other."""
    try:
        module, attribute = _OPERATIONS[name]
    except KeyError:
        raise ValueError(f"unknown operation {name!r} (known: {', '.join(NAMES)})") from None
    found: Operation = getattr(
        importlib.import_module(f"bulkrunner.operations.{module}"), attribute
    )
    return found


__all__ = ["DEFAULT", "NAMES", "Operation", "Request", "Undo", "Wire", "operation"]

"""bulkrunner: apply settings to many SmartLead campaigns at once, safely, at the rate ceiling.

The Python API, for notebooks: ``bulkrunner.apply(frame)``, ``bulkrunner.plan(frame)`` and
``bulkrunner.export()``; the run configuration ``RunConfig``; ``ExitCode`` and the report's
``Status``; the exceptions. Every other module is internal.

The public names are imported on first use (PEP 562), so ``bulkrunner --help`` and the other
commands that need neither pandas nor aiohttp start without loading them.
"""

import importlib as _importlib

_TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (`--help` needs none)
if _TYPE_CHECKING:  # __all__, for the type checker (tests/unit/test_public_api.py)
    from bulkrunner.api import apply, export, plan
    from bulkrunner.config.run_config import RunConfig
    from bulkrunner.errors import (
        Aborted,
        BulkrunnerError,
        ExitCode,
        InputFileError,
        RunInProgress,
        UsageError,
    )
    from bulkrunner.model import Status

__all__ = [
    "Aborted",
    "BulkrunnerError",
    "ExitCode",
    "InputFileError",
    "RunConfig",
    "RunInProgress",
    "Status",
    "UsageError",
    "apply",
    "export",
    "plan",
]

# The modules that define the names of __all__, lightest first: a name is imported from the
# first that has it, so that `bulkrunner.ExitCode` loads no more than errors.
_HOMES = ("errors", "model", "config.run_config", "api")


def __getattr__(name: str) -> object:
    if name in __all__:
        for home in _HOMES:
            module = _importlib.import_module(f"bulkrunner.{home}")
            if name in vars(module):
                globals()[name] = value = vars(module)[name]
                return value
    raise AttributeError(f"module 'bulkrunner' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})

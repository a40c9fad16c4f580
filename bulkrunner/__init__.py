"""bulkrunner: apply settings to many SmartLead campaigns at once, safely, at the rate ceiling.

For notebooks: ``bulkrunner.apply(frame)``, ``bulkrunner.plan(frame)``, ``bulkrunner.export()``
(``bulkrunner.api``).

The public names are imported on first use (PEP 562), so ``bulkrunner --help`` and the other
commands that need neither pandas nor aiohttp start without loading them.
"""

import importlib as _importlib

_TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (`--help` needs none)
if _TYPE_CHECKING:
    from bulkrunner.api import apply, export, plan
    from bulkrunner.config import RunConfig
    from bulkrunner.engine import Engine
    from bulkrunner.errors import (
        Aborted,
        BulkrunnerError,
        ExitCode,
        InputFileError,
        RunInProgress,
        UsageError,
    )
    from bulkrunner.fields import Vocabulary
    from bulkrunner.job import run_job, validate_job
    from bulkrunner.limiter import SlidingWindowLimiter
    from bulkrunner.loading import load_input
    from bulkrunner.model import Outcome, Rejection, Row, RunStats, Status, Validation
    from bulkrunner.rates import Rate
    from bulkrunner.transport import HttpSender, Sender
    from bulkrunner.validation import validate

_HOMES = {
    "Aborted": "errors",
    "BulkrunnerError": "errors",
    "Engine": "engine",
    "ExitCode": "errors",
    "HttpSender": "transport",
    "InputFileError": "errors",
    "Outcome": "model",
    "Rate": "rates",
    "Rejection": "model",
    "Row": "model",
    "RunConfig": "config",
    "RunInProgress": "errors",
    "RunStats": "model",
    "Sender": "transport",
    "SlidingWindowLimiter": "limiter",
    "Status": "model",
    "UsageError": "errors",
    "Validation": "model",
    "Vocabulary": "fields",
    "apply": "api",
    "export": "api",
    "load_input": "loading",
    "plan": "api",
    "run_job": "job",
    "validate": "validation",
    "validate_job": "job",
}

__all__ = [
    "Aborted",
    "BulkrunnerError",
    "Engine",
    "ExitCode",
    "HttpSender",
    "InputFileError",
    "Outcome",
    "Rate",
    "Rejection",
    "Row",
    "RunConfig",
    "RunInProgress",
    "RunStats",
    "Sender",
    "SlidingWindowLimiter",
    "Status",
    "UsageError",
    "Validation",
    "Vocabulary",
    "apply",
    "export",
    "load_input",
    "plan",
    "run_job",
    "validate",
    "validate_job",
]


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'bulkrunner' has no attribute {name!r}")
    value = getattr(_importlib.import_module(f"bulkrunner.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})

"""bulkrunner: apply settings to many SmartLead campaigns at once, safely, at the rate ceiling.

The public names are imported on first use (PEP 562), so ``bulkrunner --help`` and the other
commands that need neither pandas nor aiohttp start without loading them.
"""

import importlib as _importlib
import typing as _typing

if _typing.TYPE_CHECKING:
    from bulkrunner.config import RunConfig
    from bulkrunner.engine import Engine, RunStats
    from bulkrunner.errors import (
        BulkrunnerError,
        ExitCode,
        InputFileError,
        RunInProgress,
        UsageError,
    )
    from bulkrunner.fields import Vocabulary
    from bulkrunner.limiter import SlidingWindowLimiter
    from bulkrunner.loading import load_input
    from bulkrunner.outcomes import Outcome, Status
    from bulkrunner.rates import Rate
    from bulkrunner.runner import run_job, validate_job
    from bulkrunner.sender import HttpSender, Sender
    from bulkrunner.validation import Rejection, Row, Validation, validate

_HOMES = {
    "BulkrunnerError": "errors",
    "Engine": "engine",
    "ExitCode": "errors",
    "HttpSender": "sender",
    "InputFileError": "errors",
    "Outcome": "outcomes",
    "Rate": "rates",
    "Rejection": "validation",
    "Row": "validation",
    "RunConfig": "config",
    "RunInProgress": "errors",
    "RunStats": "engine",
    "Sender": "sender",
    "SlidingWindowLimiter": "limiter",
    "Status": "outcomes",
    "UsageError": "errors",
    "Validation": "validation",
    "Vocabulary": "fields",
    "load_input": "loading",
    "run_job": "runner",
    "validate": "validation",
    "validate_job": "runner",
}

__all__ = [
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
    "load_input",
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

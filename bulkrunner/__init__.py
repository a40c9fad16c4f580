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
    from bulkrunner.commands.run import run_job
    from bulkrunner.commands.validate import validate_job
    from bulkrunner.config.run_config import RunConfig
    from bulkrunner.errors import (
        Aborted,
        BulkrunnerError,
        ExitCode,
        InputFileError,
        RunInProgress,
        UsageError,
    )
    from bulkrunner.input.loading import load_input
    from bulkrunner.input.validation import validate
    from bulkrunner.limits.limiter import SlidingWindowLimiter
    from bulkrunner.model import Outcome, Rate, Rejection, Row, RunStats, Status, Validation
    from bulkrunner.operations.fields import Vocabulary
    from bulkrunner.sending.engine import Engine
    from bulkrunner.sending.transport import HttpSender, Sender

_HOMES = {
    "Aborted": "errors",
    "BulkrunnerError": "errors",
    "Engine": "sending.engine",
    "ExitCode": "errors",
    "HttpSender": "sending.transport",
    "InputFileError": "errors",
    "Outcome": "model",
    "Rate": "model",
    "Rejection": "model",
    "Row": "model",
    "RunConfig": "config.run_config",
    "RunInProgress": "errors",
    "RunStats": "model",
    "Sender": "sending.transport",
    "SlidingWindowLimiter": "limits.limiter",
    "Status": "model",
    "UsageError": "errors",
    "Validation": "model",
    "Vocabulary": "operations.fields",
    "apply": "api",
    "export": "api",
    "load_input": "input.loading",
    "plan": "api",
    "run_job": "commands.run",
    "validate": "input.validation",
    "validate_job": "commands.validate",
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

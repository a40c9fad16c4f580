"""bulkrunner: apply settings to many SmartLead campaigns at once, safely, at the rate ceiling."""

from bulkrunner.config import RunConfig
from bulkrunner.engine import Engine, RunStats
from bulkrunner.errors import BulkrunnerError, InputFileError, RunInProgress, UsageError
from bulkrunner.fields import Vocabulary
from bulkrunner.limiter import SlidingWindowLimiter
from bulkrunner.loading import load_input
from bulkrunner.outcomes import Outcome, Status
from bulkrunner.rates import Rate
from bulkrunner.runner import ExitCode, run_job, validate_job
from bulkrunner.sender import HttpSender, Sender
from bulkrunner.validation import Rejection, Row, Validation, validate

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

"""Every exception bulkrunner raises on purpose, in one place.

    BulkrunnerError            base; its message is one line meant for the user
    ├── UsageError             bad invocation or unreadable input: nothing was sent (exit 2)
    │   ├── InputFileError     a file-level problem with the input, naming the file
    │   └── RunInProgress      another run of this job (input or report) holds it (exit 4)
    └── Aborted                a run or an export stopped early (exit 3)

Row-level problems are not exceptions: they become a row's ``invalid`` status and ``error``.
"""

from __future__ import annotations

import enum

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (`--help` needs none)
if TYPE_CHECKING:
    from pathlib import Path


class ExitCode(enum.IntEnum):
    OK = 0  # every row succeeded (or every row is a dry run)
    ROWS_FAILED = 1  # the run finished, but some rows failed or were invalid
    USAGE = 2  # bad invocation or unreadable input: nothing was sent
    ABORTED = 3  # the run stopped early (key rejected, outage, interrupted)
    IN_PROGRESS = 4  # another run of this job (input or report) is in progress: nothing sent


class BulkrunnerError(Exception):
    """Base class; ``str(error)`` is a single line fit to show the user."""


class UsageError(BulkrunnerError):
    """The command line, the job file or the input cannot be used. Nothing has been sent."""


class InputFileError(UsageError):
    """A problem with the input file as a whole (missing, empty, corrupt, bad columns)."""

    def __init__(self, path: Path | str, problem: str) -> None:
        from pathlib import Path  # (not needed to start: `--help` imports this module)

        super().__init__(f"{path}: {problem}")
        self.path = Path(path)
        self.problem = problem


class RunInProgress(UsageError):
    """Another bulkrunner process is running this job (its input or its report): nothing sent."""


class Aborted(BulkrunnerError):
    """A run or an export stopped early: key rejected, nothing listening, a wait longer than
    --max-wait, an outage, interrupted (exit 3). ``report``: the run's report, when it wrote one
    (``--resume`` continues the run)."""

    def __init__(self, message: str, report: Path | None = None) -> None:
        super().__init__(message)
        self.report = report


class KeyRejected(Exception):
    """A read was answered 401/403: no row can succeed."""


class Unreachable(Exception):
    """The first read was refused a connection: nothing listens at the base URL."""


class Unavailable(Exception):
    """The reads before sending got only retryable errors for --outage-timeout: SmartLead looks
    down (``retry.Outage``)."""

"""Every exception bulkrunner raises on purpose, in one place, each with the exit code it ends
a command with (``exit_code``):

    BulkrunnerError            base; its message is one line meant for the user
    ├── UsageError             bad invocation or unreadable input: nothing was sent (USAGE)
    │   ├── InputFileError     a file-level problem with the input, naming the file
    │   └── RunInProgress      another run of this job (input or report) holds it (IN_PROGRESS)
    └── Aborted                a run or an export stopped early (ABORTED)

Row-level problems are not exceptions: they become a row's ``invalid`` status and ``error``.
"""

from __future__ import annotations

import enum

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (`--help` needs none)
if TYPE_CHECKING:
    from pathlib import Path


class ExitCode(enum.IntEnum):
    """What a command's exit status tells cron. Each code's meaning is declared once, in
    ``_MEANINGS`` below: ``--notify``'s messages and the exit-code tables of the README and the
    docs are made from it."""

    OK = 0
    ROWS_FAILED = 1
    USAGE = 2
    ABORTED = 3
    IN_PROGRESS = 4
    CHANGES = 5

    @property
    def brief(self) -> str:
        """A few words: ``some rows failed``."""
        return _MEANINGS[self][0]

    @property
    def meaning(self) -> str:
        """What the code says happened, in full."""
        return _MEANINGS[self][1]

    @property
    def action(self) -> str:
        """What to do when an alert reports it."""
        return _MEANINGS[self][2]


# code: (brief, meaning, action)
_MEANINGS: dict[ExitCode, tuple[str, str, str]] = {
    ExitCode.OK: (
        "succeeded",
        "every row succeeded or was already unchanged (or, with `--dry-run`, every row is valid)",
        "all good",
    ),
    ExitCode.ROWS_FAILED: (
        "some rows failed",
        "the run finished, but some rows failed, were invalid or (with `--verify`) mismatched "
        "or could not be read back, "
        "or were not sent because their campaign does not exist (404), its current values "
        "could not be read for the backup, or a rollback could not undo the change (without "
        "`--allow-irreversible`), or were left as they are because their campaign changed "
        "since the run a rollback undoes or since a saved plan was made (`drifted`); or a "
        "rollback left campaigns it cannot restore; or `doctor` found an account whose key or "
        "server fails",
        "read the report",
    ),
    ExitCode.USAGE: (
        "usage error, nothing sent",
        "bad invocation or unusable input (the command line, the job file, the accounts file "
        "or the input file); nothing was sent",
        "fix the command or the file",
    ),
    ExitCode.ABORTED: (
        "aborted, resumable",
        "the run was aborted: key rejected (401/403), nothing listening at the base URL, enum "
        "names or the schedule shape refused row after row, outage, a wait longer than "
        "`--max-wait`, interrupted, the input file changed between batches, the backup or the "
        "journal could not be written, or an internal error; unsent rows are `not_attempted`; "
        "resumable (the backup keeps the original values across resumes)",
        "check the key or SmartLead's status, then `--resume`",
    ),
    ExitCode.IN_PROGRESS: (
        "another run of this job is in progress",
        "another run of this job (the same input, or the same report), or another run using "
        "one of its accounts (the same key), is in progress; nothing was sent",
        "usually harmless: the previous run is still going",
    ),
    ExitCode.CHANGES: (
        "changes to make",
        "`plan --exit-code` only: the plan found rows that would change (and nothing that "
        "would exit 1 or 3); without `--exit-code` such a plan exits 0",
        "review the plan; apply it with `run --plan` (a plan saved with `--out`)",
    ),
}


class BulkrunnerError(Exception):
    """Base class; ``str(error)`` is a single line fit to show the user."""

    exit_code = ExitCode.ABORTED  # what a command that ends with this error exits with


class UsageError(BulkrunnerError):
    """The command line, the job file or the input cannot be used. Nothing has been sent."""

    exit_code = ExitCode.USAGE


class InputFileError(UsageError):
    """A problem with the input file as a whole (missing, empty, corrupt, bad columns)."""

    def __init__(self, path: Path | str, problem: str) -> None:
        from pathlib import Path  # (not needed to start: `--help` imports this module)

        super().__init__(f"{path}: {problem}")
        self.path = Path(path)
        self.problem = problem


class RunInProgress(UsageError):
    """Another bulkrunner process is running this job (its input or its report): nothing sent."""

    exit_code = ExitCode.IN_PROGRESS


class Aborted(BulkrunnerError):
    """A run or an export stopped early: key rejected, nothing listening, a wait longer than
    --max-wait, an outage, interrupted. ``report``: the run's report, when it wrote one
    (``--resume`` continues the run)."""

    exit_code = ExitCode.ABORTED

    def __init__(self, message: str, report: Path | None = None) -> None:
        super().__init__(message)
        self.report = report


class KeyRejected(Exception):
    """A read was answered 401/403: no row can succeed."""


class Unreachable(Exception):
    """The first read was refused a connection: nothing listens at the base URL."""


class Unavailable(Exception):
    """The reads before sending got only retryable errors for --outage-timeout: SmartLead looks
    down (``sending.retry.Outage``)."""


class WaitTooLong(Exception):
    """The server asked everyone to wait longer than the run allows (``--max-wait``)."""

    def __init__(self, seconds: float, asked_by: str) -> None:
        super().__init__(f"{asked_by} asked to wait {self.said(seconds)}")
        self.seconds = seconds
        self.asked_by = asked_by

    @staticmethod
    def said(seconds: float) -> str:
        """A wait as a message says it: whole seconds, or, past a billion, three digits of them
        (a server's ``retry_after: 1e300`` is no 301-digit number)."""
        return f"{seconds:.0f}s" if seconds < 1e9 else f"{seconds:.3g}s"

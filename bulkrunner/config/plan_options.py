"""The options of saved plans and of drift, declared here for ``run_config.RunConfig`` (each is
one of its fields, as every option is; see ``options``): ``plan --out`` and ``--exit-code``,
``run --plan``, and ``--force``, which export and rollback share.

All four are flags only, never job-file keys: a job file is shared by the plan and the run of a
job, and each of these says what one command line wants once.
"""

from __future__ import annotations

from dataclasses import field

from bulkrunner.config.options import EXPORTING, as_optional_path, option, switch
from bulkrunner.errors import ExitCode

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (`--help` needs none)
if TYPE_CHECKING:
    from pathlib import Path

FORCE: bool = field(
    default=False,
    metadata=switch(
        "export: replace its output file if it exists (never a bulkrunner backup); "
        "rollback: restore the campaigns changed since the run too (drifted), and the "
        "campaigns of a backup that does not record what its run set",
        EXPORTING | {"rollback"},
        in_job_file=False,
    ),
)
OUT: Path | None = field(
    default=None,
    metadata=option(
        "save the plan to this file (Parquet): each row to change with its campaign's values "
        "before and after, the operation, the options that shape the requests and the "
        "accounts (never a key); `run --plan` applies exactly that",
        {"plan"},
        metavar="PLAN",
        convert=as_optional_path,
    ),
)
EXIT_CODE: bool = field(
    default=False,
    metadata=switch(
        f"exit {ExitCode.CHANGES:d} ({ExitCode.CHANGES.brief}) when rows would change and 0 "
        "when none would, for drift checks from cron (a plan that would exit "
        f"{ExitCode.ROWS_FAILED:d} or {ExitCode.ABORTED:d} still does)",
        {"plan"},
        in_job_file=False,
    ),
)
PLAN: Path | None = field(
    default=None,
    metadata=option(
        "apply a plan saved by `plan --out`, and nothing else: its rows, each only while its "
        "campaign still has the plan's before values (else it is left as it is: drifted); the "
        "input is not read",
        {"run"},
        metavar="PLAN",
        convert=as_optional_path,
    ),
)

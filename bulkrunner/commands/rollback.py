"""``bulkrunner rollback REPORT_OR_BACKUP``: put back what a run changed.

A real run writes, before sending, the current values of exactly the fields it is about to
change to ``<report name>.backup.parquet`` beside its report (a resumed run adds to it, never
replaces what is there). That backup is an ordinary input file, so rolling back is a run of it,
with the same limits, retries, journal and report.

A campaign whose change cannot be undone (it was stopped, or was a draft before the run, or a
field the run set had no value before it) is listed in the backup with why (with a row for
what can be restored of it): the rollback names each such campaign before it starts and counts
them after its summary, and a rollback that leaves any of them as they are does not exit 0.

A rollback reads each campaign first and restores it only if it still has what the run set in
it (the backup records that too): a campaign changed since is left as it is and reported
``drifted`` (exit 1), unless ``--force`` (``commands.drift``). ``--dry-run`` is the plan of
the rollback: it reads the account and shows what would be restored, and what drifted.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from typing import TextIO

from bulkrunner.commands.drift import of_backup
from bulkrunner.commands.plan import plan_job
from bulkrunner.commands.recording import recorded
from bulkrunner.commands.run import run_job
from bulkrunner.config.environment import return_freed_memory
from bulkrunner.config.paths import backup_path, is_backup
from bulkrunner.config.run_config import RunConfig
from bulkrunner.errors import ExitCode, UsageError
from bulkrunner.model import REAL_CLOCK, Clock, count
from bulkrunner.operations.base import named
from bulkrunner.output.events import show
from bulkrunner.records.backup import backup_rows, read_backup, read_unrestorable


@recorded("rollback")
def rollback_job(
    config: RunConfig,
    out: TextIO,
    environ: Mapping[str, str] = os.environ,
    clock: Clock = REAL_CLOCK,
) -> ExitCode:
    """Run the backup of the report (or the backup itself) named by ``config.input``."""
    target = config.input
    backup = target if is_backup(target) else backup_path(target)
    if not backup.exists():
        raise UsageError(
            f"{backup}: no backup to roll back to (a run writes one beside its report only when "
            "it had something to change, unless it was run with --no-backup)"
        )
    if not config.dry_run:  # before the backup is read: see return_freed_memory
        return_freed_memory()
    rolled, drift, missing = of_backup(replace(config, input=backup))
    rows = backup_rows(backup)
    if rows and missing and not (config.force or config.dry_run):
        raise UsageError(f"{missing}; nothing was sent")
    unrestorable = read_unrestorable(backup)
    noun = "campaign" if all(isinstance(t, int) for t in unrestorable) else "lead"
    if unrestorable:
        partly = set(read_backup(backup)) & set(unrestorable)  # a row restores the rest of it
        show(
            out,
            "unrestorable",
            [
                f"{noun} {named(c)}: cannot be restored{' in full' if c in partly else ''}: {why}"
                for c, why in unrestorable.items()
            ],
            campaigns={named(campaign): why for campaign, why in unrestorable.items()},
        )
    if rows == 0:
        show(out, "summary", [f"{backup}: nothing the rollback can restore"], counts={})
        code = ExitCode.OK
    elif config.dry_run:  # the plan of the rollback: it reads the account, and sends nothing
        code = plan_job(replace(rolled, dry_run=False), out, environ, clock)
    else:
        code = run_job(rolled, out, environ, clock, drift=drift)
    if not unrestorable:
        return code
    show(
        out,
        "unrestorable_summary",
        [f"not restored: {count(len(unrestorable), noun)} (listed above)"],
        unrestorable=len(unrestorable),
    )
    return ExitCode.ROWS_FAILED if code is ExitCode.OK and not config.dry_run else code

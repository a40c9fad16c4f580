"""``--keep N``: a job's old run folders removed, its N newest of each kind kept.

After a command wrote its report in a run folder (``reports/<job>-<time>[-<kind>]/``, see
``config.paths``), the folders of the same job and kind beside it (runs, plans and dry runs
each counted apart: an hourly plan never pushes out the folder, and the backup, of the last
real run) are listed newest first, and those past the ``keep`` newest removed, but never:

- the folder the command just wrote in;
- a folder with a journal (an unfinished run, to resume) or a lock (a run using it now);
- a folder holding anything bulkrunner did not write there (a file of yours, a folder, a link).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from bulkrunner.config.paths import JOURNAL_SUFFIX, LOCK_SUFFIX, RUN, is_run_file, run_folder_of

log = logging.getLogger("bulkrunner")


def prune(folder: Path, keep: int) -> list[Path]:
    """Remove the run folders of ``folder``'s job and kind past the ``keep`` newest (see the
    module's docstring); the folders removed. A folder that is not a run folder prunes none."""
    named = run_folder_of(folder)
    if named is None or not folder.parent.is_dir():
        return []
    job, _, kind = named
    ours: list[tuple[str, Path]] = []
    for entry in folder.parent.iterdir():
        found = run_folder_of(entry)
        if found is not None and found[0] == job and found[2] == kind:
            ours.append((found[1], entry))
    ours.sort(reverse=True)
    removed: list[Path] = []
    for _, old in ours[keep:]:
        if old.name == folder.name or not _removable(old):
            continue
        try:
            shutil.rmtree(old)
        except OSError as exc:
            log.warning("--keep: cannot remove %s (%s); it is left", old, exc.strerror or exc)
            continue
        removed.append(old)
    if removed:
        log.info(
            "--keep %d: removed %d older %s folder%s of %s: %s",
            keep,
            len(removed),
            "run" if kind == RUN else kind,
            "s" if len(removed) > 1 else "",
            job,
            ", ".join(path.name for path in removed),
        )
    return removed


def _removable(folder: Path) -> bool:
    """Whether ``folder`` is a run folder no run needs and holding only bulkrunner's files."""
    if folder.is_symlink() or not folder.is_dir():
        return False
    for entry in folder.iterdir():
        name = entry.name
        if entry.is_symlink() or not entry.is_file() or not is_run_file(name):
            return False
        if name.endswith((JOURNAL_SUFFIX, LOCK_SUFFIX)):
            return False
    return True

"""Every file bulkrunner names, and the one way it replaces a file without ever leaving it torn.

A run has a folder named after its job (its input's stem) and the UTC time it started, ``-2``,
``-3``... added when a command of the same second took the name; its files are named after its
report's whole name (``x.csv`` and ``x.json`` differ), so a report given with ``--report`` has
them beside it wherever it is::

    reports/plan-20261126T021500Z/report.csv              a run of plan.csv: its report,
        report.csv.journal, .lock, .backup.parquet        journal (while unfinished), lock, backup
        retry-20261126T030000Z.csv, rollback-2026...csv   a retry, a rollback of it (and theirs)
    reports/plan-20261126T020000Z-plan/plan.csv           a plan (a dry run: -dry-run/dry-run.csv)

A retry or rollback writes in the folder of the report it follows up, or in one of its own named
after that report when it is in none: no name grows with each follow-up. A piped input is kept
as ``reports/stdin-<hash of its bytes>.csv`` (or in the folder of ``--report``); an export is
``exports/<operation>-<time>.csv``; a report that cannot be written where it should goes to
``bulkrunner-report-<time>.csv`` here. The locks of inputs and accounts are in this user's lock
folder (``config.folders``). A file replaced (a report, the backup, an export) is written beside it,
flushed and renamed over it (``Staged``): a crash leaves the old file or the new one, whole.

This module imports nothing heavy: the help of ``run`` names the default report.
"""

from __future__ import annotations

import os
import re
import sys

from bulkrunner.errors import UsageError

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (`--help` needs none)
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from datetime import datetime
    from pathlib import Path
    from types import TracebackType

TIMESTAMP = "%Y%m%dT%H%M%SZ"  # 20261126T021500Z: sorts as time does, and is safe in a file name
DATE = "%Y-%m-%d"
REPORTS = "reports"  # the folder of the reports (and their journals...) not named
EXPORTS = "exports"

STANDARD_STREAM = "-"  # --input - reads standard input; export --output - writes standard output
INPUT_FORMATS = (".csv", ".parquet")
REPORT_FORMATS = (".csv", ".parquet", ".json", ".jsonl")
EXPORT_FORMATS = INPUT_FORMATS  # an export is an input file of its operation

JOURNAL_SUFFIX = ".journal"
LOCK_SUFFIX = ".lock"
BACKUP_SUFFIX = ".backup.parquet"

# A run's report in its folder, by kind: a run's, a plan's, a dry run's (``run --dry-run``)
RUN, PLAN, DRY_RUN = "report", "plan", "dry-run"
FOLLOW_UPS = ("retry", "rollback")  # what follows up a run, in that run's folder
DEFAULT_REPORT = f"{REPORTS}/<input stem>-<UTC time>/{RUN}.csv"  # as the help says it
DEFAULT_EXPORT = f"{EXPORTS}/<operation>-<UTC time>.csv"
# A run folder's name: its job, its time, a number when that name was taken, a kind but a run's
_RUN_FOLDER = re.compile(
    rf"(?P<job>.+)-(?P<time>\d{{8}}T\d{{6}}Z)(?:-(?P<n>\d+))?(?:-(?P<kind>{PLAN}|{DRY_RUN}))?"
)
# A report a run folder holds: its run's, or a follow-up's (a preview's kind after its own)
_IN_RUN_FOLDER = re.compile(
    rf"(?:{RUN}|{PLAN}|{DRY_RUN}|(?:{'|'.join(FOLLOW_UPS)})(?:-(?:{PLAN}|{DRY_RUN}))?"
    rf"-\d{{8}}T\d{{6}}Z(?:-\d+)?)"
)


def path(*parts: str) -> Path:
    """A ``Path`` of ``parts``; pathlib (which imports urllib) is loaded when a path is made, not
    when the help names one."""
    from pathlib import Path

    return Path(*parts)


def stamp(now: datetime) -> str:
    """``now`` (UTC) as default names carry it."""
    return f"{now:{TIMESTAMP}}"


def expand_template(path: str, now: datetime) -> str:
    """``{timestamp}`` (20261126T021500Z) and ``{date}`` (2026-11-26) in a path, in UTC."""
    return path.replace("{timestamp}", stamp(now)).replace("{date}", f"{now:{DATE}}")


def template_glob(template: str) -> str:
    """The glob pattern of every name ``template`` gives (its fields any text)."""
    import glob

    parts = template.replace("{date}", "{timestamp}").split("{timestamp}")
    return "*".join(glob.escape(part) for part in parts)


def default_report_path(input_path: Path, now: datetime, kind: str = RUN) -> Path:
    """The report of a command of ``kind`` (``RUN``, ``PLAN``, ``DRY_RUN``) on ``input_path``
    started at ``now``: ``reports/<input stem>-<time>[-<kind>]/<kind>.csv``, in a folder no
    command has used. A backup's is a rollback's (``follow_up_path``)."""
    if is_backup(input_path):
        return follow_up_path(report_of_backup(input_path), "rollback", now, kind)
    return run_folder(input_path.stem, now, kind) / f"{kind}.csv"


def follow_up_path(earlier: Path, command: str, now: datetime, kind: str = RUN) -> Path:
    """The report of ``command`` (retry, rollback; a ``kind`` of preview of it) following up the
    report ``earlier``: ``<command>[-<kind>]-<time>.csv`` in ``earlier``'s run folder, or in a
    new one named after it when it is in none (a report given with ``--report``)."""
    name = f"{command}{'' if kind == RUN else f'-{kind}'}-{stamp(now)}.csv"
    if in_run_folder(earlier):
        return unused(earlier.parent / name)
    return run_folder(earlier.stem, now, kind) / name


def run_folder(job: str, now: datetime, kind: str = RUN) -> Path:
    """``reports/<job>-<time>[-<kind>]``, or with ``-2``, ``-3``... after the time if a command
    already made that folder (two commands started in the same second)."""
    suffix = "" if kind == RUN else f"-{kind}"
    candidate, number = path(REPORTS, f"{job}-{stamp(now)}{suffix}"), 1
    while candidate.exists():
        number += 1
        candidate = path(REPORTS, f"{job}-{stamp(now)}-{number}{suffix}")
    return candidate


def in_run_folder(report: Path) -> bool:
    """Whether ``report`` has a name bulkrunner gives a report in a run folder."""
    return _IN_RUN_FOLDER.fullmatch(report.stem) is not None


def run_folder_of(folder: Path) -> tuple[str, str, str] | None:
    """The job, the time (with its number) and the kind (``RUN``, ``PLAN``, ``DRY_RUN``) of a
    run folder's name; None for a name bulkrunner does not give one."""
    found = _RUN_FOLDER.fullmatch(folder.name)
    if found is None:
        return None
    number = int(found["n"] or 1)
    return found["job"], f"{found['time']}-{number:06d}", found["kind"] or RUN


def is_run_file(name: str) -> bool:
    """Whether a file named ``name`` in a run folder is one bulkrunner writes there: a report
    named as run folders' are, a file beside one (journal, lock, backup), a temporary file."""
    if name.startswith(".") and name.endswith(".tmp"):
        return True
    for suffix in (JOURNAL_SUFFIX, LOCK_SUFFIX, BACKUP_SUFFIX):
        name = name.removesuffix(suffix)
    stem, dot, extension = name.rpartition(".")
    return bool(dot) and f".{extension}" in REPORT_FORMATS and bool(_IN_RUN_FOLDER.fullmatch(stem))


def journals(*also: Path) -> list[Path]:
    """The journals (unfinished runs) bulkrunner's default names leave: in ``reports/``, in
    each of its run folders, and in the folders ``also``."""
    reports = path(REPORTS)
    found = {*reports.glob(f"*{JOURNAL_SUFFIX}"), *reports.glob(f"*/*{JOURNAL_SUFFIX}")}
    for folder in also:
        found.update(folder.glob(f"*{JOURNAL_SUFFIX}"))
    return sorted(found)


def fallback_report_path(now: datetime) -> Path:
    """Where a report goes when it cannot be written where it should (a full or read-only disk)."""
    return path(os.getcwd(), f"bulkrunner-report-{stamp(now)}.csv")


def piped_input_path(folder: Path, digest: str, suffix: str) -> Path:
    """Where an input piped in (``--input -``) is kept: named by its content's ``digest``."""
    return folder / f"stdin-{digest}{suffix}"


def frame_input_path(folder: Path, digest: str) -> Path:
    """Where a DataFrame given to the Python API is kept as an input file: named by its
    content's ``digest``, so that the same DataFrame is the same job."""
    return folder / f"frame-{digest}.parquet"


def default_export_path(operation: str, now: datetime) -> Path:
    return path(EXPORTS, f"{operation}-{stamp(now)}.csv")


def journal_path(report: Path) -> Path:
    return report.with_name(report.name + JOURNAL_SUFFIX)


def report_of_journal(journal: Path) -> Path:
    return journal.with_name(journal.name.removesuffix(JOURNAL_SUFFIX))


def lock_path(report: Path) -> Path:
    return report.with_name(report.name + LOCK_SUFFIX)


def backup_path(report: Path) -> Path:
    return report.with_name(report.name + BACKUP_SUFFIX)


def report_of_backup(backup: Path) -> Path:
    return backup.with_name(backup.name.removesuffix(BACKUP_SUFFIX))


def is_backup(path: Path) -> bool:
    return path.name.endswith(BACKUP_SUFFIX)


def set_aside_path(report: Path, written: datetime) -> Path:
    """Where the report of a finished run (and its backup beside it) is kept when a new run
    writes the same report: ``<stem>-<time it was written><suffix>``, a name no run has."""
    return unused(report.with_name(f"{report.stem}-{stamp(written)}{report.suffix}"))


def unused(path: Path) -> Path:
    """``path``, or ``<stem>-2``, ``-3``... if a run already has a file, a journal or a backup
    there: two commands started in the same second must not share a default name."""
    candidate, number = path, 1
    while any(p.exists() for p in (candidate, journal_path(candidate), backup_path(candidate))):
        number += 1
        candidate = path.with_name(f"{path.stem}-{number}{path.suffix}")
    return candidate


def temporary(target: Path, tag: str = "") -> Path:
    """The temporary file ``target`` is written to before it is moved into place: hidden, beside
    it (a rename within a folder is atomic), ``.<name>[.<tag>].tmp``; a ``tag`` (a process id, a
    part number) tells several apart."""
    return target.with_name(f".{target.name}{f'.{tag}' if tag else ''}.tmp")


# --- replacing a file ---------------------------------------------------------------------------


class Staged:
    """A file on its way to ``target``: written to ``tmp`` (``temporary(target, tag)``), then
    ``commit`` flushes it to disk, renames it over ``target`` and flushes the folder, so that
    after a crash at any moment ``target`` is the old file or the new one. Leaving the ``with``
    block without committing removes ``tmp``."""

    def __init__(self, target: Path, tag: str = "") -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        self.target = target
        self.tmp = temporary(target, tag)
        self.committed = False

    def commit(self) -> Path:
        """Move ``tmp`` (written and closed) into place; on failure ``tmp`` is removed."""
        try:
            with self.tmp.open("rb") as written:
                os.fsync(written.fileno())
            os.replace(self.tmp, self.target)
        except BaseException:
            self.discard()
            raise
        self.committed = True
        _sync_folder(self.target.parent)
        return self.target

    def discard(self) -> None:
        self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> Staged:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if not self.committed:
            self.discard()


def replace_atomically(target: Path, write: Callable[[Path], object]) -> Path:
    """``write(tmp)`` writes the whole new file to ``tmp``, which then replaces ``target``
    (see ``Staged``); if ``write`` fails, ``target`` is left as it was and ``tmp`` removed."""
    with Staged(target) as staged:
        write(staged.tmp)
        return staged.commit()


def _sync_folder(folder: Path) -> None:
    """Flush a folder's entries (the rename just made) to disk. Windows cannot open a folder
    so: there the rename is as durable as the file system makes it."""
    if sys.platform == "win32":
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


# --- checks before anything is sent -------------------------------------------------------------


def check_writable(path: Path, what: str, formats: Sequence[str]) -> None:
    """Refuse, before anything is read or sent, a ``what`` file (a report, an export) that
    could not be written: a format not in ``formats``, a folder, a place inside a file or
    without write permission."""
    if path.suffix.lower() not in formats:
        raise UsageError(
            f"{path}: unsupported {what} format {path.suffix or '(no extension)'!r}; "
            f"use {or_list(formats)}"
        )
    if path.is_dir():
        raise UsageError(f"{path}: {what} path is a directory")
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():  # (its folders would be made inside a file: they cannot be)
        raise UsageError(f"{path}: cannot write the {what} there: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK):
        raise UsageError(f"{path}: cannot write the {what} there (permission denied)")


def check_regular(path: Path, what: str) -> None:
    """Refuse, before pyarrow opens it, a ``what`` (a backup, a saved plan) that is not a
    regular file (a FIFO, a device): pyarrow's open of one waits for a writer for ever, past
    any Ctrl-C. One not there is left to its reader to say so."""
    import stat

    try:
        mode = os.stat(path).st_mode
    except OSError:
        return
    if not stat.S_ISREG(mode):
        raise UsageError(f"{path}: not a file: a {what} is read whole, from a file")


def check_report_path(path: Path) -> None:
    """Refuse, before anything is sent, a report that could not be written."""
    check_writable(path, "report", REPORT_FORMATS)


def check_export_path(path: Path, *, force: bool = False) -> None:
    """Refuse, before anything is read, an export file that could not be written, or that
    would replace a file: one already there (unless ``force``), and never a backup, nor a name
    ``rollback`` would take for one. (Journals and locks are not export formats.)"""
    check_writable(path, "export", EXPORT_FORMATS)
    if is_backup(path):
        raise UsageError(
            f"{path}: the name of a bulkrunner backup (what undoes a run), which no export "
            "takes, even with --force; choose another --output"
        )
    if path.exists() and not force:
        raise UsageError(
            f"{path}: the file exists; choose another --output, or add --force to replace it"
        )


def or_list(formats: Sequence[str]) -> str:
    """``.csv, .parquet or .json``."""
    return formats[0] if len(formats) == 1 else f"{', '.join(formats[:-1])} or {formats[-1]}"

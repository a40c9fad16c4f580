"""Every file bulkrunner names, and the one way it replaces a file without ever leaving it torn.

Beside a report, named after the report's whole name (``x.csv`` and ``x.json`` differ)::

    reports/plan.csv                  the report, written when the run ends
    reports/plan.csv.journal          the rows finished so far, while the run is unfinished
    reports/plan.csv.lock             held while a run uses the report
    reports/plan.csv.backup.parquet   the values the run changes, as they were (rollback's input)
    reports/.plan.csv.tmp             a file being written, until it is moved into place

An input piped in (``--input -``) is kept as ``reports/stdin-<hash of its bytes>.csv`` (or
``.parquet``; in the report's folder when ``--report`` names one), so that the run, its journal
and its lock have a file to name, and the same content piped again is the same job.

Names that are not given carry the UTC time the command started (``TIMESTAMP``): a run's report
``reports/<input stem>-<time>.csv``, a retry's ``reports/<earlier report stem>-retry-<time>.csv``,
an export's ``exports/<operation>-<time>.csv``, and, when the report cannot be written where it
should, ``bulkrunner-report-<time>.csv`` in the current folder. The locks of inputs and accounts
are in this user's lock folder (``lock_folder``).

A file that is replaced (a report, the backup, an export) is written to a temporary file beside
it, flushed to disk, and renamed over it (``Staged``): a crash at any moment leaves the old file
or the new one, never half of one.

This module imports nothing heavy: the help of ``run`` names the default report.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import sys

from bulkrunner.config.environment import LOCK_DIR_ENV, STATE_DIR_ENV
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

DEFAULT_REPORT = f"{REPORTS}/<input stem>-<UTC time>.csv"  # as the help says it
DEFAULT_EXPORT = f"{EXPORTS}/<operation>-<UTC time>.csv"


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


def default_report_path(input_path: Path, now: datetime) -> Path:
    return path(REPORTS, f"{input_path.stem}-{stamp(now)}.csv")


def retry_report_path(earlier_report: Path, now: datetime) -> Path:
    return path(REPORTS, f"{earlier_report.stem}-retry-{stamp(now)}.csv")


def fallback_report_path(now: datetime) -> Path:
    """Where a report goes when it cannot be written where it should (a full or read-only disk)."""
    return path(os.getcwd(), f"bulkrunner-report-{stamp(now)}.csv")


def piped_input_path(folder: Path, digest: str, suffix: str) -> Path:
    """Where an input piped in (``--input -``) is kept: named by its content's ``digest``."""
    return folder / f"stdin-{digest}{suffix}"


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


def is_backup(path: Path) -> bool:
    return path.name.endswith(BACKUP_SUFFIX)


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


def check_report_path(path: Path) -> None:
    """Refuse, before anything is sent, a report that could not be written."""
    check_writable(path, "report", REPORT_FORMATS)


def or_list(formats: Sequence[str]) -> str:
    """``.csv, .parquet or .json``."""
    return formats[0] if len(formats) == 1 else f"{', '.join(formats[:-1])} or {formats[-1]}"


# --- the user's folder, the lock folder, an account's name ---------------------------------------


def lock_folder() -> Path:
    """This user's folder of the locks that are not beside a report: ``locks`` in the user's
    bulkrunner folder (``user_folder``), or ``$BULKRUNNER_LOCK_DIR``."""
    override = os.environ.get(LOCK_DIR_ENV)
    if override:
        return path(override).expanduser().absolute()
    return user_folder() / "locks"


STATE_FOLDER = "~/.local/state/bulkrunner"  # the user folder on Linux, as help texts name it


def user_folder() -> Path:
    """The folder bulkrunner keeps this user's locks and state in (see the module's docstring)."""
    if sys.platform == "win32":
        local = os.environ.get("LOCALAPPDATA")
        base = path(local) if local else home() / "AppData" / "Local"
        return base / "bulkrunner"
    if sys.platform == "darwin":
        return home() / "Library" / "Application Support" / "bulkrunner"
    return home() / ".local" / "state" / "bulkrunner"


def state_folder(folder: Path | None = None) -> Path:
    """The folder of the state store: ``folder`` when given, else ``$BULKRUNNER_STATE_DIR``,
    else the user's bulkrunner folder."""
    if folder is None:
        override = os.environ.get(STATE_DIR_ENV)
        if not override:
            return user_folder()
        folder = path(override)
    return folder.expanduser().absolute()


def home() -> Path:
    """The user's home as the user database has it (cron's ``HOME`` is that one; a ``sudo``
    may keep another's), else ``HOME``. (POSIX only.)"""
    import pwd

    try:
        return path(pwd.getpwuid(os.getuid()).pw_dir)
    except KeyError:  # a uid the database does not know (a container's)
        return path(os.path.expanduser("~"))


def private_folder_problem(folder: Path) -> str:
    """Create ``folder`` for this user alone (0700, its parents as the umask has them), or check
    that it still is: what is wrong with it ("is a symbolic link", "is not a folder", "belongs to
    another user (uid N)", "may be written by other users (mode 0777)"), or "" when nothing is.
    OSError when it cannot be created or looked at."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        folder.mkdir(mode=0o700)
    found = os.lstat(folder)
    if stat.S_ISLNK(found.st_mode):
        return "is a symbolic link"
    if not stat.S_ISDIR(found.st_mode):
        return "is not a folder"
    if sys.platform != "win32" and found.st_uid != os.geteuid():
        return f"belongs to another user (uid {found.st_uid})"
    if sys.platform != "win32" and found.st_mode & 0o022:
        return f"may be written by other users (mode {stat.S_IMODE(found.st_mode):04o})"
    return ""


def account_id(base_url: str, key: str) -> str:
    """The name of the account ``key`` opens on the server ``base_url`` names: 24 hex digits of
    a SHA-256 (one-way: the key is not in it). ``base_url`` has passed ``baseurl.check``."""
    from bulkrunner.config.baseurl import server

    material = f"bulkrunner account\0{server(base_url)}\0{key}".encode()
    return hashlib.sha256(material).hexdigest()[:24]


def input_lock_path(input_path: Path) -> Path:
    """The lock of every run of ``input_path``, wherever their reports go."""
    key = hashlib.sha256(str(input_path.resolve()).encode()).hexdigest()[:24]
    return lock_folder() / f"input-{key}{LOCK_SUFFIX}"


def account_lock_path(base_url: str, key: str) -> Path:
    """The lock every run using an account holds, named by the account (``account_id``: the
    same key under two names, or on one server written two ways, is one account)."""
    return lock_folder() / f"account-{account_id(base_url, key)}{LOCK_SUFFIX}"

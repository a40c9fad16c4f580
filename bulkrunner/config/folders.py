"""This user's folders (``user_folder``: the state store's, the locks', the simulated
account's), whatever ``TMPDIR`` or ``HOME`` a cron entry has, each created for this user alone and
checked (``private_folder_problem``); and the names of an account (a one-way hash of its server
and key) and of the locks of inputs and accounts kept there."""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import sys

from bulkrunner.config.environment import LOCK_DIR_ENV, STATE_DIR_ENV
from bulkrunner.config.paths import LOCK_SUFFIX, path

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing (`--help` needs none)
if TYPE_CHECKING:
    from pathlib import Path


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


def simulated_accounts_path(folder: Path | None = None) -> Path:
    """Where ``--simulate`` keeps its simulated accounts between commands: ``simulator.json``
    in the state folder (``state_folder(folder)``)."""
    return state_folder(folder) / "simulator.json"


def set_aside_path(path: Path) -> Path:
    """Where a file that cannot be read is moved, kept for a look rather than overwritten."""
    return path.with_name(f"{path.name}.unreadable")


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

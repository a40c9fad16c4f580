"""What every bulkrunner process of a user must agree on to share anything: the folder it keeps
its locks and its state store in, and the name it gives an account there.

The folder is the same for every process of the user whatever its environment: cron and a shell
differ in ``TMPDIR`` and the ``XDG_*`` variables, not in the user's home, so it is found from the
home the user database gives (``~/.local/state/bulkrunner``; ``~/Library/Application
Support/bulkrunner`` on macOS; ``%LOCALAPPDATA%\\bulkrunner`` on Windows). What is kept there is
for this user alone: ``private_folder_problem`` creates a folder 0700, or says why an existing
one is not fit (a link, not a folder, another user's, writable by others).

An account is named by a one-way hash of the server its base URL names (however that URL is
written) and its key: the same key under two names is one account, and the key cannot be read
back from the name.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import sys
from pathlib import Path

from bulkrunner.config.baseurl import server


def user_folder() -> Path:
    """The folder bulkrunner keeps this user's locks and state in (see the module's docstring)."""
    if sys.platform == "win32":
        local = os.environ.get("LOCALAPPDATA")
        base = Path(local) if local else Path.home() / "AppData" / "Local"
        return base / "bulkrunner"
    if sys.platform == "darwin":
        return home() / "Library" / "Application Support" / "bulkrunner"
    return home() / ".local" / "state" / "bulkrunner"


def home() -> Path:
    """The user's home as the user database has it (cron's ``HOME`` is that one; a ``sudo``
    may keep another's), else ``HOME``. (POSIX only.)"""
    import pwd

    try:
        return Path(pwd.getpwuid(os.getuid()).pw_dir)
    except KeyError:  # a uid the database does not know (a container's)
        return Path.home()


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
    material = f"bulkrunner account\0{server(base_url)}\0{key}".encode()
    return hashlib.sha256(material).hexdigest()[:24]

"""An input given on standard input (``--input -``), kept as a file named by its content.

A run is identified by its input file: its journal, ``--resume`` and the lock that keeps two runs
of one job apart all name it. So the bytes piped in are saved first, as the Python API saves a
DataFrame, to ``stdin-<hash of the bytes>.csv`` (``.parquet`` when they are a Parquet file) in
the report's folder (``reports/`` by default; ``config.paths.piped_input_path``): the same
content piped again is the same job (``--resume`` continues it, a second run of it while one
runs is refused), and the rows of a report can be found in the file they came from.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path
from typing import BinaryIO

from bulkrunner.config.environment import sigterm_as_ctrl_c
from bulkrunner.config.paths import piped_input_path, temporary
from bulkrunner.errors import UsageError

_PARQUET_MAGIC = b"PAR1"  # the first (and last) four bytes of every Parquet file
_BLOCK = 1 << 20


def save_piped(stream: BinaryIO, folder: Path) -> Path:
    """The bytes of ``stream`` (standard input) saved to a file of ``folder`` named by their
    hash, and its path; a file of that name already holds them (the same content) and is kept.
    A one-line UsageError when nothing was piped or the file cannot be written."""
    if stream.isatty():
        raise UsageError(
            "--input -: standard input is a terminal, not a file: pipe the input in "
            "(producer | bulkrunner run --input -)"
        )
    tmp = temporary(folder / "stdin", str(os.getpid()))
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with sigterm_as_ctrl_c():  # stopped while it copies: the copy is removed, as on Ctrl-C
            digest, first = _copy(stream, tmp)
        if not first:
            raise UsageError("--input -: standard input is empty: nothing was piped in")
        suffix = ".parquet" if first == _PARQUET_MAGIC else ".csv"
        path = piped_input_path(folder, digest, suffix)
        if not path.exists():  # (if it does, it holds these very bytes)
            os.replace(tmp, path)
    except OSError as exc:
        raise UsageError(
            f"--input -: cannot keep standard input in {folder} ({exc.strerror or exc}); "
            "nothing was sent"
        ) from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
    return path


def _copy(stream: BinaryIO, target: Path) -> tuple[str, bytes]:
    """Copy ``stream`` to ``target``, flushed to disk before a journal may name it: the hash of
    the bytes (16 hex digits), and the first four."""
    digest = hashlib.sha256()
    first = b""
    with target.open("wb") as handle:
        while block := stream.read(_BLOCK):
            first = first or block[: len(_PARQUET_MAGIC)]
            digest.update(block)
            handle.write(block)
        handle.flush()
        os.fsync(handle.fileno())
    return digest.hexdigest()[:16], first

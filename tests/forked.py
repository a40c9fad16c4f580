"""``bulkrunner`` in a process of its own without a new interpreter's start: the test's process
forks, and the child runs the command line (``main``) with what it was given, as ``python -m
bulkrunner ARGV`` (or ``python -c CODE ARGV``) would, then exits with its exit code.

A new interpreter takes about a second to import pandas, pyarrow and aiohttp, on the path of
every test that waits for a process to be running; the child has them already. It is a process
as real as any for what the tests of ``tests/e2e`` do to one: its own pid, files, locks and
signals, SIGKILL and SIGINT included. What it does not check is a start from nothing: which
modules a command imports and the allocator pyarrow is given before its import, which
``tests/e2e/test_startup.py`` and ``test_streaming.py`` check in new interpreters, and the
installed entry point, which ``test_piped.py`` and ``test_simulator_process.py`` run.

The child starts as an exec'd process would: only the standard streams open (each given one
where asked, as ``subprocess.Popen`` does), its folder and environment set, the signals a new
interpreter has, no key remembered, and every object of the test's process out of the garbage
collector's reach, so that none closes a descriptor number the child has reused.
"""

from __future__ import annotations

import gc
import io
import os
import signal
import subprocess
import sys
import traceback
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

_MODULE = [sys.executable, "-m", "bulkrunner"]
_CODE = [sys.executable, "-c"]


class Forked(subprocess.Popen[Any]):
    """``subprocess.Popen`` of ``[sys.executable, "-m", "bulkrunner", *argv]`` or of
    ``[sys.executable, "-c", code, *argv]``, run by a fork of this process (see the module's
    docstring); every argument of ``Popen`` the tests give works as it does there."""

    def _execute_child(
        self,
        args: Sequence[str],
        executable: Any,
        preexec_fn: Any,
        close_fds: bool,
        pass_fds: Any,
        cwd: Any,
        env: Mapping[str, str] | None,
        startupinfo: Any,
        creationflags: int,
        shell: bool,
        p2cread: int,
        p2cwrite: int,
        c2pread: int,
        c2pwrite: int,
        errread: int,
        errwrite: int,
        *rest: Any,
    ) -> None:
        args = [os.fspath(arg) for arg in args]
        if args[:3] != _MODULE and args[:2] != _CODE:
            raise ValueError(f"not a command line Forked runs: {args[:3]}")
        sys.stdout.flush()
        sys.stderr.flush()
        with warnings.catch_warnings():
            # Python 3.12 warns of a fork beside threads (the simulator's): a lock another
            # thread held would stay held in the child. The child takes none of theirs: it
            # makes its own streams, and logging and the import lock are reset at a fork.
            warnings.filterwarnings("ignore", ".*fork", DeprecationWarning)
            pid = os.fork()
        if pid == 0:
            _child(args, cwd, env, (p2cread, c2pwrite, errwrite))
        self.pid = pid
        self._child_created = True
        self._close_pipe_fds(p2cread, p2cwrite, c2pread, c2pwrite, errread, errwrite)  # type: ignore[attr-defined]


def run(args: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[Any]:
    """``subprocess.run`` of ``args`` by ``Forked``: ``timeout``, ``check``, ``input`` and
    ``capture_output`` as there."""
    timeout, check, given = kwargs.pop("timeout", None), kwargs.pop("check", False), None
    if "input" in kwargs:
        given, kwargs["stdin"] = kwargs.pop("input"), subprocess.PIPE
    if kwargs.pop("capture_output", False):
        kwargs["stdout"] = kwargs["stderr"] = subprocess.PIPE
    with Forked(list(args), **kwargs) as process:
        try:
            out, err = process.communicate(given, timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise
    done = subprocess.CompletedProcess(list(args), process.returncode, out, err)
    if check:
        done.check_returncode()
    return done


def _child(
    args: list[str], cwd: Any, env: Mapping[str, str] | None, streams: tuple[int, int, int]
) -> None:
    """The forked child: set up as a new process, run the command, exit. Never returns."""
    code = 1
    try:
        gc.freeze()
        signal.set_wakeup_fd(-1)
        for std, given in enumerate(streams):
            if given not in (-1, std):
                os.dup2(given, std)
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))
        for number in (signal.SIGTERM, signal.SIGHUP, signal.SIGALRM, signal.SIGUSR1):
            signal.signal(number, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if cwd is not None:
            os.chdir(cwd)
        if env is not None:
            os.environ.clear()
            os.environ.update(env)
        # the streams of a new interpreter (unbuffered output, as PYTHONUNBUFFERED makes it)
        sys.stdin = io.TextIOWrapper(io.BufferedReader(io.FileIO(0, "r", closefd=False)))
        sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), write_through=True)
        sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), write_through=True)
        code = _command(args)
    except SystemExit as exit:
        code = exit.code if isinstance(exit.code, int) else 0 if exit.code is None else 1
    except BaseException:
        traceback.print_exc()
    finally:
        import logging

        try:
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _command(args: list[str]) -> int:
    """What ``python -m bulkrunner ARGV`` or ``python -c CODE ARGV`` does: its exit code."""
    from bulkrunner.config import redaction

    redaction._remembered.clear()  # a new process remembers no key
    if args[:3] == _MODULE:
        from bulkrunner.cli.app import main

        sys.argv = ["bulkrunner", *args[3:]]
        return main(args[3:])
    sys.argv = ["-c", *args[3:]]
    exec(compile(args[2], "<string>", "exec"), {"__name__": "__main__"})
    return 0

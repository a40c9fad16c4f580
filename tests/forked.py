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

import atexit
import contextlib
import faulthandler
import gc
import importlib
import io
import logging
import os
import signal
import subprocess
import sys
import threading
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
        gid, gids, uid, _, new_session = rest[1:6]
        unsupported = (shell, executable, preexec_fn, pass_fds, new_session, gid, gids, uid)
        if any(each not in (None, False, ()) for each in unsupported):
            raise ValueError("Forked takes none of shell, executable, preexec_fn, pass_fds, ids")
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
        except BaseException:  # a timeout, or the test's own (pytest-timeout): no child left
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
    """The forked child: set up as a new process, run the command, exit as an interpreter
    does. Never returns."""
    code: int = 1
    try:
        gc.freeze()
        _as_new(streams, cwd, env)
        code = _command(args)
    except SystemExit as exit:
        code = _exit_code(exit.code)
    except KeyboardInterrupt:  # uncaught, an interpreter dies of the signal
        _flushed()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    except BaseException:
        traceback.print_exc()
    finally:
        try:
            threading._shutdown()  # type: ignore[attr-defined]  # non-daemon threads, as at exit
            atexit._run_exitfuncs()
            logging.shutdown()
            _flushed()
        finally:
            os._exit(code & 0xFF)


def _as_new(streams: tuple[int, int, int], cwd: Any, env: Mapping[str, str] | None) -> None:
    """What the child keeps of the test's process, as an exec'd one would not: only the given
    standard streams open, the interpreter's signals, hooks, warning filters and exit handlers,
    no logging handler (pytest's write to descriptors the child closes and reuses)."""
    signal.set_wakeup_fd(-1)
    faulthandler.disable()
    for std, given in enumerate(streams):
        if given not in (-1, std):
            os.dup2(given, std)
    os.closerange(3, os.sysconf("SC_OPEN_MAX"))
    for number in (signal.SIGTERM, signal.SIGHUP, signal.SIGALRM, signal.SIGUSR1):
        signal.signal(number, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.excepthook, sys.unraisablehook = sys.__excepthook__, sys.__unraisablehook__
    threading.excepthook = threading.__excepthook__
    importlib.reload(warnings)  # a test's warnings are recorded, not printed: printed again
    warnings.resetwarnings()
    for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
        warnings.simplefilter("ignore", category, append=True)
    warnings.filterwarnings("default", category=DeprecationWarning, module="__main__")
    atexit._clear()
    for logger in (logging.root, *logging.Logger.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger):
            logger.handlers.clear()
    logging._handlerList.clear()  # type: ignore[attr-defined]
    logging.root.setLevel(logging.WARNING)
    if cwd is not None:
        os.chdir(cwd)
    if env is not None:
        os.environ.clear()
        os.environ.update(env)
    # the streams of a new interpreter (unbuffered output, as PYTHONUNBUFFERED makes it)
    sys.stdin = io.TextIOWrapper(io.BufferedReader(io.FileIO(0, "r", closefd=False)))
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), write_through=True)
    sys.stderr = io.TextIOWrapper(
        io.FileIO(2, "w", closefd=False), write_through=True, errors="backslashreplace"
    )


def _exit_code(given: object) -> int:
    """The exit status ``sys.exit(given)`` gives: a message is printed, and is 1."""
    if given is None:
        return 0
    if isinstance(given, int):
        return given
    print(given, file=sys.stderr)
    return 1


def _flushed() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()


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

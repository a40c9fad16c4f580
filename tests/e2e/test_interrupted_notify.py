"""Ctrl-C during the webhook call of a run on the command line: a signal to a process of its
own (the other output tests for cron run in this process: ``tests/unit/cli/test_cron_output.py``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.forked import Forked
from tests.hostile import RawServer, silent
from tests.unit.cli.test_cron_output import TOKEN, plan


def test_ctrl_c_during_the_webhook_call_ends_the_run_cleanly_with_its_exit_code(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMARTLEAD_")}
    with RawServer(silent) as server:
        url = f"{server.url}/hook/{TOKEN}"
        process = Forked(
            # no key: exit 2, then the webhook call
            [*(sys.executable, "-m", "bulkrunner", "run", str(plan(tmp_path))), "--notify", url],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert server.accepted.wait(60)  # the webhook call is under way
            assert server.connections == 1
            process.send_signal(signal.SIGINT)
            _, err = process.communicate(timeout=30)
        finally:
            process.kill()
    assert process.returncode == 2, err  # the run's, as if the webhook had not been called
    assert "Traceback" not in err
    assert "KeyboardInterrupt" not in err
    assert "notification to http://127.0.0.1 abandoned: interrupted" in err
    assert "SMARTLEAD_API_KEY is not set" in err

"""How the load test stops the bot it started (loadtest/stack.py): Ctrl-C, then SIGTERM, then SIGKILL."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, Tuple

from loadtest.stack import stop

IGNORES_CTRL_C = "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); time.sleep(60)"
IGNORES_BOTH = IGNORES_CTRL_C.replace("time.sleep", "signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep")


def started(code: str, ignoring: Tuple[signal.Signals, ...]) -> subprocess.Popen:
    """`code` in a process group of its own, once it ignores the `ignoring` signals (its SigIgn mask)."""
    process = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    wanted = sum(1 << (sig - 1) for sig in ignoring)
    while int(_status(process.pid)["SigIgn"], 16) & wanted != wanted:
        time.sleep(0.05)
    return process


def _status(pid: int) -> Dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return dict(line.split(":\t", 1) for line in lines if ":\t" in line)


def test_a_bot_that_ignores_ctrl_c_gets_sigterm_which_lets_it_stop_its_services():
    assert stop(started(IGNORES_CTRL_C, (signal.SIGINT,)), timeout_s=1) == -signal.SIGTERM


def test_sigkill_only_when_sigterm_fails_too():
    assert stop(started(IGNORES_BOTH, (signal.SIGINT, signal.SIGTERM)), timeout_s=1) == -signal.SIGKILL

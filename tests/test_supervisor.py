"""Stopping `python -m bot run` with Ctrl-C or SIGTERM (`kill`, `docker stop`) stops its services
too: a supervised child must not outlive its supervisor, even when the supervisor was started as a
background job, which inherits Ctrl-C ignored."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT, free_port

# A supervisor with one service (a web server in its own process group), as `bot run` holds them.
SUPERVISED = """
import sys
from pathlib import Path
from bot.supervisor import Service, Supervisor, handle_stop_signals

port, log_dir = sys.argv[1], Path(sys.argv[2])
supervisor = Supervisor(log_dir)
handle_stop_signals()
try:
    supervisor.start(Service("web", [sys.executable, "-m", "http.server", port], f"http://localhost:{port}/"))
    print(supervisor.services[0].process.pid, flush=True)
    supervisor.watch()
finally:
    supervisor.stop()
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def ignore_ctrl_c() -> None:
    """What a non-interactive shell does to a job it starts with `&`."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize(
    "stop_signal, exit_code", [(signal.SIGTERM, 128 + signal.SIGTERM), (signal.SIGINT, -signal.SIGINT)]
)
def test_a_stop_signal_stops_the_supervised_services(tmp_path, stop_signal, exit_code):
    process = subprocess.Popen(
        [sys.executable, "-c", SUPERVISED, str(free_port()), str(tmp_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # the KeyboardInterrupt's traceback
        text=True,
        start_new_session=True,
        preexec_fn=ignore_ctrl_c,
    )
    try:
        child = int(process.stdout.readline())
        assert alive(child)
        process.send_signal(stop_signal)
        assert process.wait(timeout=30) == exit_code
        deadline = time.monotonic() + 10
        while alive(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not alive(child)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)

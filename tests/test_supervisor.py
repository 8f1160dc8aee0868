"""Stopping `python -m bot run` with SIGTERM (`kill`, `docker stop`) stops its services too, as
Ctrl-C does: a supervised child must not outlive its supervisor."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from tests.conftest import ROOT, free_port

# A supervisor with one service (a web server in its own process group), as `bot run` holds them.
SUPERVISED = """
import sys
from pathlib import Path
from bot.supervisor import Service, Supervisor, exit_on_sigterm

port, log_dir = sys.argv[1], Path(sys.argv[2])
supervisor = Supervisor(log_dir)
exit_on_sigterm()
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


def test_sigterm_stops_the_supervised_services(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-c", SUPERVISED, str(free_port()), str(tmp_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        child = int(process.stdout.readline())
        assert alive(child)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 128 + signal.SIGTERM
        deadline = time.monotonic() + 10
        while alive(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not alive(child)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)

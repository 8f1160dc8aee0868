"""Start the bot's services as child processes, restart one that crashes, stop all together.

Each child runs in its own process group with its output in a log file, so Ctrl-C reaches
only us and we stop every group: nothing is left running. A service that exits while the others
run is started again after a growing pause (1 s, 2 s, 4 s ... at most 60 s; back to 1 s once it
has run a minute), so a crash costs its own requests, not the whole bot.
"""

from __future__ import annotations

import logging
import os
import pwd
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import httpx

logger = logging.getLogger(__name__)


@dataclass
class Service:
    """A child process and how to tell it is ready: its `ready_url` answers 200, or `probe()` is true
    for servers that speak no HTTP (PostgreSQL, Redis); `ready_url` then only names where it listens."""

    name: str
    command: Sequence[str]
    ready_url: str
    env: Optional[Dict[str, str]] = None
    cwd: Optional[Path] = None
    process: Optional[subprocess.Popen] = field(default=None, repr=False)
    log_path: Optional[Path] = None
    started_at: float = 0.0
    crashes: int = 0  # in a row: reset once it has run for STABLE_S
    restart_at: Optional[float] = None
    probe: Optional[Callable[[], bool]] = field(default=None, repr=False)
    user: Optional[str] = None  # run as this user (PostgreSQL refuses root)
    stop_signal: int = signal.SIGTERM  # what asks it to stop cleanly (PostgreSQL: SIGINT, its fast shutdown)

    def exited(self) -> bool:
        """Whether its process has ended (or never started)."""
        return self.process is None or self.process.poll() is not None


FIRST_BACKOFF_S = 1.0
MAX_BACKOFF_S = 60.0
STABLE_S = 60.0


class ServiceFailed(RuntimeError):
    """A service exited or never became ready."""


class Supervisor:
    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.services: List[Service] = []

    def start(self, *together: Service, timeout_s: float = 300.0) -> None:
        """Start services at once and wait until each one's ready URL answers 200 (or its probe is true)."""
        for service in together:
            self._spawn(service)
            self.services.append(service)
        for service in together:
            self._wait_until_ready(service, timeout_s)

    @staticmethod
    def _wait_until_ready(service: Service, timeout_s: float) -> None:
        wait_for(
            service.ready_url, timeout_s, alive=lambda: not service.exited(), what=service.name, probe=service.probe
        )

    def watch(self, poll_s: float = 0.5) -> None:
        """Block while the services run, restarting each one that exits after its backoff."""
        while True:
            now = time.monotonic()
            for service in self.services:
                self._check(service, now)
            time.sleep(poll_s)

    def _check(self, service: Service, now: float) -> None:
        if not service.exited():
            if service.crashes and now - service.started_at >= STABLE_S:
                service.crashes = 0
            return
        if service.restart_at is None:
            pause = min(MAX_BACKOFF_S, FIRST_BACKOFF_S * 2**service.crashes)
            service.restart_at = now + pause
            logger.error(
                "%s exited with code %s; restarting it in %.0f s (log: %s)",
                service.name,
                service.process and service.process.returncode,
                pause,
                service.log_path,
            )
        elif now >= service.restart_at:
            service.crashes += 1
            service.restart_at = None
            _signal_group(service.process, signal.SIGKILL)  # what it left behind in its group
            self._spawn(service)
            logger.warning("%s restarted (crash %d in a row)", service.name, service.crashes)

    def _spawn(self, service: Service) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        service.log_path = self.log_dir / f"{service.name}.log"
        with open(service.log_path, "ab") as log:
            service.process = subprocess.Popen(
                list(service.command),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=service.env,
                cwd=service.cwd,
                start_new_session=True,
                user=service.user,
                group=pwd.getpwnam(service.user).pw_gid if service.user else None,
                extra_groups=[] if service.user else None,
            )
        service.started_at = time.monotonic()

    def stop(self, grace_s: float = 15.0) -> None:
        """Ask every process group to stop (newest first; SIGTERM unless the service names another
        signal), SIGKILL what outlives the grace period."""
        for service in reversed(self.services):
            _signal_group(service.process, service.stop_signal)
        deadline = time.monotonic() + grace_s
        for service in reversed(self.services):
            try:
                if service.process is not None:
                    service.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            _signal_group(service.process, signal.SIGKILL)
        self.services.clear()

    def tail(self, service_name: str, lines: int = 30) -> str:
        """The end of a service's log, to show why it failed."""
        return tail(self.log_dir / f"{service_name}.log", lines)


def tail(path: Path, lines: int = 30) -> str:
    """The last `lines` lines of a log file ("" if there is none yet)."""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


def handle_stop_signals() -> None:
    """Make Ctrl-C and SIGTERM (`kill`, `docker stop`, a CI timeout) exit through `finally` blocks, so
    whoever holds a Supervisor stops its children instead of leaving them running. Ctrl-C is set
    back to Python's KeyboardInterrupt because a program started as a background job (`make run &`
    in a script) inherits SIGINT ignored, and would leave every service running when told to stop."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))


def wait_for(
    url: str,
    timeout_s: float,
    alive: Callable[[], bool] = lambda: True,
    what: str = "service",
    probe: Optional[Callable[[], bool]] = None,
) -> None:
    """Poll `url` until it answers 200 (or `probe` until it is true); raise ServiceFailed if `alive()`
    turns false or time runs out."""
    ready = probe or (lambda: _answers_200(url))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not alive():
            raise ServiceFailed(f"{what} exited before it was ready at {url}")
        if ready():
            return
        time.sleep(0.5)
    raise ServiceFailed(f"{what} was not ready at {url} within {timeout_s:.0f} s")


def _answers_200(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def _signal_group(process: Optional[subprocess.Popen], sig: int) -> None:
    if process is None:
        return
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass

"""The bot as we ship it, started as the README says: `make run` in a copy of the checkout.

The copy holds the files git tracks, and the untracked ones it does not ignore, as they are in the
working tree: config.yml, domain.yml, endpoints.yml and credentials.yml unmodified, nothing written
by a test. Only build outputs come along from this checkout: the virtual environment (a link: the
same requirements.lock) and the widget's bundle; `make run` trains its own model. `make` runs with
this machine's environment less everything the suite sets for its own servers (the secrets, Triton's
and the databases' settings), so `make run` generates its secrets as it does on a fresh machine.
Only the Telegram settings a user would export point its channel at the local fake Bot API.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence

from bot import secrets
from tests.conftest import ROOT

VENV = Path(sys.executable).parent.parent
READY = "Press Ctrl-C to stop everything."
# The fixed addresses of the shipped files and `make run`'s defaults: Rasa, actions, Triton, widget;
# with REPLICAS=3 also PostgreSQL and Redis.
PORTS = {
    "rasa": 5005,
    "actions": 5055,
    "triton-http": 8000,
    "triton-grpc": 8001,
    "triton-metrics": 8002,
    "widget": 8080,
}
REPLICA_PORTS = {"postgres": 5433, "redis": 6380}
# Variables the bot reads (bot/, actions/, nlu/settings.py): what a newcomer has not set.
OWN_VARIABLES = re.compile(r"(TRITON|TELEGRAM|RASA|POSTGRES|REDIS|SHOP|LOG_STORE|ACTIONS|WIDGET|BOT)_|REPLICAS$|MAKE")
# What a log line must not say unless a test caused it.
TROUBLE = re.compile(r"\bERROR\b|\bCRITICAL\b|Traceback|Refused")


def checkout_copy(directory: Path) -> Path:
    """The working tree's files that git does not ignore, in `directory`, with the build outputs."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():  # not one deleted in the working tree
            (directory / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, directory / name)  # times kept: make sees the environment as up to date
    (directory / ".venv").symlink_to(VENV)
    shutil.copytree(ROOT / "widget" / "dist", directory / "widget" / "dist")
    # Set up again, the shared environment's editable install would point at the copy.
    stale = subprocess.run(["make", "-q", "setup"], cwd=directory, env=customer_environment()).returncode
    assert stale == 0, "the environment is older than requirements.lock, pyproject.toml or Makefile: `make setup` first"
    return directory


def customer_environment(**settings: str) -> Dict[str, str]:
    """This machine's environment without the bot's own variables, plus `settings`."""
    kept = {name: value for name, value in os.environ.items() if not OWN_VARIABLES.match(name)}
    return {**kept, **settings}


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


LogMark = Dict[Path, int]  # where each service log ended when a conversation began


@dataclass
class ShippedBot:
    """`make run [REPLICAS=N]` running in `project`; `stop()` sends what Ctrl-C sends."""

    project: Path
    env: Dict[str, str]
    arguments: Sequence[str] = ()
    process: Optional[subprocess.Popen] = None

    @property
    def output(self) -> Path:
        """What `make run` prints, as a terminal would show it."""
        return self.project / f"make-run{'-'.join(('', *self.arguments))}.out"

    @property
    def rasa_url(self) -> str:
        return f"http://localhost:{PORTS['rasa']}"

    @property
    def widget_url(self) -> str:
        return f"http://localhost:{PORTS['widget']}/"

    @property
    def secrets(self) -> Dict[str, str]:
        """What `make run` generated, as .run/secrets.env keeps it."""
        lines = (self.project / ".run" / secrets.SECRETS_FILE).read_text().splitlines()
        return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))

    def start(self, timeout_s: float = 1200) -> None:
        ports = {**PORTS, **(REPLICA_PORTS if self.arguments else {})}
        taken = [f"{name} ({port})" for name, port in ports.items() if listening(port)]
        assert not taken, f"make run needs these ports of the shipped files, but they are in use: {', '.join(taken)}"
        with open(self.output, "w") as out:
            self.process = subprocess.Popen(
                ["make", "run", *self.arguments],
                cwd=self.project,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout_s
        while READY not in self.output.read_text():
            assert self.process.poll() is None, f"make run {' '.join(self.arguments)} exited:\n{self.tail()}"
            assert time.monotonic() < deadline, f"make run not ready in {timeout_s} s:\n{self.tail()}"
            time.sleep(1)

    def stop(self) -> None:
        if self.process is None:
            return
        os.killpg(self.process.pid, signal.SIGINT)  # what Ctrl-C in the terminal sends
        try:
            self.process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        finally:
            self.process = None
        deadline = time.monotonic() + 60
        ports = {**PORTS, **(REPLICA_PORTS if self.arguments else {})}
        while any(listening(port) for port in ports.values()):
            assert time.monotonic() < deadline, f"the bot's ports still answer a minute after Ctrl-C:\n{self.tail()}"
            time.sleep(0.5)

    def tail(self, characters: int = 4000) -> str:
        return self.output.read_text()[-characters:]

    def logs(self) -> List[Path]:
        return sorted((self.project / ".run").glob("*.log"))

    def mark(self) -> LogMark:
        return {log: log.stat().st_size for log in self.logs()}

    def trouble_since(self, mark: LogMark, expected: Sequence[str] = ()) -> List[str]:
        """The log lines since `mark` that say ERROR, Traceback or Refused, less those matching one of
        the `expected` patterns (what the test caused)."""
        found = []
        for log in self.logs():
            with open(log, "rb") as file:
                file.seek(mark.get(log, 0))
                new = file.read().decode(errors="replace")
            found += [
                f"{log.name}: {line}"
                for line in new.splitlines()
                if TROUBLE.search(line) and not any(re.search(pattern, line) for pattern in expected)
            ]
        return found


def running(bot: ShippedBot) -> Iterator[ShippedBot]:
    """`bot` started, and stopped however the tests end."""
    try:
        bot.start()
        yield bot
    finally:
        bot.stop()

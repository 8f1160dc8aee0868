"""The bot as `python -m bot run` starts it, in a project directory of its own, on free ports.

`make loadtest` runs it on a throw-away copy of this project (its newest trained model included).
One replica is the plain `make run` (conversation log in SQLite); more are the multi-replica stack
(bot/replicas.py) with PostgreSQL.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator

import yaml

from bot import secrets, services
from bot.replicas import log_store_url
from bot.supervisor import tail

STARTED = "Press Ctrl-C"  # the banner's last line
START_TIMEOUT_S = 900.0


@dataclass
class Running:
    url: str  # where clients send messages: HAProxy, or the one Rasa
    log_url: str  # the conversation log's SQLAlchemy URL
    project: Path
    ports: Dict[str, int]
    process: subprocess.Popen
    log: Path

    def diagnosis(self, lines: int = 40) -> str:
        """Whether the stack still runs, and the end of its own log and of each service's: why a run failed."""
        state = "running" if self.process.poll() is None else f"exited with {self.process.returncode}"
        parts = [f"python -m bot run: {state}", tail(self.log, lines)]
        for path in sorted((self.project / ".run").glob("*.log")):
            parts += [f"--- {path.name}", tail(path, lines)]
        return "\n".join(parts)


@contextmanager
def running(project: Path, replicas: int, log: Path) -> Iterator[Running]:
    """Start the bot in `project` (whose models/ holds a trained model) and stop it on leaving."""
    names = ("rasa", "actions", "widget", "http", "grpc", "metrics", "postgres", "redis")
    ports = dict(zip(names, services.free_ports(len(names))))
    endpoints = yaml.safe_load((project / "endpoints.yml").read_text())
    endpoints["triton"] = {  # a Triton of its own, on a fresh model repository
        "url": f"localhost:{ports['grpc']}",
        "model_repository": "models/triton",
        "timeout": endpoints.get("triton", {}).get("timeout", 2.0),
        "http_port": ports["http"],
        "grpc_port": ports["grpc"],
        "metrics_port": ports["metrics"],
    }
    endpoints["action_endpoint"]["url"] = f"http://localhost:{ports['actions']}/webhook"
    (project / "endpoints.yml").write_text(yaml.safe_dump(endpoints, sort_keys=False))
    command = [sys.executable, "-m", "bot", "run", "--skip-train", "--replicas", str(replicas)]
    command += ["--port", str(ports["rasa"]), "--actions-port", str(ports["actions"])]
    command += ["--widget-port", str(ports["widget"]), "--action-workers", str(2 if replicas > 1 else 1)]
    postgres_dir = Path(tempfile.mkdtemp(prefix="loadtest-postgres-"))  # reachable by the `postgres` user
    command += ["--postgres-port", str(ports["postgres"]), "--postgres-dir", str(postgres_dir)]
    command += ["--redis-port", str(ports["redis"])]
    own = {key: value for key, value in os.environ.items() if key not in ("LOG_STORE_URL", "SHOP_DATABASE_URL")}
    tokens = secrets.load(project / ".run")
    with open(log, "w") as output:
        process = subprocess.Popen(
            command,
            cwd=project,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**own, **tokens, "RASA_TELEMETRY_ENABLED": "false"},  # what bot run would make
        )
    try:
        _wait_for_banner(process, log)
        password = tokens[secrets.POSTGRES_PASSWORD]
        log_url = (
            log_store_url(ports["postgres"], password)
            if replicas > 1
            else f"sqlite:///{project / 'logs' / 'conversations.db'}"
        )
        yield Running(f"http://127.0.0.1:{ports['rasa']}", log_url, project, ports, process, log)
    finally:
        stop(process)
        shutil.rmtree(postgres_dir, ignore_errors=True)


def stop(process: subprocess.Popen, timeout_s: float = 90.0) -> int:
    """Ctrl-C, as in the terminal, then SIGTERM, which also makes the bot stop its services: each has
    `timeout_s`. SIGKILL (of the bot alone: each service has a process group of its own) only if both
    fail. The exit code."""
    for sig, wait_s in ((signal.SIGINT, timeout_s), (signal.SIGTERM, timeout_s), (signal.SIGKILL, None)):
        if process.poll() is not None:
            break
        os.killpg(process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=wait_s)
    return process.returncode


def _wait_for_banner(process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while STARTED not in log.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the bot did not start; the end of {log}:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(1)

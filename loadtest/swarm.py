"""One Locust run (headless, in a process of its own: Locust patches the standard library with gevent)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Tuple

from loadtest.ledger import Ledger

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Swarm:
    ledger: Ledger
    stats: List[Dict[str, str]]  # Locust's final stats, a row per request name and "Aggregated"
    history: List[Dict[str, str]]  # its stats every second (the "Aggregated" rows)
    log: str


def run(
    url: str,
    users: int,
    messages: int,
    out_dir: Path,
    spawn_rate: float = 10.0,
    socketio_share: float = 0.2,
    think_time_s: Tuple[float, float] = (0.0, 0.0),
) -> Swarm:
    """`users` conversations of `messages` messages at `url`, `socketio_share` of them over socket.io,
    each customer pausing `think_time_s` (a range) between an answer and its next message."""
    out_dir.mkdir(parents=True, exist_ok=True)
    ledger_path, prefix = out_dir / "ledger.json", out_dir / "locust"
    socketio_weight = round(100 * socketio_share)
    env = {
        **os.environ,
        "LOADTEST_LEDGER": str(ledger_path),
        "LOADTEST_MESSAGES": str(messages),
        "LOADTEST_REST_WEIGHT": str(100 - socketio_weight),
        "LOADTEST_SOCKETIO_WEIGHT": str(socketio_weight),
        "LOADTEST_THINK_TIME": ",".join(str(s) for s in think_time_s),
        "PYTHONPATH": str(REPO_ROOT),
    }
    classes = ["RestConversation"] + (["SocketIOChat"] if socketio_weight else [])
    timeout_s = round(
        120 + (3 * users + think_time_s[1]) * messages
    )  # a bound, not a target: it ends when all are done
    command = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), *classes, "--headless", "--host", url,
        "--users", str(users), "--spawn-rate", str(spawn_rate), "--run-time", f"{timeout_s}s",
        "--csv", str(prefix), "--csv-full-history", "--only-summary", "--loglevel", "WARNING",
        "--exit-code-on-error", "0",
    ]  # fmt: skip
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout_s + 60)
    log = result.stdout + result.stderr
    if result.returncode != 0 or not ledger_path.exists():
        raise RuntimeError(f"Locust failed ({result.returncode}):\n{log[-4000:]}")
    return Swarm(
        Ledger.load(ledger_path),
        _rows(Path(f"{prefix}_stats.csv")),
        [row for row in _rows(Path(f"{prefix}_stats_history.csv")) if row["Name"] == "Aggregated"],
        log,
    )


def _rows(path: Path) -> List[Dict[str, str]]:
    with open(path, newline="") as file:
        return list(csv.DictReader(file))

"""Redis for Rasa's RedisLockStore: one conversation is handled by one replica at a time.

Debian's `redis-server` in the foreground, on loopback, with a password and no persistence (locks
live seconds; nothing in it must outlive a restart). The password goes into a config file only its
owner reads, not onto the command line, where `ps` would show it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import redis

from bot.supervisor import Service


class RedisMissing(RuntimeError):
    """Debian's redis-server is not installed."""


def service(port: int, password: str, run_dir: Path) -> Service:
    """`redis-server <run_dir>/redis.conf`, ready once it answers PING with the password."""
    program = shutil.which("redis-server")
    if program is None:
        raise RedisMissing(
            "redis-server is not installed: run scripts/system-deps.sh (make does) or apt-get install redis-server"
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    config = run_dir / "redis.conf"
    descriptor = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(
            f"bind 127.0.0.1\nport {port}\nrequirepass {password}\nprotected-mode yes\n"
            f'save ""\nappendonly no\ndaemonize no\ndir {run_dir}\n'
        )
    return Service("redis", [program, str(config)], f"redis://127.0.0.1:{port}", probe=lambda: _answers(port, password))


def _answers(port: int, password: str) -> bool:
    try:
        return bool(redis.Redis(host="127.0.0.1", port=port, password=password, socket_timeout=2).ping())
    except redis.RedisError:
        return False

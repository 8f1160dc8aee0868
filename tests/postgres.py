"""A throw-away PostgreSQL server for the log-store tests, from Debian's packages.

PostgreSQL refuses to run as root, so as root its data directory belongs to the `postgres` user
and every server command runs as that user; otherwise the commands run as ourselves.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import List


class PostgresMissing(RuntimeError):
    """PostgreSQL's server programs are not installed."""


def _bin_dir() -> Path:
    """The newest /usr/lib/postgresql/<version>/bin that has initdb."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if not found:
        raise PostgresMissing(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): run scripts/system-deps.sh "
            "(make test does) or apt-get install postgresql"
        )
    return Path(found[-1]).parent


class PostgresServer:
    """initdb + pg_ctl on a free port; the data directory and socket live in one temp directory."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.bin = _bin_dir()
        self.base = Path(tempfile.mkdtemp(prefix="log-store-pg-"))  # not under pytest's root-only tmp
        self.data = self.base / "data"
        self.as_postgres = os.geteuid() == 0

    def start(self) -> "PostgresServer":
        if self.as_postgres:
            shutil.chown(self.base, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8")
        self._serve()
        return self

    def restart(self) -> None:
        """Stop the server, which ends every client's connection, and start it again on the same data."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        self._serve()

    def database(self, name: str) -> str:
        """Create an empty database; its SQLAlchemy URL."""
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.base, ignore_errors=True)

    def _serve(self) -> None:
        options = f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.base / "server.log"), "-w", "start")

    def _run(self, program: str, *args: str) -> None:
        command: List[str] = [str(self.bin / program), *args]
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, cwd=self.base, timeout=120)
        if result.returncode != 0:
            log = self.base / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{program} failed ({result.returncode}): {result.stdout}{result.stderr}{tail}")

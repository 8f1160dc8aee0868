"""A PostgreSQL cluster of Debian's server programs in a directory of its own, on a loopback port.

The multi-replica stack runs it in the foreground under the supervisor (`service()`); the tests start
and stop it with pg_ctl. PostgreSQL refuses to run as root, so as root the directory belongs to the
`postgres` user and every server command runs as that user; otherwise the commands run as ourselves.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import List, Optional

from bot.supervisor import Service

SUPERUSER = "postgres"


class PostgresMissing(RuntimeError):
    """PostgreSQL's server programs are not installed."""


def _bin_dir() -> Path:
    """The newest /usr/lib/postgresql/<version>/bin that has initdb."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if not found:
        raise PostgresMissing(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): run scripts/system-deps.sh "
            "(make run and make test do) or apt-get install postgresql"
        )
    return Path(found[-1]).parent


class Postgres:
    """The cluster in `base` (its data/ and socket), listening on 127.0.0.1:`port`.

    With a `password` every connection must give it (scram-sha-256); without, loopback is trusted,
    as the throw-away servers of the tests are. `durable=False` skips fsync: for tests only.
    """

    def __init__(self, port: int, base: Optional[Path] = None, password: Optional[str] = None, durable: bool = True):
        self.port = port
        self.bin = _bin_dir()
        self.base = base or Path(tempfile.mkdtemp(prefix="postgres-"))  # not under pytest's root-only tmp
        self.data = self.base / "data"
        self.password = password
        self.durable = durable
        self.as_postgres = os.geteuid() == 0

    def init(self) -> "Postgres":
        """Create the cluster unless it exists (its data survives restarts)."""
        self.base.mkdir(parents=True, exist_ok=True)
        if self.as_postgres:
            shutil.chown(self.base, SUPERUSER, SUPERUSER)
            if subprocess.run(["runuser", "-u", SUPERUSER, "--", "test", "-x", str(self.base)]).returncode != 0:
                raise PermissionError(
                    f"PostgreSQL runs as the user '{SUPERUSER}', who cannot reach {self.base}: a folder above it is "
                    "closed to other users. Choose a data directory it can reach (--postgres-dir)."
                )
        if (self.data / "PG_VERSION").exists():
            return self
        auth = ["-A", "trust"]
        if self.password:
            password_file = self.base / "initdb.password"
            password_file.write_text(self.password + "\n")
            if self.as_postgres:
                shutil.chown(password_file, SUPERUSER, SUPERUSER)
            auth = ["-A", "scram-sha-256", f"--pwfile={password_file}"]
        try:
            self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, *auth, "--no-sync", "-E", "UTF8")
        finally:
            (self.base / "initdb.password").unlink(missing_ok=True)
        return self

    def service(self) -> Service:
        """`postgres` in the foreground, as the supervisor runs it; SIGINT is its fast shutdown, which ends
        the clients' sessions cleanly instead of waiting for them."""
        return Service(
            "postgres",
            [str(self.bin / "postgres"), "-D", str(self.data), *self._options()],
            f"postgresql://127.0.0.1:{self.port}",
            probe=self.accepts_connections,
            cwd=self.base,  # a directory its user may enter (the project's may be closed to it)
            user=SUPERUSER if self.as_postgres else None,
            stop_signal=signal.SIGINT,
        )

    def accepts_connections(self) -> bool:
        return subprocess.run([str(self.bin / "pg_isready"), "-q", *self._client_args()], timeout=10).returncode == 0

    def start(self) -> "Postgres":
        """Init and start in the background with pg_ctl (the tests' way; `stop()` ends it)."""
        self.init()
        self._serve()
        return self

    def restart(self) -> None:
        """Stop the server, which ends every client's connection, and start it again on the same data."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        self._serve()

    def stop(self) -> None:
        """Stop the pg_ctl server and delete the cluster."""
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.base, ignore_errors=True)

    def database(self, name: str) -> str:
        """Create the database unless it exists; its SQLAlchemy URL (with the password)."""
        exists = self._run(
            "psql",
            *self._client_args(),
            "-d",
            "postgres",
            "-tAc",
            f"SELECT 1 FROM pg_database WHERE datname = '{name}'",
        )
        if exists.strip() != "1":
            self._run("createdb", *self._client_args(), name)
        return self.url(name)

    def url(self, name: str) -> str:
        secret = f":{self.password}" if self.password else ""
        return f"postgresql://{SUPERUSER}{secret}@127.0.0.1:{self.port}/{name}"

    def _options(self) -> List[str]:
        options = ["-p", str(self.port), "-k", str(self.base), "-c", "listen_addresses=127.0.0.1"]
        return options + ([] if self.durable else ["-c", "fsync=off"])

    def _serve(self) -> None:
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-o",
            " ".join(self._options()),
            "-l",
            str(self.base / "server.log"),
            "-w",
            "start",
        )

    def _client_args(self) -> List[str]:
        return ["-h", "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER]

    def _as_owner(self, command: List[str]) -> List[str]:
        return ["runuser", "-u", SUPERUSER, "--", *command] if self.as_postgres else command

    def _run(self, program: str, *args: str) -> str:
        env = {**os.environ, **({"PGPASSWORD": self.password} if self.password else {})}
        result = subprocess.run(
            self._as_owner([str(self.bin / program), *args]),
            capture_output=True,
            text=True,
            cwd=self.base,
            env=env,
            timeout=120,
        )
        if result.returncode != 0:
            log = self.base / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{program} failed ({result.returncode}): {result.stdout}{result.stderr}{tail}")
        return result.stdout

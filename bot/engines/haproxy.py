"""HAProxy in front of the Rasa replicas: one address for REST, socket.io and the channels' webhooks.

Any replica may answer any REST message (the Redis lock store orders a conversation's messages), so
requests go round-robin to the least busy replica. A socket.io session lives in the replica that
opened it, so HAProxy's cookie keeps a browser on that replica (sticky sessions); clients without
cookies (REST, webhooks) are not pinned.

Health checks are TCP connects, not HTTP: a Rasa replica answers HTTP on the event loop that also runs
NLU, so under load an HTTP check waits behind the messages and would take busy replicas out (and with
all of them out, every request gets a 503). A replica listens only once its model is loaded and stops
listening when it dies, which is what the check needs to know. A connection a replica refuses is
retried on another one (`option redispatch`): it never reached Rasa, so nothing is sent twice.
"""

from __future__ import annotations

import csv
import io
import shutil
import socket
from pathlib import Path
from typing import Dict, Sequence

from bot.supervisor import Service

STICKY_COOKIE = "RASA_REPLICA"
# Our names for the columns of HAProxy's `show stat` that tell how a replica fared under load.
STAT_FIELDS = {
    "requests": "stot",
    "http_5xx": "hrsp_5xx",
    "connection_errors": "econ",
    "response_errors": "eresp",
    "retried_elsewhere": "wredis",
    "times_taken_out": "chkdown",
}


class HAProxyMissing(RuntimeError):
    """Debian's haproxy is not installed."""


def config_text(host: str, port: int, replicas: Sequence[int], stats_socket: Path) -> str:
    """haproxy.cfg: a frontend on host:port, the replicas on loopback `replicas` ports, and the
    statistics (requests per replica) on a Unix socket only its owner may use."""
    servers = "\n".join(
        f"    server rasa{i} 127.0.0.1:{replica} check cookie r{i}" for i, replica in enumerate(replicas, 1)
    )
    return f"""global
    maxconn 4096
    stats socket {stats_socket} mode 600 level user

defaults
    mode http
    timeout connect 5s
    timeout client 120s
    timeout server 120s
    timeout tunnel 1h
    option http-server-close
    retries 3
    option redispatch

frontend rasa
    bind {host}:{port}
    default_backend replicas

backend replicas
    balance leastconn
    cookie {STICKY_COOKIE} insert indirect nocache httponly
{servers}
"""


def stats_socket(run_dir: Path) -> Path:
    return run_dir.resolve() / "haproxy.sock"  # HAProxy reads a relative path as host:port


def replica_stats(run_dir: Path) -> Dict[str, Dict[str, int]]:
    """Per replica (`show stat` on the stats socket): requests it was sent, its 5xx answers, the
    connections it refused or dropped, requests retried elsewhere, and how often it was taken out."""
    with socket.socket(socket.AF_UNIX) as connection:
        connection.connect(str(stats_socket(run_dir)))
        connection.sendall(b"show stat\n")
        data = b"".join(iter(lambda: connection.recv(65536), b""))
    rows = csv.DictReader(io.StringIO(data.decode().lstrip("# ")))
    return {
        row["svname"]: {name: int(row[field] or 0) for name, field in STAT_FIELDS.items()}
        for row in rows
        if row["svname"] not in ("FRONTEND", "BACKEND")
    }


def executable() -> str:
    """Debian's haproxy (in /usr/sbin, which a user's PATH may lack)."""
    program = shutil.which("haproxy") or ("/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None)
    if program is None:
        raise HAProxyMissing(
            "haproxy is not installed: run scripts/system-deps.sh (make does) or apt-get install haproxy"
        )
    return program


def service(host: str, port: int, replicas: Sequence[int], run_dir: Path) -> Service:
    """`haproxy -db -f <run_dir>/haproxy.cfg`, ready once a replica answers through it."""
    program = executable()
    run_dir.mkdir(parents=True, exist_ok=True)
    config = run_dir / "haproxy.cfg"
    config.write_text(config_text(host, port, replicas, stats_socket(run_dir)))
    reachable = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return Service("haproxy", [program, "-db", "-f", str(config)], f"http://{reachable}:{port}/version")

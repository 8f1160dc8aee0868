"""HAProxy in front of the Rasa replicas: one address for REST, socket.io and the channels' webhooks.

Any replica may answer any REST message (the Redis lock store orders a conversation's messages), so
requests go round-robin to the least busy replica. A socket.io session lives in the replica that
opened it, so HAProxy's cookie keeps a browser on that replica (sticky sessions); clients without
cookies (REST, webhooks) are not pinned. Replicas that fail `/version` are taken out until they answer.
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

frontend rasa
    bind {host}:{port}
    default_backend replicas

backend replicas
    balance leastconn
    option httpchk GET /version
    cookie {STICKY_COOKIE} insert indirect nocache httponly
{servers}
"""


def stats_socket(run_dir: Path) -> Path:
    return run_dir.resolve() / "haproxy.sock"  # HAProxy reads a relative path as host:port


def requests_per_replica(run_dir: Path) -> Dict[str, int]:
    """Each replica's answered sessions so far (`show stat` on the stats socket): is the load spread?"""
    with socket.socket(socket.AF_UNIX) as connection:
        connection.connect(str(stats_socket(run_dir)))
        connection.sendall(b"show stat\n")
        data = b"".join(iter(lambda: connection.recv(65536), b""))
    rows = csv.DictReader(io.StringIO(data.decode().lstrip("# ")))
    return {row["svname"]: int(row["stot"]) for row in rows if row["svname"] not in ("FRONTEND", "BACKEND")}


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

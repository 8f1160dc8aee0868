"""Which addresses a port listens on, and which process: read from /proc, so that tests can prove a
service is reachable on loopback only."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Dict, Set


def _listeners(port: int) -> Dict[str, str]:
    """Socket inode -> local address of each TCP socket listening on `port` (/proc/net/tcp, tcp6)."""
    found = {}
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        with open(table) as file:
            for line in file.readlines()[1:]:
                fields = line.split()
                address, hex_port = fields[1].split(":")
                if fields[3] == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                    raw = bytes.fromhex(address)
                    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))  # little-endian words
                    found[fields[9]] = socket.inet_ntop(family, words)
    return found


def listening_addresses(port: int) -> Set[str]:
    """The local addresses sockets listen on at `port`."""
    return set(_listeners(port).values())


def listener_pid(port: int) -> int:
    """The pid of a process listening on `port`."""
    inodes = {f"socket:[{inode}]" for inode in _listeners(port)}
    for fd in Path("/proc").glob("[0-9]*/fd/*"):
        try:
            if os.readlink(fd) in inodes:
                return int(fd.parts[2])
        except OSError:
            continue
    raise LookupError(f"nothing listens on port {port}")


LOOPBACK = {"127.0.0.1", "::ffff:127.0.0.1", "::1"}

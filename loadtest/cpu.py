"""The CPU time each part of the stack spends during a load test: where a message's cost goes.

Throughput on two cores is their CPU time divided by the CPU time per message, so this says what
to make cheaper. The bot's services are the processes under `python -m bot run`; the load
generator is this process's children (Locust), counted once they have exited.
"""

from __future__ import annotations

import resource
from dataclasses import dataclass
from typing import Dict, List, Tuple

import psutil

# The first rule whose words all appear in a process's command line names its part.
PARTS = [
    ("Rasa", ("rasa", "run")),
    ("action server", ("-m", "actions")),
    ("Triton", ("bot", "triton")),
    ("Triton", ("tritonserver",)),
    ("Triton", ("triton_python_backend_stub",)),
    ("PostgreSQL", ("postgres",)),
    ("Redis", ("redis-server",)),
    ("HAProxy", ("haproxy",)),
    ("widget", ("bot", "widget")),
]
OTHER = "other"
LOAD_GENERATOR = "load generator (Locust)"


@dataclass(frozen=True)
class Snapshot:
    by_process: Dict[int, Tuple[str, float]]  # pid -> (part, CPU seconds so far)
    children_s: float  # CPU seconds of this process's exited children


def part_of(command_line: List[str]) -> str:
    """Which part of the stack a process with this command line is."""
    words = " ".join(command_line).replace("/", " ").replace(":", " ").split()
    for name, wanted in PARTS:
        if all(word in words for word in wanted):
            return name
    return OTHER


def snapshot(root_pid: int) -> Snapshot:
    """The CPU time of `root_pid` and every process under it, and of this process's exited children."""
    by_process = {}
    root = psutil.Process(root_pid)
    for process in [root, *root.children(recursive=True)]:
        try:
            with process.oneshot():
                times = process.cpu_times()
                by_process[process.pid] = (part_of(process.cmdline()), times.user + times.system)
        except psutil.Error:  # exited, or not ours to read
            continue
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return Snapshot(by_process, children.ru_utime + children.ru_stime)


def spent(before: Snapshot, after: Snapshot) -> Dict[str, float]:
    """CPU seconds by part between two snapshots, the load generator included. A process started in
    between (a PostgreSQL backend for a new connection) counts whole; one that ended in between is
    missed."""
    parts: Dict[str, float] = {}
    for pid, (part, seconds) in after.by_process.items():
        earlier = before.by_process[pid][1] if pid in before.by_process else 0.0
        parts[part] = parts.get(part, 0.0) + seconds - earlier
    parts[LOAD_GENERATOR] = after.children_s - before.children_s
    return parts

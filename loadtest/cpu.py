"""The CPU time each part of the stack spends during a load test: where a message's cost goes, and
what a slow stretch of the load coincided with.

Throughput on two cores is their CPU time divided by the CPU time per message, so this says what
to make cheaper. The bot's services are the processes under `python -m bot run`; the load
generator is this process's children (Locust), counted once they have exited. The timeline adds,
second by second, the cores the rest of the machine used and those the host took (steal).
"""

from __future__ import annotations

import os
import resource
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Tuple

import psutil

LOAD_GENERATOR = "load generator (Locust)"
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
    (LOAD_GENERATOR, ("-m", "locust")),
]
OTHER = "other"
OUTSIDE = "outside the test"  # every other process on the machine, and the kernel's own work
STOLEN = "taken by the host"  # steal time: a virtual CPU ready to run while the host ran something else


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
    """CPU seconds by part between two snapshots, the load generator's exited processes included."""
    parts = _live(before, after)
    parts[LOAD_GENERATOR] = parts.get(LOAD_GENERATOR, 0.0) + after.children_s - before.children_s
    return parts


def _live(before: Snapshot, after: Snapshot) -> Dict[str, float]:
    """CPU seconds by part of the processes alive at `after`: one started in between (a PostgreSQL
    backend for a new connection) counts whole; one that ended in between is missed."""
    parts: Dict[str, float] = {}
    for pid, (part, seconds) in after.by_process.items():
        earlier = before.by_process[pid][1] if pid in before.by_process else 0.0
        parts[part] = parts.get(part, 0.0) + seconds - earlier
    return parts


@dataclass
class Timeline:
    """Cores busy each second, by part of the stack (this process and its children), by the rest of the
    machine (OUTSIDE) and taken by the host (STOLEN), sampled in a thread while the context is open."""

    interval_s: float = 1.0
    samples: List[Tuple[float, Dict[str, float]]] = field(default_factory=list)  # (Unix time, part -> cores)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> "Timeline":
        self._thread = threading.Thread(target=self._sample, name="cpu timeline", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        before, machine_before, at_before = snapshot(os.getpid()), psutil.cpu_times(), time.monotonic()
        while not self._stop.wait(self.interval_s):
            after, machine_after, at = snapshot(os.getpid()), psutil.cpu_times(), time.monotonic()
            seconds = at - at_before
            cores = {part: used / seconds for part, used in _live(before, after).items()}
            busy = _busy(machine_after) - _busy(machine_before)
            cores[OUTSIDE] = max(busy / seconds - sum(cores.values()), 0.0)
            cores[STOLEN] = (machine_after.steal - machine_before.steal) / seconds
            self.samples.append((time.time(), cores))
            before, machine_before, at_before = after, machine_after, at


def _busy(times: Any) -> float:
    """CPU seconds the machine's cores spent running something, since boot."""
    return times.user + times.nice + times.system + times.irq + times.softirq

"""The load test's CPU accounting (loadtest/cpu.py): each service's processes named by their real
command lines, and CPU time counted between two snapshots."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil
import pytest

from bot import services
from bot.engines import haproxy, redis
from bot.engines.postgres import Postgres
from loadtest import cpu


@pytest.mark.parametrize(
    "command, part",
    [
        (services.rasa(5005, "token").command, "Rasa"),
        (services.actions(5055).command, "action server"),
        (services.triton(8000, 8001, 8002).command, "Triton"),
        (["/opt/pytriton/tritonserver/bin/tritonserver", "--model-repository", "models/triton"], "Triton"),
        (["/opt/pytriton/tritonserver/backends/python/triton_python_backend_stub", "models/x"], "Triton"),
        (services.widget(8080, "http://localhost:5005").command, "widget"),
        ([sys.executable, "-m", "bot", "run", "--replicas", "3", "--postgres-port", "5433"], cpu.OTHER),
        (["postgres: checkpointer"], "PostgreSQL"),
    ],
)
def test_each_service_is_named_by_its_command_line(command, part):
    assert cpu.part_of([str(word) for word in command]) == part


def test_the_engines_command_lines_are_named(tmp_path):
    assert cpu.part_of(Postgres(5433, base=tmp_path).service().command) == "PostgreSQL"
    assert cpu.part_of(redis.service(6380, "pw", tmp_path).command) == "Redis"
    assert cpu.part_of(haproxy.service("127.0.0.1", 5005, [5006], tmp_path).command) == "HAProxy"


# The kernel counts CPU time in clock ticks, and each snapshot may land mid-tick.
TICK = 1 / os.sysconf("SC_CLK_TCK")


def test_cpu_between_snapshots_counts_the_tree_new_processes_whole_and_exited_children():
    burn = "import sys, time\nt = time.process_time() + 0.3\nwhile time.process_time() < t: pass\nsys.stdin.read()"
    before = cpu.snapshot(os.getpid())
    deadline = time.process_time() + 0.3
    while time.process_time() < deadline:  # this process works
        pass
    subprocess.run([sys.executable, "-c", burn], input="", text=True)  # exited: the load generator's share
    started = subprocess.Popen([sys.executable, "-c", burn], stdin=subprocess.PIPE)  # new and running: counts whole
    while sum(psutil.Process(started.pid).cpu_times()[:2]) < 0.29:
        time.sleep(0.05)
    spent = cpu.spent(before, cpu.snapshot(os.getpid()))
    started.communicate()
    assert spent[cpu.OTHER] >= 0.3 + 0.29 - 2 * TICK
    assert spent[cpu.LOAD_GENERATOR] >= 0.3 - TICK


def test_timeline_tells_the_tests_own_cores_from_the_rest_of_the_machine():
    burn = "import time\nt = time.process_time() + 1.0\nwhile time.process_time() < t: pass"
    with cpu.Timeline(interval_s=0.25) as timeline:
        subprocess.run([sys.executable, "-c", burn])  # a child of this process: the test's own
        ours = len(timeline.samples)
        # Its shell exits at once, so the burner is nobody's child here: the rest of the machine.
        subprocess.run(["sh", "-c", f"{sys.executable} -c '{burn}' > /dev/null 2>&1 &"])
        time.sleep(1.5)
    first, second = timeline.samples[:ours], timeline.samples[ours + 1 :]
    assert max(cores[cpu.OTHER] for _, cores in first) > 0.5
    assert max(cores[cpu.OUTSIDE] for _, cores in second) > 0.5
    assert max(cores[cpu.OTHER] for _, cores in second) < 0.3
    assert all(cores[cpu.STOLEN] >= 0 for _, cores in timeline.samples)

"""`python -m bot run --replicas 3` (`make run REPLICAS=3`) on real engines: HAProxy in front of three
Rasa processes, a Redis lock store, PostgreSQL for the conversation log and the shop, a Triton of
the stack's own and an action server with two workers.

50 conversations at once through HAProxy, each a real flow (Locust, loadtest/): every message and
every answer is in PostgreSQL exactly once, in order, and the load was spread over the replicas.
Ctrl-C stops it all.
"""

from __future__ import annotations

import time
from typing import Iterator

import pytest

from bot.engines import haproxy
from loadtest.ledger import audit
from loadtest.stack import Running, running, stop
from loadtest.swarm import run as run_swarm
from tests.conftest import copy_project
from tests.test_run import listening

REPLICAS = 3
CONVERSATIONS = 50
MESSAGES = 10  # of loadtest/script.py: greeting, order status, FAQ, refund status, the start of a cancellation


@pytest.fixture(scope="module")
def stack(tmp_path_factory, trained_bot) -> Iterator[Running]:
    base = tmp_path_factory.mktemp("replicas")
    project = copy_project(trained_bot, base / "project")
    with running(project, REPLICAS, base / "run.log") as started:
        yield started


def test_fifty_conversations_at_once_lose_and_duplicate_no_event(stack, tmp_path):
    """Locust: 50 customers at once, most over REST (any replica may answer each message), some in
    the widget's socket.io chat (HAProxy keeps each on its replica)."""
    swarm = run_swarm(stack.url, users=CONVERSATIONS, messages=MESSAGES, out_dir=tmp_path, spawn_rate=25)
    result = audit(swarm.ledger, stack.log_url)
    assert result.conversations == CONVERSATIONS, swarm.log[-3000:]
    assert (result.errors, result.lost, result.duplicated, result.out_of_order) == (0, 0, 0, 0), result
    assert result.events_stored == result.events_expected >= CONVERSATIONS * MESSAGES * 2
    kinds = {cid.split(":")[0] for cid in swarm.ledger.conversations}
    assert kinds == {"rest", "socketio"}, kinds
    spread = haproxy.requests_per_replica(stack.project / ".run" / "haproxy")
    assert len(spread) == REPLICAS and all(count > 0 for count in spread.values()), spread


def test_ctrl_c_stops_every_engine(stack):
    assert stop(stack.process) == 0, stack.log.read_text()[-3000:]
    time.sleep(1)
    assert not [name for name, port in stack.ports.items() if listening(port)]

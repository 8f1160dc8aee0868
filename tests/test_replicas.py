"""`python -m bot run --replicas 3` (`make run REPLICAS=3`) on real engines: HAProxy in front of three
Rasa processes, a Redis lock store, PostgreSQL for the conversation log and the shop, a Triton of
the stack's own and an action server with two workers.

50 conversations at once through HAProxy, each a real flow (Locust, loadtest/): every message and
every answer is in PostgreSQL exactly once, in order, and the load was spread over the replicas.
Then Ctrl-C stops it all. One test, as the stack takes minutes to start and Ctrl-C ends it.
"""

from __future__ import annotations

import time

from bot.engines import haproxy
from loadtest.ledger import audit
from loadtest.stack import running, stop
from loadtest.swarm import run as run_swarm
from tests.conftest import copy_project
from tests.test_run import listening

REPLICAS = 3
CONVERSATIONS = 50
MESSAGES = 10  # of loadtest/script.py: greeting, order status, FAQ, refund status, the start of a cancellation


def test_fifty_conversations_at_once_lose_no_event_and_ctrl_c_stops_every_engine(trained_bot, tmp_path):
    """Locust: 50 customers at once, most over REST (any replica may answer each message), some in
    the widget's socket.io chat (HAProxy keeps each on its replica)."""
    project = copy_project(trained_bot, tmp_path / "project")
    with running(project, REPLICAS, tmp_path / "run.log") as stack:
        swarm = run_swarm(stack.url, CONVERSATIONS, MESSAGES, tmp_path / "locust", spawn_rate=25)
        assert stack.process.poll() is None, stack.diagnosis()
        result = audit(swarm.ledger, stack.log_url)
        replicas = haproxy.replica_stats(project / ".run" / "haproxy")

        assert result.conversations == CONVERSATIONS, swarm.log[-3000:]
        assert (result.errors, result.apologies, result.lost, result.duplicated, result.out_of_order) == (0,) * 5, (
            result,
            stack.diagnosis(),
        )
        assert result.events_stored == result.events_expected >= CONVERSATIONS * MESSAGES * 2
        kinds = {cid.split(":")[0] for cid in swarm.ledger.conversations}
        assert kinds == {"rest", "socketio"}, kinds
        assert len(replicas) == REPLICAS and all(stats["requests"] > 0 for stats in replicas.values()), replicas

        assert stop(stack.process) == 0, stack.diagnosis()
        time.sleep(1)
        assert not [name for name, port in stack.ports.items() if listening(port)]

"""The shipped path with `make run REPLICAS=3`: three Rasa processes behind HAProxy, PostgreSQL and a
Redis lock store, on the same copy of the checkout as tests/test_shipped_bot.py (no second training).
A customer's conversations over REST and in the widget, checked in the shop's PostgreSQL database;
50 conversations at once (Locust, loadtest/) with every message and answer in PostgreSQL exactly once,
in order, spread over the replicas; and Ctrl-C stops every engine (ShippedBot.stop)."""

from __future__ import annotations

from typing import Iterator

import pytest
from playwright.sync_api import expect

from bot import replicas, secrets
from bot.engines import haproxy
from loadtest.ledger import audit
from loadtest.swarm import run as run_swarm
from tests.shipped import REPLICA_PORTS, ShippedBot, customer_environment, running
from tests.test_flows import (
    CANCELLED_100234,
    JANE,
    MIKE,
    email_question,
    order,
    rows_after_cancelling_100234,
    shipped_answer,
    shop_rows,
)
from tests.test_shipped_bot import Customer, text
from tests.test_widget import open_chat, send


@pytest.fixture(scope="module")
def three_replicas(shipped_project) -> Iterator[ShippedBot]:
    yield from running(ShippedBot(shipped_project, customer_environment(), ("REPLICAS=3",)))


REPLICAS = 3
CONVERSATIONS = 50
MESSAGES = 10  # of loadtest/script.py: greeting, order status, FAQ, refund status, the start of a cancellation


def shop(bot: ShippedBot) -> str:
    """The shop's PostgreSQL database, with the password `make run` generated."""
    return replicas.log_store_url(
        REPLICA_PORTS["postgres"], bot.secrets[secrets.POSTGRES_PASSWORD], replicas.SHOP_DATABASE
    )


def test_flows_through_three_replicas(three_replicas):
    mark, url = three_replicas.mark(), shop(three_replicas)
    before = shop_rows(url)
    status = Customer(three_replicas)
    shipped = order(url, "98765")
    assert status("where is my order 98765?") == [email_question("98765")]
    assert status(MIKE) == [shipped_answer(shipped, "laptop stand")]
    cancel = Customer(three_replicas)
    assert cancel("cancel order 100234") == [email_question("100234")]
    assert cancel(JANE) == [text("utter_ask_confirm_cancel", order_id="100234")]
    assert cancel("yes") == [CANCELLED_100234]
    assert shop_rows(url) == rows_after_cancelling_100234(before)
    assert three_replicas.trouble_since(mark) == []


def test_the_widget_through_the_load_balancer(three_replicas, browser):
    mark = three_replicas.mark()
    page = open_chat(browser, three_replicas.widget_url)
    send(page, "where is my order 12345?")
    expect(page.locator(".message.bot").last).to_have_text(email_question("12345"))
    send(page, JANE)
    shipped = order(shop(three_replicas), "12345")
    expect(page.locator(".message.bot").last).to_have_text(shipped_answer(shipped, "wireless headphones"))
    assert three_replicas.trouble_since(mark) == []


def test_fifty_conversations_at_once_lose_no_event(three_replicas, tmp_path):
    """Locust: 50 customers at once, most over REST (any replica may answer each message), some in
    the widget's socket.io chat (HAProxy keeps each on its replica)."""
    mark = three_replicas.mark()
    swarm = run_swarm(three_replicas.rasa_url, CONVERSATIONS, MESSAGES, tmp_path / "locust", spawn_rate=25)
    log = replicas.log_store_url(REPLICA_PORTS["postgres"], three_replicas.secrets[secrets.POSTGRES_PASSWORD])
    result = audit(swarm.ledger, log)
    served = haproxy.replica_stats(three_replicas.project / ".run" / "haproxy")

    assert result.conversations == CONVERSATIONS, swarm.log[-3000:]
    assert (result.errors, result.apologies, result.lost, result.duplicated, result.out_of_order) == (0,) * 5, (
        result,
        three_replicas.tail(),
    )
    assert result.events_stored == result.events_expected >= CONVERSATIONS * MESSAGES * 2
    assert {cid.split(":")[0] for cid in swarm.ledger.conversations} == {"rest", "socketio"}
    assert len(served) == REPLICAS and all(stats["requests"] > 0 for stats in served.values()), served
    assert three_replicas.trouble_since(mark) == []

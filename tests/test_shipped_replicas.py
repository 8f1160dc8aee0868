"""The shipped path with `make run REPLICAS=3`: three Rasa processes behind HAProxy, PostgreSQL and a
Redis lock store, on the same copy of the checkout as tests/test_shipped_bot.py (no second training).
A customer's conversations over REST and in the widget, checked in the shop's PostgreSQL database."""

from __future__ import annotations

from typing import Iterator

import pytest
from playwright.sync_api import expect

from bot import replicas, secrets
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

"""Every order flow of the support assistant through the REST channel, with the real NLU, dialogue,
form validators, action server and shop database (SQLite, reset to actions/seed.yml per test).

`rasa test core` runs no custom action, so the test stories in tests/conversations/ cannot tell
whether a validator rejects an answer or ends a form early. Here each refusal and each success is
checked twice: in what the customer reads (the action's messages, filled with the order's values
from the database) and in the rows the conversation left behind (changed exactly as described, or
not at all).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import pytest
from sqlalchemy import select

from actions import db
from actions.models import Order, Refund, Return, Ticket
from tests.bot_texts import text
from tests.conftest import Servers
from tests.test_bot import say

JANE, MIKE, AMIRA = "jane.doe@example.com", "mike.chen@example.com", "amira@example.org"


@dataclass
class Conversation:
    """One customer's conversation over the REST channel, under a sender id of its own."""

    servers: Servers
    sender: str = field(default_factory=lambda: f"flows-{uuid.uuid4().hex}")

    def __call__(self, text: str) -> List[str]:
        """The bot's answers to `text`."""
        return say(self.servers, self.sender, text)

    @property
    def conversation_id(self) -> str:
        """The REST channel's name for this conversation: what tickets and trackers record."""
        return f"rest:{self.sender}"


@pytest.fixture
def chat(bot_servers) -> Conversation:
    return Conversation(bot_servers)


def shop_rows(url: str) -> Dict[str, Any]:
    """What a conversation may change in the shop, as plain values to compare."""
    with db.transaction(url) as session:
        return {
            "orders": {o.number: (o.status, o.shipping_address) for o in session.scalars(select(Order))},
            "returns": [
                (r.order_number, r.item.product, r.reason, r.reference) for r in session.scalars(select(Return))
            ],
            "refunds": [(r.order_number, r.amount_cents, r.status) for r in session.scalars(select(Refund))],
            "tickets": [(t.conversation_id, t.reference) for t in session.scalars(select(Ticket))],
        }


def order(url: str, number: str) -> Order:
    with db.transaction(url) as session:
        return session.get(Order, number)


def email_question(number: str) -> str:
    return text("utter_ask_email", order_id=number)


def shipped_answer(shipped: Order, items: str) -> str:
    """What a verified customer reads about a shipped order of `items`."""
    return (
        f"Order {shipped.number} ({items}) shipped on {shipped.shipped_on:%B %d} with {shipped.carrier}, tracking "
        f"number {shipped.tracking_number}. It should arrive by {shipped.expected_on:%A, %B %d}."
    )


# Order 100234 (Jane's, processing) cancelled after "yes": the answer, and the rows it changes.
CANCELLED_100234 = (
    "Done: order 100234 is cancelled. Your refund of $76.00 will reach your account within 5 business days."
)


def rows_after_cancelling_100234(before: Dict[str, Any]) -> Dict[str, Any]:
    """`before` (shop_rows) with order 100234 cancelled and its refund pending."""
    orders = {**before["orders"], "100234": ("cancelled", before["orders"]["100234"][1])}
    return {**before, "orders": orders, "refunds": [*before["refunds"], ("100234", 7600, "pending")]}


def test_an_unknown_order_number_is_asked_again_then_corrected(chat, shop):
    delivered = order(shop, "55821").delivered_on
    assert chat("order status please") == [text("utter_ask_order_id")]
    assert chat("77777") == [
        "I couldn't find an order with the number 77777. Please check the number in your order "
        f"confirmation email. {text('utter_ask_order_id')}"
    ]
    assert chat("sorry, I meant 55821") == [email_question("55821")]
    assert chat(MIKE) == [f"Order 55821 (toaster, electric kettle) was delivered on {delivered:%B %d}."]


def test_a_wrong_email_is_asked_again(chat, shop):
    expected = order(shop, "100234").expected_on
    assert chat("status of 100234") == [email_question("100234")]
    assert chat(MIKE) == [
        "That email address doesn't match the one on order 100234. Please use the email address "
        f"you ordered with. {email_question('100234')}"
    ]
    assert chat(JANE) == [
        f"Order 100234 (coffee maker, coffee mug) is being prepared and will ship soon; "
        f"expected delivery is {expected:%A, %B %d}."
    ]


def test_order_status_tells_carrier_and_tracking_from_the_database(chat, shop):
    shipped = order(shop, "12345")
    assert chat("where is my order 12345?") == [email_question("12345")]
    assert chat(JANE) == [shipped_answer(shipped, "wireless headphones")]


@pytest.mark.parametrize(
    "refund, told",
    [(None, ""), ((4500, "awaiting_return"), " Refunds: $45.00 awaiting return.")],
    ids=["without-refund", "with-refund"],
)
def test_refund_status_checks_the_order_and_tells_its_refunds(chat, shop, refund: Optional[Tuple[int, str]], told):
    if refund:
        with db.transaction(shop) as session:
            session.add(Refund(order_number="55821", amount_cents=refund[0], status=refund[1]))
    delivered = order(shop, "55821").delivered_on
    assert chat("where is my refund?") == [text("utter_ask_order_id")]
    assert chat("55821") == [email_question("55821")]
    assert chat(MIKE) == [f"Order 55821 (toaster, electric kettle) was delivered on {delivered:%B %d}.{told}"]


def test_cancel_after_confirming_cancels_once_with_a_refund(chat, shop):
    before = shop_rows(shop)
    assert chat("I want to cancel my order") == [text("utter_ask_order_id")]
    assert chat("100234") == [email_question("100234")]
    assert chat(JANE) == [text("utter_ask_confirm_cancel", order_id="100234")]
    assert chat("yes") == [CANCELLED_100234]
    cancelled = shop_rows(shop)
    assert cancelled == rows_after_cancelling_100234(before)
    assert chat("cancel order 100234") == ["Order 100234 is already cancelled; the refund of $76.00 is on its way."]
    assert shop_rows(shop) == cancelled


def test_a_declined_cancellation_changes_nothing(chat, shop):
    before = shop_rows(shop)
    assert chat("please cancel order 48213") == [email_question("48213")]
    assert chat(MIKE) == [text("utter_ask_confirm_cancel", order_id="48213")]
    assert chat("no, keep it") == ["Okay, I won't cancel anything. Your order stays as it is."]
    assert shop_rows(shop) == before


@pytest.mark.parametrize(
    "request_text, number, email, refusal",
    [
        pytest.param(
            "cancel order #12345",
            "12345",
            JANE,
            "Order 12345 has already shipped, so it can't be cancelled "
            "anymore. Once it arrives you can return it for a refund.",
            id="cancel-shipped",
        ),
        pytest.param(
            "start a return for order 31415",
            "31415",
            AMIRA,
            "Order 31415 was delivered on "
            "{order.delivered_on:%B %d, %Y}, more than 30 days ago, so it's outside our return window.",
            id="return-outside-window",
        ),
        pytest.param(
            "can I return order 100234?",
            "100234",
            JANE,
            "Order 100234 hasn't been delivered yet "
            "(processing), so it can't be returned yet. You can still cancel it instead.",
            id="return-not-delivered",
        ),
        pytest.param(
            "change address for 98765",
            "98765",
            MIKE,
            "Order 98765 has already shipped, so I can't change "
            "its address anymore. The carrier's tracking page may let you redirect the parcel.",
            id="address-shipped",
        ),
    ],
)
def test_a_request_the_order_does_not_allow_ends_after_the_email_and_changes_nothing(
    chat, shop, request_text, number, email, refusal
):
    before = shop_rows(shop)
    assert chat(request_text) == [email_question(number)]
    assert chat(email) == [refusal.format(order=order(shop, number))]
    assert shop_rows(shop) == before


def test_a_return_within_the_window_gets_one_reference_even_when_repeated(chat, shop):
    before = shop_rows(shop)
    assert chat("I want to return an item") == [text("utter_ask_order_id")]
    assert chat("55821") == [email_question("55821")]
    assert chat(MIKE) == [text("utter_ask_product", order_id="55821")]
    assert chat("the toaster") == [text("utter_ask_return_reason")]
    answer = chat("wrong size")
    returned = shop_rows(shop)
    [(_, _, _, reference)] = returned["returns"]
    assert re.fullmatch(r"RET-\d+", reference)
    before["returns"].append(("55821", "toaster", "wrong size", reference))
    before["refunds"].append(("55821", 4500, "awaiting_return"))
    assert returned == before
    assert answer == [
        f"Your return for the toaster is registered. Your return reference is {reference}. We'll email "
        f"a prepaid label to {MIKE}; your refund follows once the item is back with us."
    ]
    assert chat("I want to return the toaster from order 55821") == [text("utter_ask_return_reason")]
    assert chat("wrong size") == [f"A return for the toaster already exists: its reference is {reference}."]
    assert shop_rows(shop) == returned


def test_an_unshipped_order_gets_its_new_address(chat, shop):
    before = shop_rows(shop)
    new_address = "7 Oak Avenue, Portland, OR 97201"
    assert chat("I need to change my delivery address") == [text("utter_ask_order_id")]
    assert chat("order number 48213") == [email_question("48213")]
    assert chat(MIKE) == [text("utter_ask_new_address", order_id="48213")]
    assert chat(new_address) == [f"Order 48213 will now be delivered to: {new_address}."]
    before["orders"]["48213"] = ("processing", new_address)
    assert shop_rows(shop) == before


def test_a_handoff_opens_one_ticket_per_conversation(chat, shop):
    answer = chat("I want to talk to a human")
    tickets = shop_rows(shop)["tickets"]
    assert [conversation for conversation, _ in tickets] == [chat.conversation_id]
    assert answer == [
        f"I've handed your conversation to our support team: your ticket number is {tickets[0][1]}. "
        "A colleague will get back to you right here in this chat, usually within a few hours."
    ]
    assert re.fullmatch(r"TCK-\d+", tickets[0][1])
    assert chat("let me speak to a real person") == answer
    assert shop_rows(shop)["tickets"] == tickets

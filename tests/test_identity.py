"""Identities that cannot be claimed: every channel names its conversations `<channel>:<id>`, a
web chat session resumes only with the secret the server issued, a verified email counts only in
the conversation that verified it; and the REST and socket.io channels refuse malformed input
clearly (400 naming the field; dropped), on the real Rasa server of the suite."""

from __future__ import annotations

import asyncio
import re
from typing import Any, Dict, List, Optional

import httpx
import pytest
import socketio
import yaml
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select

from actions import db, forms, submissions, support
from actions.models import Ticket
from tests import bot_texts
from tests.conftest import RASA_TOKEN, ROOT
from tests.fake_telegram_api import message_update
from tests.test_bot import say
from tests.test_telegram import post, replies

DOMAIN = yaml.safe_load((ROOT / "domain.yml").read_text())
THANKS = DOMAIN["responses"]["utter_you_are_welcome"][0]["text"]
GOODBYE = DOMAIN["responses"]["utter_goodbye"][0]["text"]
JANE = "jane.doe@example.com"  # order 12345's customer (actions/seed.yml)


def tracker(servers, conversation: str) -> Dict[str, Any]:
    answer = httpx.get(
        f"{servers.rasa_url}/conversations/{conversation}/tracker", params={"token": RASA_TOKEN}, timeout=30
    )
    answer.raise_for_status()
    return answer.json()


def user_texts(servers, conversation: str) -> List[str]:
    return [event["text"] for event in tracker(servers, conversation)["events"] if event["event"] == "user"]


def tickets(shop_url: str) -> Dict[str, Optional[str]]:
    """Each ticket's conversation id and the email a colleague would write to."""
    with db.transaction(shop_url) as session:
        return {t.conversation_id: t.email for t in session.scalars(select(Ticket))}


# REST and Telegram -------------------------------------------------------------------------------


def test_a_rest_sender_named_like_a_telegram_chat_gets_a_conversation_of_its_own(bot_servers, fake_telegram, shop):
    """The attack this closes: a Telegram customer verifies their email and asks for a person; a REST
    caller who names their chat id as sender used to get that conversation, email included."""
    chat = 9_000_000 + fake_telegram.next_update_id()
    for text in ("where is my order 12345?", JANE, "I want to talk to a human"):
        assert post(bot_servers, message_update(fake_telegram.next_update_id(), chat, text)).status_code == 200
    handed_over = replies(fake_telegram, chat)[-1]
    assert f"by email at {JANE}" in handed_over, replies(fake_telegram, chat)
    telegram = tracker(bot_servers, f"telegram:{chat}")["slots"]
    assert (telegram["email"], telegram["verified_conversation"]) == (JANE, f"telegram:{chat}")

    [claimed] = say(bot_servers, str(chat), "I want to talk to a human")
    assert "right here in this chat" in claimed and JANE not in claimed
    assert re.search(r"TCK-\d+", claimed)[0] != re.search(r"TCK-\d+", handed_over)[0]
    assert tickets(shop) == {f"telegram:{chat}": JANE, f"rest:{chat}": None}
    assert tracker(bot_servers, f"rest:{chat}")["slots"]["email"] is None
    assert any(
        "email address on order 12345" in answer for answer in say(bot_servers, str(chat), "where is my order 12345?")
    )


@pytest.mark.parametrize(
    "body, field",
    [
        (b"not json", None),
        (b"", None),
        ([], None),
        ("hi", None),
        ({"message": "hi"}, "sender"),
        ({"sender": 123, "message": "hi"}, "sender"),
        ({"sender": ["a"], "message": "hi"}, "sender"),
        ({"sender": None, "message": "hi"}, "sender"),
        ({"sender": "", "message": "hi"}, "sender"),
        ({"sender": "x" * 129, "message": "hi"}, "sender"),
        ({"sender": "two\nlines", "message": "hi"}, "sender"),
        ({"sender": "bad-bodies"}, "message"),
        ({"sender": "bad-bodies", "message": 5}, "message"),
        ({"sender": "bad-bodies", "message": ["hi"]}, "message"),
        ({"sender": "bad-bodies", "message": None}, "message"),
        ({"sender": "bad-bodies", "message": "hi", "metadata": "x"}, "metadata"),
    ],
    ids=lambda value: repr(value)[:40],
)
def test_a_malformed_rest_body_gets_a_400_naming_the_field(bot_servers, body, field):
    raw = body if isinstance(body, bytes) else None
    answer = httpx.post(
        f"{bot_servers.rasa_url}/webhooks/rest/webhook", content=raw, json=None if raw is not None else body, timeout=30
    )
    assert answer.status_code == 400, answer.text
    error = answer.json()
    assert error["field"] == field and (field or "body") in error["error"], error
    assert say(bot_servers, "bad-bodies", "/thank") == [THANKS]  # the channel still answers


def test_a_rest_sender_of_128_characters_is_its_conversation_id_with_the_prefix(bot_servers):
    sender = "s" * 128
    assert say(bot_servers, sender, "/thank") == [THANKS]
    assert user_texts(bot_servers, f"rest:{sender}") == ["/thank"]


def test_rest_input_channel_is_rest_whatever_the_body_says(bot_servers):
    httpx.post(
        f"{bot_servers.rasa_url}/webhooks/rest/webhook",
        timeout=30,
        json={"sender": "claims-telegram", "message": "/thank", "input_channel": "telegram"},
    ).raise_for_status()
    assert tracker(bot_servers, "rest:claims-telegram")["latest_input_channel"] == "rest"


# socket.io -------------------------------------------------------------------------------------


class WebChat:
    """A socket.io client speaking the widget's protocol (widget/src/connection.js)."""

    def __init__(self) -> None:
        self.client = socketio.AsyncClient(reconnection=False)
        self.confirmed: asyncio.Queue = asyncio.Queue()
        self.answers: asyncio.Queue = asyncio.Queue()
        self.client.on("session_confirm", self.confirmed.put)
        self.client.on("bot_uttered", self.answers.put)

    async def connect(self, url: str) -> "WebChat":
        # Long polling: engineio's websocket client needs a newer aiohttp than Rasa 3.6 pins.
        await self.client.connect(url, transports=["polling"], socketio_path="/socket.io", wait_timeout=30)
        return self

    async def session(self, **request: Any) -> Dict[str, str]:
        """The session the server confirms for `session_request` with `request`."""
        await self.client.emit("session_request", request)
        return await asyncio.wait_for(self.confirmed.get(), 30)

    async def say(self, *data: Any) -> str:
        """Send `user_uttered` with `data`; the text of the next answer."""
        await self.client.emit("user_uttered", *data)
        return (await asyncio.wait_for(self.answers.get(), 60))["text"]

    async def close(self) -> None:
        await self.client.disconnect()


async def test_a_web_chat_session_resumes_only_with_its_secret(bot_servers):
    customer = await WebChat().connect(bot_servers.rasa_url)
    issued = await customer.session()
    assert issued["session_id"] and issued["session_secret"]
    assert await customer.say({"message": "/thank"}) == THANKS
    await customer.close()

    intruder = await WebChat().connect(bot_servers.rasa_url)
    claims = [
        {"session_id": issued["session_id"]},
        {"session_id": issued["session_id"], "session_secret": "0" * 64},
        {"session_id": issued["session_id"] + "x", "session_secret": issued["session_secret"]},
    ]
    given = [await intruder.session(**claim) for claim in claims]
    assert issued["session_id"] not in [session["session_id"] for session in given]
    # A message naming the customer's session runs in the one confirmed for this socket.
    assert await intruder.say({"message": "/goodbye", "session_id": issued["session_id"]}) == GOODBYE
    await intruder.close()
    assert user_texts(bot_servers, f"socketio:{issued['session_id']}") == ["/thank"]
    assert user_texts(bot_servers, f"socketio:{given[-1]['session_id']}") == ["/goodbye"]

    returning = await WebChat().connect(bot_servers.rasa_url)
    assert await returning.session(**issued) == issued
    assert await returning.say({"message": "/goodbye"}) == GOODBYE
    await returning.close()
    assert user_texts(bot_servers, f"socketio:{issued['session_id']}") == ["/thank", "/goodbye"]


async def test_web_chat_messages_of_the_wrong_shape_are_dropped(bot_servers):
    chat = await WebChat().connect(bot_servers.rasa_url)
    await chat.client.emit("user_uttered", {"message": "/goodbye"})  # before any session: dropped
    session = await chat.session()
    for data in [
        ("hi",),
        (["/goodbye"],),
        ({"message": 5},),
        ({"message": None},),
        ({},),
        (),
        ({"message": "/goodbye", "metadata": "not an object"},),
    ]:
        await chat.client.emit("user_uttered", *data)
    # socket.io keeps the order: had any of them been answered, its answer would come first.
    assert await chat.say({"message": "/thank", "metadata": {"page": "/help"}}) == THANKS
    await chat.close()
    assert user_texts(bot_servers, f"socketio:{session['session_id']}") == ["/thank"]


# A verified email belongs to the conversation that verified it ---------------------------------


@pytest.fixture
def shop_db(tmp_path, monkeypatch) -> str:
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    monkeypatch.setenv(db.DATABASE_URL_VARIABLE, url)
    return url


def run(action, sender: str, **slots: Any) -> List[str]:
    dispatcher = CollectingDispatcher()
    message = {"text": "", "intent": {"name": "affirm", "confidence": 1.0}, "entities": []}
    action.run(dispatcher, Tracker(sender, slots, message, [], False, None, {}, "action_listen"), DOMAIN)
    return [bot_texts.said(m, slots) for m in dispatcher.messages]


def test_the_validators_record_which_conversation_verified_the_email(shop_db):
    form, sender = forms.ValidateOrderStatusForm(), "rest:customer"
    verified = form.validate_email(
        JANE,
        CollectingDispatcher(),
        Tracker(sender, {"order_id": "12345"}, {}, [], False, None, {}, "action_listen"),
        DOMAIN,
    )
    assert verified == {"email": JANE, "verified_conversation": sender}
    verified = form.validate_order_id(
        "12345",
        CollectingDispatcher(),
        Tracker(sender, {"email": JANE}, {}, [], False, None, {}, "action_listen"),
        DOMAIN,
    )
    assert verified == {"order_id": "12345", "verified_conversation": sender}


@pytest.mark.parametrize(
    "action, slots",
    [
        (submissions.ActionOrderStatus(), {}),
        (submissions.ActionCancelOrder(), {"confirm_cancel": True}),
        (submissions.ActionStartReturn(), {"product": "headphones", "return_reason": "too small"}),
        (submissions.ActionChangeAddress(), {"new_address": "7 Oak Avenue, Portland, OR 97201"}),
    ],
    ids=lambda value: getattr(value, "name", lambda: "")() or "",
)
def test_an_email_verified_in_another_conversation_opens_no_order(shop_db, action, slots):
    slots = {"order_id": "12345", "email": JANE, **slots}
    refusal = [bot_texts.text("utter_not_verified")]
    for verified_in in ("telegram:123", None):
        assert run(action, "rest:123", verified_conversation=verified_in, **slots) == refusal
    assert run(action, "rest:123", verified_conversation="rest:123", **slots) != refusal


def test_a_handoff_writes_to_an_email_verified_in_another_conversation_never(shop_db):
    [answer] = run(support.ActionHumanHandoff(), "rest:123", email=JANE, verified_conversation="telegram:123")
    assert "right here in this chat" in answer and JANE not in answer
    with db.transaction(shop_db) as session:
        [ticket] = session.scalars(select(Ticket)).all()
        assert (ticket.conversation_id, ticket.email) == ("rest:123", None) and JANE not in ticket.summary
    [answer] = run(support.ActionHumanHandoff(), "telegram:123", email=JANE, verified_conversation="telegram:123")
    assert f"by email at {JANE}" in answer

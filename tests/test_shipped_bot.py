"""The shipped path: `make run` on a copy of the checkout with the shipped configuration files
(tests/shipped.py), and a customer's conversation for every flow through REST, the widget in
Chromium, Telegram (the local fake Bot API) and `make shell`. Each conversation checks what the
customer reads and the rows it leaves in the shop database; an apology for a failed action fails it,
and so does an ERROR, a traceback or a refused call in any service's log that the test did not cause.
"""

from __future__ import annotations

import os
import pty
import re
import signal
import subprocess
import time
from typing import Iterator, List

import httpx
import psutil
import pytest
from playwright.sync_api import expect

from bot.rasa_patches.action_failures import APOLOGY
from bot.supervisor import wait_for
from tests import bot_texts
from tests.conftest import ROOT
from tests.fake_telegram_api import message_update
from tests.shipped import ShippedBot, customer_environment, running
from tests.test_flows import (
    AMIRA,
    CANCELLED_100234,
    JANE,
    MIKE,
    Conversation,
    email_question,
    order,
    rows_after_cancelling_100234,
    shipped_answer,
    shop_rows,
)
from tests.test_telegram import post, replies
from tests.test_widget import GREETING, open_chat, send

text = bot_texts.text
# `UPDATE_SCREENSHOT=1 make test` refreshes docs/widget.png and its transcript from this run.
PICTURE = ROOT / "docs" / "widget.png"
TRANSCRIPT = ROOT / "docs" / "widget.txt"
DATES = re.compile(
    r"\b(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday|January|February|March|April|May|"
    r"June|July|August|September|October|November|December)\b(?: \d{1,2})?"
)


class Customer(Conversation):
    """A REST conversation in which an apology for a failed action fails the test at once."""

    def __call__(self, message: str) -> List[str]:
        answers = super().__call__(message)
        assert APOLOGY not in answers, f"{message!r} was answered with the apology for a failed action"
        return answers


@pytest.fixture(scope="module")
def shipped_bot(shipped_project, fake_telegram) -> Iterator[ShippedBot]:
    """`make run`, Telegram on (the settings a user exports) against the local fake Bot API."""
    env = customer_environment(TELEGRAM_BOT_TOKEN=fake_telegram.token, TELEGRAM_API_URL=fake_telegram.base_url)
    yield from running(ShippedBot(shipped_project, env))


@pytest.fixture
def clean_logs(shipped_bot) -> Iterator[None]:
    """The test leaves no ERROR, traceback or refused call in any service's log."""
    mark = shipped_bot.mark()
    yield
    assert shipped_bot.trouble_since(mark) == []


def shop(bot: ShippedBot) -> str:
    """The shop database `make run`'s action server uses: shop.db where it starts."""
    return f"sqlite:///{bot.project / 'shop.db'}"


def test_order_status_after_the_email_check(shipped_bot, clean_logs):
    chat = Customer(shipped_bot)
    shipped = order(shop(shipped_bot), "12345")
    assert chat("where is my order 12345?") == [email_question("12345")]
    assert chat("amira@example.org") == [
        "That email address doesn't match the one on order 12345. Please use the email address you ordered "
        f"with. {email_question('12345')}"
    ]
    assert chat(JANE) == [shipped_answer(shipped, "wireless headphones")]


def test_refund_status(shipped_bot, clean_logs):
    chat = Customer(shipped_bot)
    delivered = order(shop(shipped_bot), "77310").delivered_on
    assert chat("where is my refund?") == [text("utter_ask_order_id")]
    assert chat("77310") == [email_question("77310")]
    assert chat(JANE) == [f"Order 77310 (blue running shoes, sports socks) was delivered on {delivered:%B %d}."]


def test_cancellation_after_confirming(shipped_bot, clean_logs):
    chat, url = Customer(shipped_bot), shop(shipped_bot)
    before = shop_rows(url)
    assert chat("I want to cancel my order") == [text("utter_ask_order_id")]
    assert chat("100234") == [email_question("100234")]
    assert chat(JANE) == [text("utter_ask_confirm_cancel", order_id="100234")]
    assert chat("yes") == [CANCELLED_100234]
    assert shop_rows(url) == rows_after_cancelling_100234(before)


def test_return_of_a_delivered_item(shipped_bot, clean_logs):
    chat, url = Customer(shipped_bot), shop(shipped_bot)
    before = shop_rows(url)
    assert chat("I want to return an item") == [text("utter_ask_order_id")]
    assert chat("55821") == [email_question("55821")]
    assert chat(MIKE) == [text("utter_ask_product", order_id="55821")]
    assert chat("the toaster") == [text("utter_ask_return_reason")]
    answer = chat("it arrived broken")  # the reason as the shop records it: "damaged or defective"
    after = shop_rows(url)
    [reference] = [r for n, _, _, r in after["returns"] if n == "55821"]
    assert answer == [
        f"Your return for the toaster is registered. Your return reference is {reference}. We'll email "
        f"a prepaid label to {MIKE}; your refund follows once the item is back with us."
    ]
    before["returns"].append(("55821", "toaster", "damaged or defective", reference))
    before["refunds"].append(("55821", 4500, "awaiting_return"))
    assert after == before


def test_address_change_with_a_question_in_between(shipped_bot, clean_logs):
    """An FAQ inside the form is answered, and the form asks its question again."""
    chat, url = Customer(shipped_bot), shop(shipped_bot)
    before = shop_rows(url)
    new_address = "7 Oak Avenue, Portland, OR 97201"
    assert chat("I need to change my delivery address") == [text("utter_ask_order_id")]
    assert chat("how long does shipping take?") == [text("utter_faq_shipping"), text("utter_ask_order_id")]
    assert chat("48213") == [email_question("48213")]
    assert chat(MIKE) == [text("utter_ask_new_address", order_id="48213")]
    assert chat(new_address) == [f"Order 48213 will now be delivered to: {new_address}."]
    before["orders"]["48213"] = ("processing", new_address)
    assert shop_rows(url) == before


def test_hand_off_opens_a_ticket(shipped_bot, clean_logs):
    chat = Customer(shipped_bot)
    answer = chat("I want to talk to a human")
    [reference] = [
        r for conversation, r in shop_rows(shop(shipped_bot))["tickets"] if conversation == chat.conversation_id
    ]
    assert answer == [text("utter_handoff_in_chat", reference=reference)]


def test_out_of_scope(shipped_bot, clean_logs):
    chat = Customer(shipped_bot)
    assert chat("what's the weather like on mars tomorrow?") == [text("utter_out_of_scope")]
    assert chat("hello") == [GREETING["text"]]


def test_a_triton_crash_mid_conversation(shipped_bot, browser):
    """Triton killed in the middle of a flow: a new conversation's first message is answered politely
    (without "still", which belongs to the second failure) over REST and in the widget, Triton is
    started again, and the flow goes on where it was."""
    mark, chat = shipped_bot.mark(), Customer(shipped_bot)
    assert chat("where is my order 98765?") == [email_question("98765")]
    [triton] = [
        p
        for p in psutil.process_iter(["name", "cmdline"])
        if p.info["name"] == "tritonserver"
        and any(str(shipped_bot.project) in part for part in p.info["cmdline"] or [])
    ]
    page = open_chat(browser, shipped_bot.widget_url)  # greeted, nothing typed yet
    triton.kill()
    triton.wait(30)
    # A new conversation's first message, while Triton is down (the supervisor starts it again in seconds).
    send(page, "hi there")
    assert Customer(shipped_bot)("hi there") == [text("utter_default")]
    expect(page.locator(".message.bot").last).to_have_text(text("utter_default"))
    wait_for("http://127.0.0.1:8000/v2/models/support_nlu/ready", 180, what="Triton, started again,")
    # Rasa's gRPC channel reconnects within about a second of Triton's return (nlu/triton/client.py),
    # a message before that still gets the fallback: the customer goes on once the bot understands again.
    parse = f"{shipped_bot.rasa_url}/model/parse"
    wait_for(parse, 30, what="Rasa's NLU after Triton's return", probe=lambda: understands(shipped_bot, parse))
    shipped = order(shop(shipped_bot), "98765")
    assert chat(MIKE) == [shipped_answer(shipped, "laptop stand")]
    caused = [r"Triton at \S+ did not answer", r"triton (exited|stopped|crashed)", r"tritonserver"]
    assert shipped_bot.trouble_since(mark, caused) == []


def understands(bot: ShippedBot, parse: str) -> bool:
    """Whether Rasa's NLU gives an intent again (Triton answers it), not the fallback."""
    answer = httpx.post(
        parse, params={"token": bot.secrets["RASA_AUTH_TOKEN"]}, json={"text": "where is my order 98765?"}, timeout=30
    )
    return answer.json()["intent"]["name"] == "order_status"


def test_the_widget_in_a_browser(shipped_bot, browser, clean_logs):
    page = open_chat(browser, shipped_bot.widget_url)
    bot = page.locator(".message.bot")
    send(page, "where is my order 12345?")
    expect(bot.last).to_have_text(email_question("12345"))
    send(page, JANE)
    expect(bot.last).to_have_text(shipped_answer(order(shop(shipped_bot), "12345"), "wireless headphones"))
    transcript = "\n".join(page.locator(".message").all_inner_texts()) + "\n"
    target = PICTURE if os.environ.get("UPDATE_SCREENSHOT") else ROOT / "tests" / ".artifacts" / "widget.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target))
    if os.environ.get("UPDATE_SCREENSHOT"):
        TRANSCRIPT.write_text(transcript)
    assert DATES.sub("<date>", transcript) == DATES.sub("<date>", TRANSCRIPT.read_text()), (
        "docs/widget.png shows another conversation than the shipped bot holds: refresh both with "
        "`UPDATE_SCREENSHOT=1 make test` (or pytest tests/test_shipped_bot.py)"
    )


def test_telegram(shipped_bot, fake_telegram, clean_logs):
    chat, url = 7_000_000 + os.getpid() % 100_000, shop(shipped_bot)
    before = shop_rows(url)

    def say(message: str) -> List[str]:
        sent = len(replies(fake_telegram, chat))
        assert post(shipped_bot, message_update(fake_telegram.next_update_id(), chat, message)).status_code == 200
        answers = replies(fake_telegram, chat)[sent:]
        assert APOLOGY not in answers
        return answers

    assert say("/start") == [GREETING["text"]]
    assert say("please cancel order 48213") == [email_question("48213")]
    assert say(MIKE) == [text("utter_ask_confirm_cancel", order_id="48213")]
    assert say("no, keep it") == ["Okay, I won't cancel anything. Your order stays as it is."]
    answer = say("I'd like to speak to a person")
    after = shop_rows(url)
    [reference] = [r for conversation, r in after["tickets"] if conversation == f"telegram:{chat}"]
    assert answer == [text("utter_handoff_by_email", reference=reference, email=MIKE)]  # verified: by email
    assert {**after, "tickets": before["tickets"]} == before  # the declined cancellation changed nothing


def test_make_shell(shipped_bot, clean_logs):
    """`make shell` in a terminal (a pty): type, read the answers, /stop."""
    controller, terminal = pty.openpty()
    shell = subprocess.Popen(
        ["make", "shell"],
        cwd=shipped_bot.project,
        env=shipped_bot.env,
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        start_new_session=True,
    )
    os.close(terminal)
    screen = ""

    def read_until(expected: str, timeout_s: float = 120) -> None:
        nonlocal screen
        deadline = time.monotonic() + timeout_s
        while expected not in screen:
            assert time.monotonic() < deadline and shell.poll() is None, f"{expected!r} not shown:\n{screen}"
            try:
                screen += os.read(controller, 4096).decode(errors="replace").replace("\r\n", "\n")
            except OSError:  # the terminal closed
                time.sleep(0.1)

    def type_line(line: str) -> None:
        os.write(controller, f"{line}\n".encode())

    try:
        read_until("Your input -> ")
        assert "conversation shell:" in screen
        type_line("where is my order 31415?")
        read_until(f"Bot: {email_question('31415')}")
        type_line(AMIRA)
        read_until("Order 31415 (bluetooth speaker) was delivered on")
        type_line("/stop")
        assert shell.wait(timeout=30) == 0
    finally:
        if shell.poll() is None:
            os.killpg(shell.pid, signal.SIGKILL)
        os.close(controller)


def test_the_shell_channel_is_closed_to_strangers(shipped_bot):
    """The terminal's channel answers only Rasa's token, and never opens another channel's conversation."""
    webhook = f"{shipped_bot.rasa_url}/webhooks/shell/webhook"
    message = {"sender": "telegram:1", "message": "hi"}
    assert httpx.post(webhook, json=message, timeout=30).status_code == 401
    assert httpx.post(webhook, json=message, headers={"Authorization": "Bearer guess"}, timeout=30).status_code == 401
    token = shipped_bot.secrets["RASA_AUTH_TOKEN"]
    answer = httpx.post(webhook, json=message, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert answer.status_code == 200 and answer.json()[0]["recipient_id"] == "shell:telegram:1"

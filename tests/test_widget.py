"""The web widget in headless Chromium (Debian's /usr/bin/chromium, driven by Playwright) on the
demo page of `python -m bot widget`, chatting with the real Rasa server over its socket.io channel:
the shared one, and one of this module's own that sends images and links and that a test restarts."""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import httpx
import pytest
import yaml
from playwright.sync_api import Page, expect

from bot import services
from bot.supervisor import Service, Supervisor
from tests.conftest import RASA_TOKEN, ROOT, free_port, rasa, write_project

DOMAIN = yaml.safe_load((ROOT / "domain.yml").read_text())
GREETING = DOMAIN["responses"]["utter_greet"][0]
THANKS = DOMAIN["responses"]["utter_you_are_welcome"][0]["text"]
GOODBYE = DOMAIN["responses"]["utter_goodbye"][0]["text"]
# This module's own bot says these instead of its answers to "/bot_challenge" and "/chitchat":
# links and images with http(s) URLs, which the widget must show, and javascript:/data: ones,
# which it must drop.
SAFE_MEDIA = {
    "text": "See [shipping](https://shop.invalid/help/shipping) or http://shop.invalid/faq.",
    "image": "https://shop.invalid/assistant.png",
}
UNSAFE_MEDIA = {
    "text": "Try [this](javascript:alert(1)) or [that](data:text/html,<b>hi</b>).",
    "image": "data:image/svg+xml,<svg xmlns='http://www.w3.org/2000/svg'/>",
    "attachment": {"type": "image", "payload": {"src": "javascript:alert(2)"}},
}
MEDIA_RESPONSES = {"utter_iamabot": SAFE_MEDIA, "utter_chitchat": UNSAFE_MEDIA}
HOSTILE = """<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2"> &amp; [x](javascript:alert(1))"""
# Notes whether the typing indicator was ever shown, however short.
WATCH_TYPING = """() => {
  const typing = document.querySelector(".support-chat-widget").shadowRoot.querySelector(".typing");
  window.typingShown = false;
  new MutationObserver(() => { if (!typing.hidden) window.typingShown = true; })
    .observe(typing, { attributes: true, attributeFilter: ["hidden"] });
}"""


@contextmanager
def demo_page(rasa_url: str, log_dir: Path) -> Iterator[str]:
    """`python -m bot widget` for the Rasa at `rasa_url`, started as `make run` starts it; the demo page's URL."""
    port = free_port()
    supervisor = Supervisor(log_dir)
    try:
        supervisor.start(services.widget(port, rasa_url))
        yield f"http://127.0.0.1:{port}/"
    finally:
        supervisor.stop(grace_s=5)


@pytest.fixture(scope="module")
def demo_url(bot_servers, tmp_path_factory):
    with demo_page(bot_servers.rasa_url, tmp_path_factory.mktemp("widget-logs")) as url:
        yield url


@dataclass
class RestartableRasa:
    """`rasa run` under a supervisor of its own, so a test can stop it and start it again."""

    url: str
    service: Service
    supervisor: Supervisor

    def start(self) -> None:
        self.supervisor.start(self.service, timeout_s=300)

    @contextmanager
    def stopped(self) -> Iterator[None]:
        """Rasa down inside the block; started again on the same port when it ends."""
        self.supervisor.stop(grace_s=5)
        try:
            yield
        finally:
            self.start()


@pytest.fixture(scope="module")
def media_rasa(tmp_path_factory, triton) -> Iterator[RestartableRasa]:
    """A Rasa server of our own on the bot's project, with two responses rewritten to carry images
    and links. Its model is the dialogue part only (`rasa train core`), and rules alone: these tests
    send intents as "/intent" shortcuts (no NLU) that rules answer, so it trains and restarts
    quicker than the whole bot. No action server either: no action runs."""
    project = write_project(
        tmp_path_factory.mktemp("media"), triton, nlu_overrides={}, policies=[{"name": "RulePolicy"}]
    )
    domain = yaml.safe_load((project / "domain.yml").read_text())
    domain["responses"].update({name: [message] for name, message in MEDIA_RESPONSES.items()})
    (project / "domain.yml").write_text(yaml.safe_dump(domain, sort_keys=False))
    rasa("train", "core", "--fixed-model-name", "media", cwd=project)
    port = free_port()
    server = RestartableRasa(
        f"http://localhost:{port}",
        services.rasa(
            port,
            RASA_TOKEN,
            model=Path("models/media.tar.gz"),
            env={**os.environ, "RASA_TELEMETRY_ENABLED": "false"},
            cwd=project,
        ),
        Supervisor(tmp_path_factory.mktemp("media-logs")),
    )
    server.start()
    yield server
    server.supervisor.stop(grace_s=5)


@pytest.fixture(scope="module")
def media_demo_url(media_rasa, tmp_path_factory):
    with demo_page(media_rasa.url, tmp_path_factory.mktemp("media-widget-logs")) as url:
        yield url


def send(page: Page, text: str) -> None:
    page.get_by_label("Message").fill(text)
    page.get_by_label("Message").press("Enter")


def open_chat(browser, url: str) -> Page:
    """A new browser's page with the chat open and greeted, so the widget is connected."""
    page = browser.new_page(viewport={"width": 960, "height": 720})
    page.goto(url)
    page.get_by_role("button", name="Open chat").click()
    expect(page.locator(".message.bot").first).to_contain_text(GREETING["text"])
    return page


def stored_session(page: Page, rasa_url: str) -> str:
    return page.evaluate("url => JSON.parse(localStorage.getItem(`support-chat:${url}`)).sessionId", rasa_url)


def test_chat_buttons_reload_and_html_shown_as_text(browser, demo_url, bot_servers):
    page = open_chat(browser, demo_url)  # greeted by the demo's initial payload, /greet
    bot = page.locator(".message.bot")
    expect(bot.first.get_by_role("button")).to_have_text([b["title"] for b in GREETING["buttons"]])

    shipping = next(b for b in GREETING["buttons"] if b["payload"] == "/faq_shipping")
    bot.first.get_by_role("button", name=shipping["title"]).click()
    expect(page.locator(".message.user").last).to_have_text(shipping["title"])
    expect(bot).to_have_count(2)
    expect(bot.nth(1)).to_have_text(DOMAIN["responses"]["utter_faq_shipping"][0]["text"])

    page.evaluate(WATCH_TYPING)
    send(page, "where is my order 12345?")
    expect(bot.last).to_contain_text("email address on order 12345")
    expect(page.locator(".typing")).to_be_hidden()
    assert page.evaluate("window.typingShown")

    answers = bot.count()
    send(page, HOSTILE)
    expect(page.locator(".message.user").last).to_have_text(HOSTILE)
    expect(bot).not_to_have_count(answers)
    page.wait_for_timeout(1000)  # the rest of the bot's turn, if it says more than one thing
    messages = page.locator(".message").count()
    assert page.locator(".log script, .log img, .log a").count() == 0
    assert page.evaluate("window.pwned") is None

    session_id = stored_session(page, bot_servers.rasa_url)
    page.reload()
    expect(page.locator(".message")).to_have_count(messages)  # history is back, panel still open
    expect(page.locator(".message.user").last).to_have_text(HOSTILE)
    assert page.evaluate("window.pwned") is None
    send(page, "where is my order 777?")
    expect(bot.last).to_contain_text("777")

    assert stored_session(page, bot_servers.rasa_url) == session_id  # the reloaded page resumed its session
    tracker = httpx.get(
        f"{bot_servers.rasa_url}/conversations/socketio:{session_id}/tracker", params={"token": RASA_TOKEN}, timeout=30
    ).json()
    said = [event.get("text") for event in tracker["events"] if event["event"] == "user"]
    assert {"where is my order 12345?", HOSTILE, "where is my order 777?"} <= set(said)
    page.close()


def test_keyboard_only_on_a_phone_sized_screen(browser, demo_url):
    page = browser.new_page(viewport={"width": 375, "height": 667}, is_mobile=True, has_touch=True)
    page.goto(demo_url)
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # on the focused launcher
    panel = page.get_by_role("dialog")
    expect(panel).to_be_visible()
    assert panel.bounding_box()["width"] == 375  # full screen on a phone
    expect(page.get_by_label("Message")).to_be_focused()
    expect(page.locator(".message.bot").first).to_contain_text(GREETING["text"])
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    expect(page.get_by_role("button", name="Open chat")).to_be_focused()
    page.close()


def test_images_and_links_are_shown_with_http_urls_only(browser, media_demo_url):
    page = open_chat(browser, media_demo_url)
    bot = page.locator(".message.bot")
    send(page, "/chitchat")
    expect(bot.nth(1)).to_have_text(UNSAFE_MEDIA["text"])  # its links stay text
    send(page, "/bot_challenge")
    # The safe image ends the last turn; socket.io keeps the order, so all before it has arrived.
    expect(bot.last.locator("img")).to_have_attribute("src", SAFE_MEDIA["image"])
    expect(bot).to_have_count(4)  # the greeting, both texts, the safe image: the unsafe ones are dropped
    expect(bot.nth(2)).to_have_text("See shipping or http://shop.invalid/faq.")
    expect(page.locator(".log img")).to_have_count(1)
    links = page.locator(".log a")
    expect(links).to_have_text(["shipping", "http://shop.invalid/faq"])
    assert [links.nth(i).get_attribute("href") for i in range(2)] == [
        "https://shop.invalid/help/shipping",
        "http://shop.invalid/faq",
    ]
    page.close()


def test_reconnects_by_itself_when_rasa_restarts(browser, media_demo_url, media_rasa):
    page = open_chat(browser, media_demo_url)
    bot, status, message = page.locator(".message.bot"), page.locator(".status"), page.get_by_label("Message")
    send(page, "/thank")
    expect(bot.last).to_have_text(THANKS)
    session_id = stored_session(page, media_rasa.url)

    with media_rasa.stopped():
        expect(status).to_have_text("Connection lost, reconnecting…")
        send(page, "/goodbye")  # refused while disconnected: the text waits in the box
        expect(message).to_have_value("/goodbye")
        expect(page.locator(".message.user")).to_have_count(1)
    expect(status).to_be_hidden(timeout=30_000)  # the widget retries every few seconds
    message.press("Enter")
    expect(bot.last).to_have_text(GOODBYE)
    assert stored_session(page, media_rasa.url) == session_id
    tracker = httpx.get(
        f"{media_rasa.url}/conversations/socketio:{session_id}/tracker", params={"token": RASA_TOKEN}, timeout=30
    ).json()
    assert "/goodbye" in [event.get("text") for event in tracker["events"] if event["event"] == "user"]
    page.close()


def test_a_page_that_names_another_session_without_its_secret_gets_a_new_one(browser, media_demo_url, media_rasa):
    customer = open_chat(browser, media_demo_url)
    send(customer, "/thank")
    expect(customer.locator(".message.bot").last).to_have_text(THANKS)
    session_id = stored_session(customer, media_rasa.url)
    customer.close()

    intruder = browser.new_page()
    stored = {"sessionId": session_id, "history": [], "open": True}  # the id without its secret, before the widget runs
    intruder.add_init_script(
        f"localStorage.setItem({json.dumps(f'support-chat:{media_rasa.url}')}, {json.dumps(json.dumps(stored))})"
    )
    intruder.goto(media_demo_url)
    expect(intruder.locator(".message.bot").first).to_contain_text(GREETING["text"])  # a new conversation's greeting
    assert stored_session(intruder, media_rasa.url) not in (session_id, None)
    tracker = httpx.get(
        f"{media_rasa.url}/conversations/socketio:{session_id}/tracker", params={"token": RASA_TOKEN}, timeout=30
    ).json()
    assert [event["text"] for event in tracker["events"] if event["event"] == "user"] == ["/greet", "/thank"]
    intruder.close()

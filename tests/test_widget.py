"""The web widget in headless Chromium (Debian's /usr/bin/chromium, driven by Playwright) on the
demo page of `python -m bot widget`, chatting with the real Rasa server over its socket.io channel."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest
import yaml
from playwright.sync_api import Page, expect, sync_playwright

from bot import widget_server
from tests.conftest import ROOT

CHROMIUM = "/usr/bin/chromium"
# Root in a container: no sandbox. The rest keeps Chromium from calling home or updating itself.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
# `UPDATE_SCREENSHOT=1 pytest tests/test_widget.py` refreshes the README's picture.
SCREENSHOT = ROOT / "docs" / "widget.png" if os.environ.get("UPDATE_SCREENSHOT") else ROOT / "tests" / ".artifacts" / "widget.png"

DOMAIN = yaml.safe_load((ROOT / "domain.yml").read_text())
GREETING = DOMAIN["responses"]["utter_greet"][0]
FALLBACK_TEXT = DOMAIN["responses"]["utter_default"][0]["text"]
HOSTILE = """<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2"> &amp; [x](javascript:alert(1))"""
# Notes whether the typing indicator was ever shown, however short.
WATCH_TYPING = """() => {
  const typing = document.querySelector(".support-chat-widget").shadowRoot.querySelector(".typing");
  window.typingShown = false;
  new MutationObserver(() => { if (!typing.hidden) window.typingShown = true; })
    .observe(typing, { attributes: true, attributeFilter: ["hidden"] });
}"""


@pytest.fixture(scope="module")
def demo_url(bot_servers):
    server = widget_server.serve_in_thread(bot_servers.rasa_url)
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


@pytest.fixture(scope="module")
def browser():
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: `make system-deps` installs Debian's chromium"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def send(page: Page, text: str) -> None:
    page.get_by_label("Message").fill(text)
    page.get_by_label("Message").press("Enter")


def test_chat_buttons_reload_and_html_shown_as_text(browser, demo_url, bot_servers):
    page = browser.new_page(viewport={"width": 960, "height": 720})
    page.goto(demo_url)
    page.get_by_role("button", name="Open chat").click()

    bot = page.locator(".message.bot")
    expect(bot.first).to_contain_text(GREETING["text"])  # the demo's initial payload, /greet
    expect(bot.first.get_by_role("button")).to_have_text([b["title"] for b in GREETING["buttons"]])

    bot.first.get_by_role("button", name=GREETING["buttons"][1]["title"]).click()
    expect(page.locator(".message.user").last).to_have_text(GREETING["buttons"][1]["title"])
    expect(bot).to_have_count(2)
    assert FALLBACK_TEXT not in bot.nth(1).inner_text()

    page.evaluate(WATCH_TYPING)
    send(page, "where is my order 12345?")
    expect(bot.last).to_contain_text("email address on order 12345")
    expect(page.locator(".typing")).to_be_hidden()
    assert page.evaluate("window.typingShown")
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT))

    answers = bot.count()
    send(page, HOSTILE)
    expect(page.locator(".message.user").last).to_have_text(HOSTILE)
    expect(bot).not_to_have_count(answers)
    page.wait_for_timeout(1000)  # the rest of the bot's turn, if it says more than one thing
    messages = page.locator(".message").count()
    assert page.locator(".log script, .log img, .log a").count() == 0
    assert page.evaluate("window.pwned") is None

    stored = page.evaluate("url => JSON.parse(localStorage.getItem(`support-chat:${url}`))", bot_servers.rasa_url)
    session_id = stored["sessionId"]
    page.reload()
    expect(page.locator(".message")).to_have_count(messages)  # history is back, panel still open
    expect(page.locator(".message.user").last).to_have_text(HOSTILE)
    assert page.evaluate("window.pwned") is None
    send(page, "where is my order 777?")
    expect(bot.last).to_contain_text("777")

    tracker = httpx.get(f"{bot_servers.rasa_url}/conversations/{session_id}/tracker", timeout=30).json()
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

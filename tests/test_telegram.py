"""The Telegram channel against a local fake of the Bot API (tests/fake_telegram_api.py): webhook
and polling mode on the real Rasa server, /start, buttons, the secret-token check, malformed,
unsupported and failing updates, long answers, conversation ids `telegram:<chat id>`, the bot token
kept out of the logs. No test reaches Telegram's servers."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import List, Optional

import httpx
import pytest
import yaml

from bot.telegram.channel import TelegramInput, TelegramOutput
from bot.telegram.format import split_message, to_markdown_v2
from bot.telegram.log_secrets import hide_in_logs
from bot.telegram.settings import SECRET_HEADER, WEBHOOK_PATH, TelegramSettings
from tests import bot_texts
from tests.conftest import RASA_TOKEN, ROOT
from tests.fake_telegram_api import callback_update, markdown_v2_error, message_update, visible_length

DOMAIN = yaml.safe_load((ROOT / "domain.yml").read_text())
GREETING = DOMAIN["responses"]["utter_greet"][0]
# What pressing each of the greeting's buttons must get: its flow's first question, or the answer.
BUTTON_ANSWERS = {
    "/order_status": bot_texts.text("utter_ask_order_id"),
    "/faq_shipping": bot_texts.text("utter_faq_shipping"),
    "/human_handoff": "your ticket number is TCK-",
}


def unescape(markdown_v2: str) -> str:
    return re.sub(r"\\(.)", r"\1", markdown_v2)


def post(servers, update, secret: Optional[str] = None) -> httpx.Response:
    if secret is None:
        settings = TelegramSettings.from_env(servers.env)
        assert settings, "the test servers run with a Telegram token"
        secret = settings.secret_token
    body = update if isinstance(update, (bytes, str)) else None
    return httpx.post(
        f"{servers.rasa_url}{WEBHOOK_PATH}",
        content=body,
        json=None if body else update,
        headers={SECRET_HEADER: secret} if secret else {},
        timeout=60,
    )


def replies(fake_telegram, chat: int) -> List[str]:
    return [unescape(m["text"]) for m in fake_telegram.sent("sendMessage", chat)]


def errors_about(servers, update_id: int) -> List[str]:
    """The Rasa server's ERROR log lines that name this update (the channel logs before it answers)."""
    log = next(service.log_path for service in servers.supervisor.services if service.name == "rasa")
    return [
        line
        for line in log.read_text(errors="replace").splitlines()
        if " ERROR " in line and re.search(rf"\bupdate {update_id}\b", line)
    ]


def assert_greets(servers, fake_telegram, chat: int) -> None:
    """/start in `chat` gets the greeting and no error: the bot still answers."""
    update_id, before = fake_telegram.next_update_id(), len(replies(fake_telegram, chat))
    assert post(servers, message_update(update_id, chat, "/start")).status_code == 200
    assert replies(fake_telegram, chat)[before:] == [GREETING["text"]]
    assert not errors_about(servers, update_id)


def test_start_greets_with_the_buttons_as_an_inline_keyboard(bot_servers, fake_telegram):
    chat = 7001
    assert post(bot_servers, message_update(fake_telegram.next_update_id(), chat, "/start")).status_code == 200
    [greeting] = fake_telegram.sent("sendMessage", chat)
    assert greeting["parse_mode"] == "MarkdownV2" and unescape(greeting["text"]) == GREETING["text"]
    keyboard = greeting["reply_markup"]["inline_keyboard"]
    assert [(row[0]["text"], row[0]["callback_data"]) for row in keyboard] == [
        (button["title"], button["payload"]) for button in GREETING["buttons"]
    ]


@pytest.mark.parametrize("button", GREETING["buttons"], ids=lambda button: button["payload"])
def test_button_press_is_acknowledged_and_answered_as_its_payload(bot_servers, fake_telegram, button):
    update_id = fake_telegram.next_update_id()
    chat = 8000 + update_id
    update = callback_update(update_id, chat, button["payload"])
    assert post(bot_servers, update).status_code == 200
    assert [
        c["callback_query_id"]
        for c in fake_telegram.sent("answerCallbackQuery")
        if c["callback_query_id"] == update["callback_query"]["id"]
    ]
    answers = replies(fake_telegram, chat)
    assert len(answers) == 1 and BUTTON_ANSWERS[button["payload"]] in answers[0], answers


def test_button_press_too_old_to_acknowledge_is_answered_all_the_same(bot_servers, fake_telegram):
    update_id = fake_telegram.next_update_id()
    chat, payload = 8000 + update_id, "/faq_shipping"
    update = callback_update(update_id, chat, payload)
    with fake_telegram.refusing(
        "answerCallbackQuery",
        400,
        "Bad Request: query is too old and response timeout expired or query ID is invalid",
        callback_query_id=update["callback_query"]["id"],
    ):
        assert post(bot_servers, update).status_code == 200
    assert replies(fake_telegram, chat) == [BUTTON_ANSWERS[payload]]
    assert not errors_about(bot_servers, update_id)


def test_text_message_gets_the_bots_answer(bot_servers, fake_telegram):
    chat = 7003
    assert (
        post(bot_servers, message_update(fake_telegram.next_update_id(), chat, "where is my order 12345?")).status_code
        == 200
    )
    answers = replies(fake_telegram, chat)
    assert any("email address on order 12345" in answer for answer in answers), answers


@pytest.mark.parametrize("secret", ["", "wrong-secret"])
def test_missing_or_wrong_secret_token_is_refused(bot_servers, fake_telegram, secret):
    chat = 7004
    answer = post(bot_servers, message_update(fake_telegram.next_update_id(), chat, "hi"), secret=secret)
    assert answer.status_code == 403 and SECRET_HEADER in answer.json()["error"]
    assert not fake_telegram.sent("sendMessage", chat)


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"update_id": "7"}',
        b'{"update_id": 7, "message": "oops"}',
        b'{"update_id": 7, "message": {"message_id": 1}}',
    ],
)
def test_malformed_updates_are_rejected_without_breaking_the_bot(bot_servers, fake_telegram, body):
    assert post(bot_servers, body).status_code == 400
    assert_greets(bot_servers, fake_telegram, 8000 + fake_telegram.next_update_id())


def test_update_that_cannot_be_answered_is_an_error_and_the_next_one_is_answered(bot_servers, fake_telegram):
    update_id = fake_telegram.next_update_id()
    chat = 8000 + update_id
    with fake_telegram.refusing("sendMessage", 403, "Forbidden: bot was blocked by the user", chat_id=chat):
        assert post(bot_servers, message_update(update_id, chat, "/start")).status_code == 200
    assert fake_telegram.sent("sendMessage", chat)  # the answer was tried, and refused
    errors = errors_about(bot_servers, update_id)
    assert len(errors) == 1 and "bot was blocked by the user" in errors[0], (
        f"the Rasa log should have one ERROR line saying why update {update_id} could not be answered: {errors}"
    )
    assert_greets(bot_servers, fake_telegram, chat)  # the user unblocked the bot


@pytest.mark.parametrize(
    "kind, content, answer",
    [
        (
            "message",
            {
                "sticker": {
                    "file_id": "s",
                    "file_unique_id": "s",
                    "type": "regular",
                    "width": 1,
                    "height": 1,
                    "is_animated": False,
                    "is_video": False,
                }
            },
            "only read text",
        ),
        ("message", {"photo": [{"file_id": "p", "file_unique_id": "p", "width": 1, "height": 1}]}, "only read text"),
        ("edited_message", {"text": "where is my order 1?"}, "edited a message"),
        ("my_chat_member", None, None),
    ],
)
def test_other_updates_get_a_polite_answer_or_are_ignored(bot_servers, fake_telegram, kind, content, answer):
    update_id = fake_telegram.next_update_id()
    chat = 8000 + update_id
    if content is None:
        update = {
            "update_id": update_id,
            kind: {
                "chat": {"id": chat, "type": "private"},
                "date": 1,
                "from": {"id": chat, "is_bot": False, "first_name": "T"},
            },
        }
    else:
        update = message_update(update_id, chat, kind=kind, **content)
    assert post(bot_servers, update).status_code == 200
    assert not errors_about(bot_servers, update_id)  # answered or ignored, not failed
    answers = replies(fake_telegram, chat)
    if answer is None:
        assert answers == []
    else:
        assert len(answers) == 1 and answer in answers[0], answers


def test_polling_hands_updates_to_the_running_bot(bot_servers, fake_telegram):
    chat = 7020
    fake_telegram.webhook = {"url": "https://example.invalid/hook"}  # polling must remove it first
    fake_telegram.queue_update(message_update(fake_telegram.next_update_id(), chat, "/start"))
    poller = subprocess.Popen(
        [sys.executable, "-m", "bot", "telegram", "--rasa-url", bot_servers.rasa_url],
        env={**bot_servers.env, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        [greeting] = fake_telegram.wait_for(lambda: fake_telegram.sent("sendMessage", chat), timeout_s=60)
        assert unescape(greeting["text"]) == GREETING["text"]
        assert fake_telegram.webhook is None
        fake_telegram.wait_for(lambda: not fake_telegram.pending_updates())  # confirmed to "Telegram"
    finally:
        poller.send_signal(signal.SIGTERM)
        output = poller.communicate(timeout=30)[0]
    assert poller.returncode == 0, output
    assert fake_telegram.token not in output


def test_polling_without_a_token_says_what_to_set():
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TELEGRAM_")}
    result = subprocess.run(
        [sys.executable, "-m", "bot", "telegram"], env=environment, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1 and "set TELEGRAM_BOT_TOKEN" in result.stderr


async def test_long_answers_are_split_into_messages_telegram_accepts(fake_telegram):
    chat = 7030
    text = (
        "Order #12345 (2 items) costs $9.99 - **paid**. See [tracking](https://example.com/t?id=1_2) "
        "or `code_1` and *soon* {more}! "
    ) * 80
    settings = TelegramSettings.from_env(
        {"TELEGRAM_BOT_TOKEN": fake_telegram.token, "TELEGRAM_API_URL": fake_telegram.base_url}
    )
    async with settings.bot() as bot:
        await TelegramOutput(bot).send_text_with_buttons(
            f"telegram:{chat}", text, [{"title": "More", "payload": "/more"}]
        )
    sent = fake_telegram.sent("sendMessage", chat)
    assert len(sent) == len(split_message(text)) > 1  # the fake refuses > 4096 characters and bad MarkdownV2
    assert all(visible_length(m["text"]) <= 4096 and markdown_v2_error(m["text"]) is None for m in sent)
    assert [bool(m.get("reply_markup")) for m in sent] == [False] * (len(sent) - 1) + [True]


def test_markdown_becomes_entities_and_everything_else_is_escaped():
    assert (
        to_markdown_v2("**Order** 1.5 *now* `a_b` [site](https://x.io/a) <script>!")
        == r"*Order* 1\.5 _now_ `a_b` [site](https://x.io/a) <script\>\!"
    )


async def test_webhook_mode_registers_the_webhook_with_the_secret(fake_telegram):
    settings = TelegramSettings.from_env(
        {
            "TELEGRAM_BOT_TOKEN": fake_telegram.token,
            "TELEGRAM_API_URL": fake_telegram.base_url,
            "TELEGRAM_WEBHOOK_URL": "https://bot.example.com/webhooks/telegram/webhook",
            "TELEGRAM_SECRET_TOKEN": "s3cret_-token",
        }
    )
    await TelegramInput(settings).register_webhook()
    assert fake_telegram.webhook["url"] == settings.webhook_url
    assert fake_telegram.webhook["secret_token"] == "s3cret_-token"
    fake_telegram.webhook = None


@pytest.mark.parametrize(
    "text",
    [
        "where is my order 12345?\x00\x1b[2J\x07\x7f",
        "\x00\x01\x02",
        "where is my order 12345? " + "I waited so long. " * 20_000,
    ],
    ids=["control-characters", "only-control-characters", "360k-characters"],
)
def test_texts_with_control_characters_or_of_any_length_are_answered(bot_servers, fake_telegram, text):
    update_id = fake_telegram.next_update_id()
    chat = 8000 + update_id
    assert post(bot_servers, message_update(update_id, chat, text)).status_code == 200
    assert replies(fake_telegram, chat) and not errors_about(bot_servers, update_id)
    [said] = [e["text"] for e in conversation(bot_servers, chat)["events"] if e["event"] == "user"]
    assert said.isprintable() and len(said) <= 10_000


def conversation(servers, chat: int) -> dict:
    answer = httpx.get(
        f"{servers.rasa_url}/conversations/telegram:{chat}/tracker", params={"token": RASA_TOKEN}, timeout=30
    )
    answer.raise_for_status()
    return answer.json()


def test_a_chat_is_the_conversation_telegram_chat_id_and_rasa_answers_into_it(bot_servers, fake_telegram):
    """Rasa gives output channels the tracker's sender id (/execute, reminders): the chat gets it."""
    update_id = fake_telegram.next_update_id()
    chat = 8000 + update_id
    assert post(bot_servers, message_update(update_id, chat, "/start")).status_code == 200
    assert conversation(bot_servers, chat)["latest_input_channel"] == "telegram"
    answer = httpx.post(
        f"{bot_servers.rasa_url}/conversations/telegram:{chat}/execute",
        json={"name": "utter_goodbye"},
        params={"token": RASA_TOKEN, "output_channel": "latest"},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    assert replies(fake_telegram, chat) == [GREETING["text"], DOMAIN["responses"]["utter_goodbye"][0]["text"]]


async def test_the_output_channel_sends_to_telegram_conversations_only(fake_telegram):
    settings = TelegramSettings.from_env(
        {"TELEGRAM_BOT_TOKEN": fake_telegram.token, "TELEGRAM_API_URL": fake_telegram.base_url}
    )
    async with settings.bot() as bot:
        with pytest.raises(ValueError, match="does not belong to the telegram channel"):
            await TelegramOutput(bot).send_text_message("rest:7040", "hello")
    assert not fake_telegram.sent("sendMessage", 7040)


def test_the_bot_token_never_reaches_the_rasa_log(bot_servers, fake_telegram):
    chat = 7050
    assert post(bot_servers, message_update(fake_telegram.next_update_id(), chat, "/start")).status_code == 200
    assert replies(fake_telegram, chat)  # Bot API calls were made, each with the token in its URL
    log = (Path(bot_servers.supervisor.log_dir) / "rasa.log").read_text(errors="replace")
    assert log and fake_telegram.token not in log


def test_the_bot_token_is_hidden_in_any_log_record(caplog):
    token = "654321:another-fake-token"
    hide_in_logs(token)
    with caplog.at_level(logging.INFO):
        logging.getLogger("telegram.test").info("GET https://api.telegram.org/bot%s/getMe", token)
        try:
            raise RuntimeError(f"could not reach https://api.telegram.org/bot{token}/getMe")
        except RuntimeError:
            logging.getLogger("telegram.test").exception("failed")
    assert "bot[TOKEN]/getMe" in caplog.text and token not in caplog.text

"""Rasa input channel for Telegram on python-telegram-bot (Rasa's bundled one uses aiogram 2).

One code path for every update: Telegram's webhook POSTs to /webhooks/telegram/webhook, and
`python -m bot telegram` (long polling, no public URL needed) POSTs what it fetches to the same
route. The route checks Telegram's secret-token header (403 otherwise), answers text, button
presses (inline keyboards whose callback data is the button's payload) and /start (the greeting);
photos, stickers and edited messages get a polite answer, other updates are ignored (a debug line).
An update that could not be answered is an ERROR line naming its update_id.

A chat's conversation id is `telegram:<chat id>` (bot/channels/identity.py), so no other channel's
client can name it; the bot token, part of every Bot API URL, is `[TOKEN]` in the logs.
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import Any, Awaitable, Callable, Dict, List, Optional, Text

from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode
from telegram.error import TelegramError

from bot.channels.admission import in_turn
from bot.channels.identity import conversation_id, local_id
from bot.channels.text import user_text
from bot.telegram.format import split_message, to_markdown_v2
from bot.telegram.log_secrets import hide_in_logs
from bot.telegram.settings import ALLOWED_UPDATES, SECRET_HEADER, WEBHOOK_PATH, TelegramSettings

logger = logging.getLogger(__name__)

GREETING = "/greet"  # what /start means: Rasa's shortcut for the `greet` intent
ONLY_TEXT = "Sorry, I can only read text messages. Please type your question."
NO_EDITS = "I saw you edited a message. I only read new messages, so please send it again."
CALLBACK_DATA_LIMIT = 64  # bytes Telegram allows in a button's callback data


class TelegramOutput(OutputChannel):
    """Sends the bot's answers with the Bot API: text in pieces of at most 4096 characters,
    buttons as an inline keyboard under the last piece, images as photos. The recipient is a
    conversation id, `telegram:<chat id>`: Rasa hands output channels the tracker's sender id."""

    @classmethod
    def name(cls) -> Text:
        return "telegram"

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def send_text_message(self, recipient_id: Text, text: Text, **kwargs: Any) -> None:
        await self._send_text(recipient_id, text)

    async def send_text_with_buttons(
        self, recipient_id: Text, text: Text, buttons: List[Dict[Text, Any]], **kwargs: Any
    ) -> None:
        await self._send_text(recipient_id, text, _keyboard(buttons))

    async def send_image_url(self, recipient_id: Text, image: Text, **kwargs: Any) -> None:
        await self.bot.send_photo(local_id(self.name(), recipient_id), image)

    async def _send_text(self, recipient_id: Text, text: Text, keyboard: Optional[InlineKeyboardMarkup] = None) -> None:
        chat_id = local_id(self.name(), recipient_id)
        pieces = split_message(text) or ["…"]  # buttons need a message to hang on
        for number, piece in enumerate(pieces, start=1):
            await self.bot.send_message(
                chat_id,
                to_markdown_v2(piece),
                parse_mode=ParseMode.MARKDOWN_V2,
                reply_markup=keyboard if number == len(pieces) else None,
            )


def _keyboard(buttons: List[Dict[Text, Any]]) -> Optional[InlineKeyboardMarkup]:
    rows = []
    for button in buttons:
        payload = str(button.get("payload", ""))
        if not payload or len(payload.encode()) > CALLBACK_DATA_LIMIT:
            logger.warning(
                f"Telegram: left out button {button.get('title')!r}: its payload {payload!r} "
                f"must be 1-{CALLBACK_DATA_LIMIT} bytes to fit Telegram's callback data"
            )
            continue
        rows.append([InlineKeyboardButton(str(button.get("title") or payload), callback_data=payload)])
    return InlineKeyboardMarkup(rows) if rows else None


def _is_start_command(text: str) -> bool:
    """/start, /start@OurBot or /start <deep-link parameter>: what Telegram sends on "Start"."""
    words = text.split(maxsplit=1)
    return bool(words) and words[0].split("@")[0] == "/start"


class TelegramInput(InputChannel):
    """The `bot.telegram.channel.TelegramInput` entry of credentials.yml (settings: environment)."""

    @classmethod
    def name(cls) -> Text:
        return "telegram"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> InputChannel:
        return cls(TelegramSettings.from_env())

    def __init__(self, settings: Optional[TelegramSettings]) -> None:
        self.settings = settings
        self._bot: Optional[Bot] = None
        if settings is None:
            logger.info(
                "Telegram is off: set TELEGRAM_BOT_TOKEN to connect a Telegram bot (docs/channels.md: Connect a Telegram bot)"
            )

    @property
    def bot(self) -> Bot:
        # Made on first use, inside Sanic's event loop, which its HTTP connections belong to.
        if self._bot is None:
            if self.settings is None:
                raise RuntimeError("Telegram is off: set TELEGRAM_BOT_TOKEN")
            self._bot = self.settings.bot()
        return self._bot

    def get_output_channel(self) -> Optional[OutputChannel]:
        return TelegramOutput(self.bot) if self.settings else None

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        on_new_message = in_turn(on_new_message)
        telegram = Blueprint("telegram_webhook", __name__)

        @telegram.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok" if self.settings else "off"})

        @telegram.route("/webhook", methods=["POST"])
        async def webhook(request: Request) -> HTTPResponse:
            if self.settings is None:
                return response.json({"error": "Telegram is off: the bot runs without TELEGRAM_BOT_TOKEN"}, status=503)
            given = (request.headers.get(SECRET_HEADER) or "").encode()
            if not hmac.compare_digest(given, self.settings.secret_token.encode()):
                return response.json({"error": f"missing or wrong {SECRET_HEADER} header"}, status=403)
            update = self._parse(request.body)
            if update is None:
                return response.json({"error": "the body is not a Telegram Update object"}, status=400)
            # A failed update is answered 200 all the same: Telegram repeats a webhook call answered
            # otherwise, and `python -m bot telegram` retries a 5xx until it passes, holding back every
            # update after it. An update that fails for good (the user blocked the bot, a bug) would
            # only fail again; the ERROR line is where it shows.
            try:
                await self.handle(update, on_new_message)
            except TelegramError as error:
                logger.error(
                    f"Telegram update {update.update_id} could not be answered: the Bot API call "
                    f"failed ({type(error).__name__}: {error})"
                )
            except Exception:  # noqa: BLE001 - any bug in answering one update
                logger.exception(f"Telegram update {update.update_id} could not be answered")
            return response.json({"ok": True})

        settings = self.settings
        if settings:

            @telegram.listener("before_server_start")
            async def hide_token(*_: Any) -> None:
                # Here, not earlier: Sanic sets up its own log handlers when Rasa creates the app.
                hide_in_logs(settings.token)

        if settings and settings.webhook_url:

            @telegram.listener("after_server_start")
            async def on_server_start(*_: Any) -> None:
                await self.register_webhook()

        return telegram

    def _parse(self, body: bytes) -> Optional[Update]:
        try:
            data = json.loads(body)
            if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
                return None
            return Update.de_json(data, self.bot)
        except Exception as error:  # noqa: BLE001 - any malformed field of any update type
            logger.debug(f"Telegram: rejected a malformed update: {error!r}")
            return None

    async def register_webhook(self) -> None:
        """Tell Telegram to POST updates to TELEGRAM_WEBHOOK_URL with our secret header."""
        if self.settings is None or not self.settings.webhook_url:
            return
        url = self.settings.webhook_url
        try:
            await self.bot.set_webhook(url, secret_token=self.settings.secret_token, allowed_updates=ALLOWED_UPDATES)
            logger.info(f"Telegram: webhook set to {url}")
        except TelegramError as error:
            logger.error(
                f"Telegram: setting the webhook to {url} failed ({error}); check TELEGRAM_WEBHOOK_URL "
                f"(a public https URL ending in {WEBHOOK_PATH}) and TELEGRAM_BOT_TOKEN"
            )

    async def handle(self, update: Update, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> None:
        """Answer one update: hand text and button payloads to Rasa, reply politely to photos,
        stickers and edits, ignore the rest."""
        output = TelegramOutput(self.bot)
        message = update.message
        query = update.callback_query
        if query and query.data:
            await self._stop_spinner(update)
            chat_id, text = query.message.chat.id if query.message else query.from_user.id, query.data
        elif message and message.text:
            chat_id, text = message.chat.id, GREETING if _is_start_command(message.text) else message.text
        elif message and message.effective_attachment:  # a photo, sticker, voice note...
            await output.send_text_message(conversation_id(self.name(), message.chat.id), ONLY_TEXT)
            return
        elif update.edited_message:
            await output.send_text_message(conversation_id(self.name(), update.edited_message.chat.id), NO_EDITS)
            return
        else:  # someone joined a group, the bot was blocked, a game's button...
            logger.debug(f"Telegram: ignored update {update.update_id} (no text, attachment or button payload)")
            return
        await on_new_message(
            UserMessage(
                user_text(text),
                output,
                conversation_id(self.name(), chat_id),
                input_channel=self.name(),
                metadata={"telegram_update_id": update.update_id},
            )
        )

    async def _stop_spinner(self, update: Update) -> None:
        """Acknowledge a button press. Telegram refuses to for an old press ("query is too old", one
        that waited while the bot was down); the press is answered all the same."""
        if update.callback_query is None:
            return
        try:
            await update.callback_query.answer()
        except TelegramError as error:
            logger.warning(
                f"Telegram: could not acknowledge the button press of update {update.update_id} "
                f"({type(error).__name__}: {error}); answering it anyway"
            )

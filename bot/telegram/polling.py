"""`python -m bot telegram`: long-poll Telegram's getUpdates and hand each update to the running
bot's webhook route, with the secret header, so polling and webhook mode share one code path.

For running without a public URL: nothing has to reach this machine from outside. The bot token,
part of every Bot API URL, is `[TOKEN]` in the logs.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from typing import Awaitable, Optional

import httpx
from telegram import Bot, Update
from telegram.error import InvalidToken, TelegramError

from bot.telegram.log_secrets import hide_in_logs
from bot.telegram.settings import ALLOWED_UPDATES, SECRET_HEADER, WEBHOOK_PATH, TelegramSettings

logger = logging.getLogger(__name__)

POLL_TIMEOUT_S = 30  # how long one getUpdates waits for news (Telegram's long polling)
MAX_BACKOFF_S = 30.0


class PollingStopped(RuntimeError):
    """Polling cannot start or go on; the message says why and what to change."""


def polling_settings() -> TelegramSettings:
    """The settings from the environment, or PollingStopped saying what is missing."""
    settings = TelegramSettings.from_env()
    if settings is None:
        raise PollingStopped(
            "set TELEGRAM_BOT_TOKEN to the token @BotFather gave you (TELEGRAM_BOT_TOKEN=123456:ABC... make telegram)"
        )
    if settings.webhook_url:
        raise PollingStopped(
            "TELEGRAM_WEBHOOK_URL is set, so Telegram delivers updates to that webhook; unset it to poll instead"
        )
    return settings


def main(rasa_url: str) -> int:
    """Poll until Ctrl-C or SIGTERM; 1 with a message on stderr when polling cannot go on."""
    try:
        settings = polling_settings()
        hide_in_logs(settings.token)
        print(f"Polling Telegram for updates; the bot at {rasa_url} answers them. Ctrl-C stops.", flush=True)
        asyncio.run(_until_signalled(poll(settings, rasa_url)))
    except InvalidToken:
        print(
            "Telegram polling stopped: Telegram rejected TELEGRAM_BOT_TOKEN; copy the token from @BotFather again",
            file=sys.stderr,
        )
        return 1
    except PollingStopped as error:
        print(f"Telegram polling stopped: {error}", file=sys.stderr)
        return 1
    return 0


async def _until_signalled(work: Awaitable[None]) -> None:
    task = asyncio.ensure_future(work)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, task.cancel)
    try:
        await task
    except asyncio.CancelledError:
        pass


async def poll(settings: TelegramSettings, rasa_url: str, poll_timeout_s: int = POLL_TIMEOUT_S) -> None:
    """Forward updates until cancelled. An update is confirmed to Telegram (the next getUpdates'
    offset) only after the bot accepted it, so a restart of either side loses nothing."""
    webhook = rasa_url.rstrip("/") + WEBHOOK_PATH
    offset: Optional[int] = None
    async with settings.bot() as bot, httpx.AsyncClient(timeout=120) as rasa:
        # getUpdates and a webhook exclude each other; polling means no webhook.
        await bot.delete_webhook()
        logger.info(f"Telegram: polling for @{bot.username}, answering through {webhook}")
        try:
            backoff = 1.0
            while True:
                try:
                    updates = await bot.get_updates(
                        offset=offset, timeout=poll_timeout_s, allowed_updates=ALLOWED_UPDATES
                    )
                    backoff = 1.0
                except InvalidToken:
                    raise
                except TelegramError as error:  # network trouble, Telegram busy: wait and retry
                    logger.warning(f"Telegram: getUpdates failed ({error}); retrying in {backoff:.0f} s")
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF_S)
                    continue
                for update in updates:
                    await _forward(rasa, webhook, settings.secret_token, update)
                    offset = update.update_id + 1
        finally:
            if offset is not None:
                await _confirm(bot, offset)


async def _forward(rasa: httpx.AsyncClient, webhook: str, secret: str, update: Update) -> None:
    """POST one update to the bot; wait and retry while the bot is down or restarting."""
    backoff = 1.0
    while True:
        try:
            posted = await rasa.post(
                webhook, content=update.to_json(), headers={SECRET_HEADER: secret, "Content-Type": "application/json"}
            )
            answer: Optional[httpx.Response] = posted
            reason = f"HTTP {posted.status_code}: {posted.text[:200]}"
        except httpx.HTTPError as error:
            answer, reason = None, f"{type(error).__name__}: {error}"
        if answer is not None and answer.status_code == 403:
            raise PollingStopped(
                f"the bot at {webhook} refused our secret (403): it runs with another "
                "TELEGRAM_BOT_TOKEN or TELEGRAM_SECRET_TOKEN than this command; use the same"
            )
        if answer is not None and answer.status_code == 503:
            raise PollingStopped(f"the bot at {webhook} has Telegram off (503): start it with TELEGRAM_BOT_TOKEN set")
        if answer is not None and answer.status_code < 500:
            if answer.status_code != 200:
                logger.warning(f"Telegram: the bot rejected update {update.update_id} ({reason}); skipped")
            return
        logger.warning(
            f"Telegram: could not hand update {update.update_id} to {webhook} ({reason}); retrying in {backoff:.0f} s"
        )
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, MAX_BACKOFF_S)


async def _confirm(bot: Bot, offset: int) -> None:
    """Tell Telegram the forwarded updates are done, so they are not delivered again next time."""
    try:
        await bot.get_updates(offset=offset, timeout=0, limit=1)
    except TelegramError as error:
        logger.warning(f"Telegram: could not confirm updates before {offset} ({error}); they may come again")

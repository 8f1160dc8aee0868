"""Telegram settings from the environment, shared by the Rasa channel and the polling command.

Secrets never live in credentials.yml: the token (and optionally the webhook secret) come from
environment variables. Without TELEGRAM_BOT_TOKEN there are no settings and Telegram is off.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from typing import Mapping, Optional

from telegram import Bot

WEBHOOK_PATH = "/webhooks/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
DEFAULT_API_URL = "https://api.telegram.org/bot"
# The update types we answer; Telegram doesn't send the others at all.
ALLOWED_UPDATES = ["message", "edited_message", "callback_query"]
# What Telegram accepts as a webhook secret token.
_SECRET_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


@dataclass(frozen=True)
class TelegramSettings:
    token: str
    secret_token: str
    webhook_url: Optional[str]
    api_url: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Optional["TelegramSettings"]:
        """TELEGRAM_BOT_TOKEN (required, else None), TELEGRAM_SECRET_TOKEN (default: derived from
        the token, so the channel and `python -m bot telegram` agree without more set-up),
        TELEGRAM_WEBHOOK_URL (set: register the webhook at start) and TELEGRAM_API_URL."""
        token = environ.get("TELEGRAM_BOT_TOKEN", "").strip()
        if not token:
            return None
        secret = (
            environ.get("TELEGRAM_SECRET_TOKEN", "").strip()
            or hashlib.sha256(f"telegram-webhook-secret:{token}".encode()).hexdigest()
        )
        if not _SECRET_TOKEN.match(secret):
            raise ValueError(
                "TELEGRAM_SECRET_TOKEN must be 1-256 characters of A-Z, a-z, 0-9, '_' and '-' "
                "(Telegram's rule for webhook secrets); change it or unset it to derive one from the token"
            )
        return cls(
            token=token,
            secret_token=secret,
            webhook_url=environ.get("TELEGRAM_WEBHOOK_URL", "").strip() or None,
            api_url=environ.get("TELEGRAM_API_URL", "").strip() or DEFAULT_API_URL,
        )

    def bot(self) -> Bot:
        """A python-telegram-bot client for this token and Bot API server."""
        return Bot(self.token, base_url=self.api_url)

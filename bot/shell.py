"""`python -m bot shell` (`make shell`): chat in a terminal with the bot that `make run` serves.

A client of the running bot's shell channel (bot/channels/shell.py), so no second Rasa loads the
model and nothing listens for the terminal. Buttons are numbered: typing the number sends the
button's payload. /stop or Ctrl-D ends the chat.
"""

from __future__ import annotations

import uuid
from typing import Callable, Dict, List

import httpx

WEBHOOK = "/webhooks/shell/webhook"
STOP = "/stop"


class BotUnreachable(RuntimeError):
    """The running bot did not answer (not started, or the token is not the one it runs with)."""


def send(rasa_url: str, token: str, sender: str, text: str) -> List[Dict]:
    """The bot's messages in answer to `text` in the conversation shell:<sender>."""
    try:
        answer = httpx.post(
            f"{rasa_url}{WEBHOOK}",
            json={"sender": sender, "message": text},
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )
    except httpx.TransportError as error:
        raise BotUnreachable(
            f"no bot answers at {rasa_url} ({error}): start it with `make run` in another shell"
        ) from error
    if answer.status_code == 401:
        raise BotUnreachable(f"the bot at {rasa_url} refused the token of .run/secrets.env: is it this project's?")
    answer.raise_for_status()
    return answer.json()


def chat(rasa_url: str, token: str, read: Callable[[str], str] = input, write: Callable[[str], None] = print) -> int:
    """Read lines, print the answers, until /stop or the end of input; 1 when the bot is unreachable."""
    sender = uuid.uuid4().hex
    buttons: List[Dict] = []  # the last answer's, numbered from 1
    write(f"Chatting with the bot at {rasa_url} (conversation shell:{sender}). Type {STOP} or press Ctrl-D to end.")
    while True:
        try:
            text = read("Your input -> ").strip()
        except (EOFError, KeyboardInterrupt):
            write("")
            return 0
        if text == STOP:
            return 0
        if not text:
            continue
        if text.isdigit() and 0 < int(text) <= len(buttons):
            text = buttons[int(text) - 1]["payload"]
        try:
            messages = send(rasa_url, token, sender, text)
        except BotUnreachable as error:
            write(f"Cannot chat: {error}")
            return 1
        buttons.clear()
        for message in messages:
            if message.get("text"):
                write(f"Bot: {message['text']}")
            if message.get("image"):
                write(f"Bot: [image] {message['image']}")
            for button in message.get("buttons") or []:
                buttons.append(button)
                write(f"  {len(buttons)}: {button.get('title', button.get('payload'))}")

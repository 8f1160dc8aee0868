"""`python -m bot shell` (`make shell`): chat in a terminal with the bot that `make run` serves.

A client of the running bot's shell channel (bot/channels/shell.py), so no second Rasa loads the
model and nothing listens for the terminal. Buttons are numbered: typing the number sends the
button's payload. /stop or Ctrl-D ends the chat.
"""

from __future__ import annotations

import uuid
from typing import Dict, List

import httpx

WEBHOOK = "/webhooks/shell/webhook"
STOP = "/stop"


class BotUnreachable(RuntimeError):
    """The running bot did not answer (not started, another bot's token, or an error of its own)."""


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
    if answer.is_error:
        raise BotUnreachable(f"the bot at {rasa_url} answered {answer.status_code}: {answer.text[:300]}")
    return answer.json()


def chat(rasa_url: str, token: str) -> int:
    """Read lines, print the answers, until /stop or the end of input; 1 when the bot is unreachable."""
    sender = uuid.uuid4().hex
    buttons: List[Dict] = []  # the last answer's, numbered from 1
    print(f"Chatting with the bot at {rasa_url} (conversation shell:{sender}). Type {STOP} or press Ctrl-D to end.")
    while True:
        try:
            text = input("Your input -> ").strip()
        except (EOFError, KeyboardInterrupt):
            print("")
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
            print(f"Cannot chat: {error}")
            return 1
        buttons.clear()
        for message in messages:
            if message.get("text"):
                print(f"Bot: {message['text']}")
            if message.get("image"):
                print(f"Bot: [image] {message['image']}")
            for button in message.get("buttons") or []:
                buttons.append(button)
                print(f"  {len(buttons)}: {button.get('title', button.get('payload'))}")

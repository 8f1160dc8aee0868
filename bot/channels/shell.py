"""The terminal chat's channel (`make shell`, bot/shell.py): the REST channel under its own name,
`POST /webhooks/shell/webhook`, conversations `shell:<sender>`, open only to Rasa's auth token.

`rasa shell` started a Rasa of its own whose stock REST input took any sender as the conversation
id, on every interface: a caller could post as `telegram:<chat id>` and go on with that customer's
conversation. This channel lives in the running bot instead, so a terminal chat reaches no other
channel's conversations, and nobody without the token reaches the terminal's.
"""

from __future__ import annotations

import hmac
import os
from typing import Optional, Text

from sanic import response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.channels.rest import RestInput
from bot.secrets import RASA_AUTH_TOKEN


class ShellInput(RestInput):
    """The `bot.channels.shell.ShellInput` entry of credentials.yml; calls carry `Authorization: Bearer
    <RASA_AUTH_TOKEN>` (from the environment, as `make run` gives it; unset: every call is refused)."""

    @classmethod
    def name(cls) -> Text:
        return "shell"

    def refusal(self, request: Request) -> Optional[HTTPResponse]:
        token = os.environ.get(RASA_AUTH_TOKEN, "")
        presented = request.headers.get("Authorization", "")
        if token and hmac.compare_digest(presented.encode(), f"Bearer {token}".encode()):
            return None
        return response.json(
            {"error": f"the shell channel answers only calls with 'Authorization: Bearer <{RASA_AUTH_TOKEN}>'"},
            status=401,
            headers={"WWW-Authenticate": "Bearer"},
        )

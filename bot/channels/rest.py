"""The REST channel (`POST /webhooks/rest/webhook {"sender": "...", "message": "..."}`): Rasa's,
with the body checked and the conversation id `rest:<sender>`.

Rasa's own answers a body that is not a JSON object with a 500, runs a missing sender as the
shared conversation "default", and takes the input channel's name from the caller. Here a bad body
is a 400 naming the field, and the sender only ever names a REST conversation.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Dict, Optional, Text

from rasa.core.channels import rest
from rasa.core.channels.channel import UserMessage
from sanic import Blueprint, response
from sanic.exceptions import InvalidUsage
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.channels.admission import in_turn
from bot.channels.identity import MAX_ID_LENGTH, conversation_id
from bot.channels.text import user_text

EXAMPLE = '{"sender": "customer-1", "message": "where is my order 12345?"}'


class BadBody(ValueError):
    """What is wrong with a request body, and which field (None: the body as a whole)."""

    def __init__(self, field: Optional[str], problem: str) -> None:
        super().__init__(problem)
        self.field = field


def checked_body(body: Any) -> Dict[str, Any]:
    """`body` when it is a message Rasa can run, else BadBody saying what to send instead."""
    if not isinstance(body, dict):
        raise BadBody(None, f"the body must be a JSON object like {EXAMPLE}")
    sender, message, metadata = body.get("sender"), body.get("message"), body.get("metadata")
    if not (isinstance(sender, str) and 0 < len(sender) <= MAX_ID_LENGTH and sender.isprintable()):
        raise BadBody(
            "sender",
            f"sender must be a string of 1-{MAX_ID_LENGTH} printable characters that "
            "names the conversation, e.g. your user's id",
        )
    if not isinstance(message, str):
        raise BadBody("message", "message must be a string: the text the user typed")
    if metadata is not None and not isinstance(metadata, dict):
        raise BadBody("metadata", "metadata, if given, must be a JSON object")
    return body


class RestInput(rest.RestInput):
    """The `bot.channels.rest.RestInput` entry of credentials.yml; its route stays /webhooks/rest/webhook."""

    @classmethod
    def name(cls) -> Text:
        return "rest"

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        webhook = super().blueprint(in_turn(on_new_message))

        @webhook.on_request
        async def refuse_bad_requests(request: Request) -> Optional[HTTPResponse]:
            if request.method != "POST":
                return None
            refused = self.refusal(request)
            if refused is not None:
                return refused
            try:
                checked_body(request.json)
            except InvalidUsage:  # not JSON at all
                return _bad_request(BadBody(None, f"the body must be JSON like {EXAMPLE}"))
            except BadBody as error:
                return _bad_request(error)
            return None

        return webhook

    def refusal(self, request: Request) -> Optional[HTTPResponse]:
        """The answer to a caller this channel does not serve, before its body is read (None: served)."""
        return None

    async def _extract_sender(self, request: Request) -> Optional[Text]:
        return conversation_id(self.name(), request.json["sender"])

    def _extract_message(self, request: Request) -> Optional[Text]:
        return user_text(request.json["message"])

    def _extract_input_channel(self, request: Request) -> Text:
        return self.name()


def _bad_request(error: BadBody) -> HTTPResponse:
    return response.json({"error": str(error), "field": error.field}, status=400)

"""The socket.io channel of the web widget: Rasa's, with sessions a client can only resume with the
secret the server issued for them, and the conversation id `socketio:<session id>`.

Rasa's own channel runs whatever session id a client names, so anyone who learns a session id
(a shared screenshot, a log) can read and continue that conversation. Here `session_request` issues
a random session id with its secret, HMAC-SHA256 of the id under SOCKETIO_SESSION_KEY, and resumes
a session only for the matching secret; anything else gets a new session. Messages run in the
session the server confirmed for that socket, whatever session id they name.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import uuid
from typing import Any, Awaitable, Callable, Dict, Optional, Text

from rasa.core.channels import socketio
from rasa.core.channels.channel import UserMessage
from sanic import Blueprint

from bot.channels.admission import in_turn
from bot.channels.identity import MAX_ID_LENGTH, conversation_id
from bot.channels.text import user_text
from bot.secrets import SOCKETIO_SESSION_KEY

MAX_MESSAGE_BYTES = 8 * 1024 * 1024  # a million characters of any script, as JSON

logger = logging.getLogger(__name__)


def _key_from_env() -> bytes:
    key = os.environ.get(SOCKETIO_SESSION_KEY, "")
    if key:
        return key.encode()
    logger.warning(
        f"{SOCKETIO_SESSION_KEY} is not set, so web chats cannot resume their conversation after Rasa "
        f"restarts; `make run` sets it (bot/secrets.py), and replicas need the same value"
    )
    return secrets.token_bytes(32)


class SocketIOInput(socketio.SocketIOInput):
    """The `bot.channels.socketio.SocketIOInput` entry of credentials.yml (Rasa's options; the key
    from the environment). With session_persistence false a session is never resumed."""

    def __init__(self, *args: Any, session_key: Optional[bytes] = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.session_key = session_key or _key_from_env()
        self._sessions: Dict[Text, Text] = {}  # socket id -> the session confirmed to it

    def session_secret(self, session_id: Text) -> Text:
        """What proves a client was given `session_id`: only this server's key makes it."""
        return hmac.new(self.session_key, session_id.encode(), hashlib.sha256).hexdigest()

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        # Rasa's blueprint (its socket.io server, connect with the optional JWT check), with this
        # class's handlers in place of Rasa's for sessions and messages: registering an event again
        # replaces its handler.
        on_new_message = in_turn(on_new_message)
        webhook = super().blueprint(on_new_message)
        sio = self.sio
        # engineio drops a connection whose message exceeds this (1 MB by default): the user would get
        # no answer. Up to MAX_MESSAGE_BYTES is read, and the text then cut like every channel's.
        sio.eio.max_http_buffer_size = MAX_MESSAGE_BYTES

        async def session_request(sid: Text, data: Any = None) -> None:
            session_id = self._resumable(data) or uuid.uuid4().hex
            previous = self._sessions.get(sid)
            if previous:
                sio.leave_room(sid, conversation_id(self.name(), previous), namespace=self.namespace)
            self._sessions[sid] = session_id
            # Rasa's output channel sends to the room named by the tracker's sender id.
            sio.enter_room(sid, conversation_id(self.name(), session_id), namespace=self.namespace)
            await sio.emit(
                "session_confirm",
                {"session_id": session_id, "session_secret": self.session_secret(session_id)},
                room=sid,
                namespace=self.namespace,
            )

        async def user_uttered(sid: Text, data: Any = None) -> None:
            session_id = self._sessions.get(sid)
            if session_id is None:
                logger.debug("socket.io: dropped a message from a socket without a session; send session_request first")
                return
            if not isinstance(data, dict) or not isinstance(data.get("message"), str):
                logger.debug('socket.io: dropped a message not shaped {"message": "<text>"}')
                return
            metadata = data.get(self.metadata_key)
            if metadata is not None and not isinstance(metadata, dict):
                logger.debug(f"socket.io: dropped a message whose {self.metadata_key!r} is not an object")
                return
            await on_new_message(
                UserMessage(
                    user_text(data["message"]),
                    socketio.SocketIOOutput(sio, self.bot_message_evt),
                    conversation_id(self.name(), session_id),
                    input_channel=self.name(),
                    metadata=metadata,
                )
            )

        async def disconnect(sid: Text) -> None:
            self._sessions.pop(sid, None)

        sio.on("session_request", session_request, namespace=self.namespace)
        sio.on(self.user_message_evt, user_uttered, namespace=self.namespace)
        sio.on("disconnect", disconnect, namespace=self.namespace)
        return webhook

    def _resumable(self, data: Any) -> Optional[Text]:
        """The session id `data` names, if session_persistence is on and `data` has its secret."""
        if not (self.session_persistence and isinstance(data, dict)):
            return None
        session_id, secret = data.get("session_id"), data.get("session_secret")
        if not (isinstance(session_id, str) and 0 < len(session_id) <= MAX_ID_LENGTH and isinstance(secret, str)):
            return None
        return session_id if hmac.compare_digest(secret.encode(), self.session_secret(session_id).encode()) else None

"""Conversation ids namespaced by channel: `rest:<sender>`, `socketio:<session id>`, `telegram:<chat id>`.

Each channel hands Rasa an id its client names or was given. Without the channel in front, a REST
caller naming a Telegram chat id got that chat's conversation, verified email included; with it,
an id claimed on one channel never reaches another channel's conversations.
"""

from __future__ import annotations

MAX_ID_LENGTH = 128  # characters of the id a client names (a REST sender, a socket.io session id)


def conversation_id(channel: str, local_id: object) -> str:
    """The tracker's sender id for `local_id` on `channel`."""
    return f"{channel}:{local_id}"


def local_id(channel: str, conversation: str) -> str:
    """The id `channel` knows the conversation by (a Telegram chat id), for output channels, which
    Rasa gives the tracker's sender id; ValueError for another channel's conversation."""
    prefix = f"{channel}:"
    if not conversation.startswith(prefix):
        raise ValueError(
            f"conversation {conversation!r} does not belong to the {channel} channel "
            f"(its id would start with {prefix!r}); send through the channel it came from"
        )
    return conversation[len(prefix) :]

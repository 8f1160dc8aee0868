"""The bad-input corpus: what users and strangers may send the bot, as data, and JSON bodies that
carry it exactly (lone surrogates included) to the REST, socket.io and Telegram channels.

`TEXTS` are user messages: each must get a polite answer on every channel. `REST_GARBAGE` and
`TELEGRAM_GARBAGE` are requests no client should send: each must get a clear 4xx JSON error.
`SOCKETIO_GARBAGE` are `user_uttered` payloads that cannot be a message: socket.io has no error
replies, so the channel drops them and the session goes on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Dict, Tuple

# Sanic's default REQUEST_MAX_SIZE (100 MB), which Rasa's server keeps: a body announcing more is
# refused before it is read.
SERVER_MAX_BODY = 100_000_000


@dataclass(frozen=True)
class Text:
    """A user message. `verbatim`: nothing in it is redacted, cleaned or cut, so the conversation
    log must store exactly this text (elsewhere only the events are counted)."""

    name: str
    text: str
    verbatim: bool = False
    channels: Tuple[str, ...] = ("rest", "socketio", "telegram")


TEXTS = [
    Text("empty", "", channels=("rest", "socketio")),  # Telegram's texts are 1-4096 characters
    Text("whitespace", " \t\n \u00a0\u3000 "),
    Text("100k token", "1234567890" * 10_000),  # one 100 KB token of digits: the redactor's worst case
    Text("1M words", "where is my order 12345? " * 40_000),
    Text("NUL and controls", "where\x00 is\x01 my\x07 order\x1b[31m 12345\x7f?\x0b\x0c\x08"),
    Text("Arabic with bidi marks", "\u200fأين طلبي؟ \u202bأريد استرداد المبلغ\u202c\u200f", verbatim=True),
    Text("Hebrew with an override", "\u202eאיפה ההזמנה שלי\u202c \u2067שלום\u2069 \u200e", verbatim=True),
    Text(
        "emoji and ZWJ sequences",
        "👨\u200d👩\u200d👧\u200d👦 🏳\ufe0f\u200d🌈 👍🏽 where is my order? 😀🙏",
        verbatim=True,
    ),
    Text("3000 CJK characters", ("我的订单在哪里？请帮我查一下。" * 200)[:3000], verbatim=True),
    Text("SQL drop table", "'; DROP TABLE orders; --", verbatim=True),
    Text("SQL always true", "1 OR 1=1", verbatim=True),
    Text("script tag", "<script>alert(1)</script>", verbatim=True),
    Text("img onerror", "<img src=x onerror=alert(1)>", verbatim=True),
    Text("lone surrogates", "where is \ud800 my order \udfff?"),
]


def json_bytes(value: Any) -> bytes:
    """`value` as JSON with every non-ASCII character escaped, so a lone surrogate travels as the
    escape `\\ud800` JSON allows (UTF-8 cannot carry it)."""
    return json.dumps(value, ensure_ascii=True).encode("ascii")


@dataclass(frozen=True)
class Garbage:
    """A request body (and headers) a channel must refuse with `status` and a JSON error."""

    name: str
    body: bytes
    status: int
    headers: Dict[str, str] = field(default_factory=dict)


REST_GARBAGE = [
    Garbage("array", b"[]", 400),
    Garbage("string", b'"x"', 400),
    Garbage("number", b"1", 400),
    Garbage("null", b"null", 400),
    Garbage("sender a number", json_bytes({"sender": 7, "message": "hi"}), 400),
    Garbage("sender a list", json_bytes({"sender": ["a"], "message": "hi"}), 400),
    Garbage("sender null", json_bytes({"sender": None, "message": "hi"}), 400),
    Garbage("message a number", json_bytes({"sender": "garbage", "message": 1}), 400),
    Garbage("message an object", json_bytes({"sender": "garbage", "message": {"text": "hi"}}), 400),
    Garbage("message missing", json_bytes({"sender": "garbage"}), 400),
    Garbage("invalid JSON", b'{"sender": "garbage", "message": "hi"', 400),
    Garbage("not UTF-8", b'{"sender": "garbage", "message": "\xff\xfe"}', 400),
]

TELEGRAM_GARBAGE = [
    # The secret header is added by the test unless the item's headers name it.
    Garbage(
        "forged: wrong secret",
        json_bytes({"update_id": 1, "message": {"message_id": 1, "text": "hi"}}),
        403,
        {"X-Telegram-Bot-Api-Secret-Token": "forged-secret"},
    ),
    Garbage("forged: no secret", json_bytes({"update_id": 1}), 403, {"X-Telegram-Bot-Api-Secret-Token": ""}),
    Garbage("invalid JSON", b'{"update_id": 1, "message": {', 400),
    Garbage("an array", b"[]", 400),
    Garbage("update_id a string", json_bytes({"update_id": "7"}), 400),
    Garbage("message a string", json_bytes({"update_id": 7, "message": "oops"}), 400),
    Garbage("message without chat", json_bytes({"update_id": 7, "message": {"message_id": 1, "text": "hi"}}), 400),
]

# An oversized body goes to both HTTP channels; the test announces it in Content-Length and streams it.
OVERSIZED = SERVER_MAX_BODY + 1

SOCKETIO_GARBAGE = [
    ("a string", "where is my order?"),
    ("a list", ["hi"]),
    ("a number", 1),
    ("message a number", {"message": 1}),
    ("message an object", {"message": {"text": "hi"}}),
    ("no message", {"text": "hi"}),
    ("metadata a string", {"message": "hi", "metadata": "x"}),
]

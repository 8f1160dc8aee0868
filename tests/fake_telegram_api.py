"""A local stand-in for Telegram's Bot API, speaking its HTTP protocol on 127.0.0.1.

python-telegram-bot talks to it through `base_url` (TELEGRAM_API_URL), so the channel and the
polling command run unchanged while no test touches Telegram's servers. It implements what the bot
uses (getMe, getUpdates with long polling and offsets, setWebhook, deleteWebhook, sendMessage,
sendPhoto, answerCallbackQuery), rejects what Telegram would reject (MarkdownV2 with unescaped
characters, texts over 4096 characters, getUpdates while a webhook is set) and records every call.
`refusing()` makes it answer chosen calls with an error, like a chat whose user blocked the bot.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, Iterator, List, Optional
from urllib.parse import parse_qsl, urlsplit

TOKEN = "123456:TEST-fake-token"
BOT_USER = {"id": 123456, "is_bot": True, "first_name": "Support", "username": "support_test_bot"}
JSON_FIELDS = {"reply_markup", "allowed_updates", "entities"}
INT_FIELDS = {"offset", "limit", "timeout", "chat_id"}

# MarkdownV2 (https://core.telegram.org/bots/api#markdownv2-style): outside entities every one of
# these characters must be escaped with a backslash.
_RESERVED = set("_*[]()~`>#+-=|{}.!\\")
_ENTITY = re.compile(
    r"\\(?P<escaped>[\x21-\x7e])"
    r"|\*(?P<bold>(?:\\.|[^*\\])+)\*"
    r"|_(?P<italic>(?:\\.|[^_\\])+)_"
    r"|`(?:\\[`\\]|[^`\\])+`"
    r"|\[(?P<label>(?:\\.|[^\]\\])+)\]\((?:\\[)\\]|[^)\\])+\)"
)


def markdown_v2_error(text: str) -> Optional[str]:
    """Telegram's answer to a MarkdownV2 text it can't parse, or None when it is fine."""
    done = 0
    for match in _ENTITY.finditer(text):
        for position, character in enumerate(text[done : match.start()], start=done):
            if character in _RESERVED:
                return (
                    f"Bad Request: can't parse entities: Character '{character}' is reserved and must be escaped "
                    f"with the preceding '\\' (offset {position})"
                )
        inner = match["bold"] or match["italic"] or match["label"]
        if inner and markdown_v2_error(inner):
            return markdown_v2_error(inner)
        done = match.end()
    leftover = [c for c in text[done:] if c in _RESERVED]
    return f"Bad Request: can't parse entities: Character '{leftover[0]}' is reserved" if leftover else None


def visible_length(markdown_v2: str) -> int:
    """Length after entity parsing, which is what Telegram's 4096 limit counts."""
    return len(re.sub(r"\\(.)", r"\1", re.sub(r"(?<!\\)\]\([^)]*\)|(?<!\\)[*_`\[\]]", "", markdown_v2)))


@dataclass
class Call:
    method: str
    params: Dict[str, Any]


class FakeTelegramApi:
    """Start with `start()`; `base_url` goes into TELEGRAM_API_URL."""

    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.calls: List[Call] = []
        self.webhook: Optional[Dict[str, Any]] = None
        self._updates: List[Dict[str, Any]] = []
        self._changed = threading.Condition()
        self._update_ids = itertools.count(1000)
        self._message_ids = itertools.count(1)
        self._refusals: List[_Refusal] = []
        self._server: Optional[ThreadingHTTPServer] = None

    @property
    def server(self) -> ThreadingHTTPServer:
        assert self._server is not None, "start() the fake first"
        return self._server

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/bot"

    def start(self) -> "FakeTelegramApi":
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="fake-telegram-api", daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # What tests use -----------------------------------------------------------------------------

    def next_update_id(self) -> int:
        return next(self._update_ids)

    def queue_update(self, update: Dict[str, Any]) -> None:
        """Make `update` the answer of the next getUpdates (long polling)."""
        with self._changed:
            self._updates.append(update)
            self._changed.notify_all()

    def pending_updates(self) -> List[Dict[str, Any]]:
        with self._changed:
            return list(self._updates)

    def sent(self, method: str, chat_id: Optional[int] = None) -> List[Dict[str, Any]]:
        with self._changed:
            return [
                c.params
                for c in self.calls
                if c.method == method and (chat_id is None or c.params.get("chat_id") == chat_id)
            ]

    @contextmanager
    def refusing(self, method: str, code: int, description: str, **params: Any) -> Iterator[None]:
        """Inside the block, answer calls of `method` with these `params` (e.g. chat_id=42) with
        Telegram's error `code` and `description`; the calls are still recorded."""
        refusal = _Refusal(method, params, _ApiError(code, description))
        with self._changed:
            self._refusals.append(refusal)
        try:
            yield
        finally:
            with self._changed:
                self._refusals.remove(refusal)

    def wait_for(self, condition: Callable[[], Any], timeout_s: float = 30.0) -> Any:
        """Block until condition() is truthy (checked after every call the fake receives)."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while not (result := condition()):
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"timed out after {timeout_s} s; calls so far: {self.calls[-10:]}"
                self._changed.wait(min(remaining, 0.5))
        return result

    # The Bot API ---------------------------------------------------------------------------------

    def call(self, method: str, params: Dict[str, Any]) -> Any:
        """Result of one API call; raises _ApiError like Telegram answers errors."""
        with self._changed:
            self.calls.append(Call(method, params))
            self._changed.notify_all()
            refusal = next((r for r in self._refusals if r.matches(method, params)), None)
        if refusal:
            raise refusal.error
        if method == "getUpdates":
            return self._get_updates(params)
        if method == "getMe":
            return BOT_USER
        if method == "setWebhook":
            self.webhook = params
            return True
        if method == "deleteWebhook":
            self.webhook = None
            return True
        if method == "answerCallbackQuery":
            _require(params, "callback_query_id")
            return True
        if method in ("sendMessage", "sendPhoto"):
            return self._send(method, params)
        raise _ApiError(404, "Not Found: method not found")

    def _get_updates(self, params: Dict[str, Any]) -> List[Dict[str, Any]]:
        if self.webhook:
            raise _ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset, limit = params.get("offset", 0), params.get("limit", 100)
        deadline = time.monotonic() + params.get("timeout", 0)
        with self._changed:
            # A call with an offset confirms every update before it: Telegram forgets them.
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
            while not self._updates and time.monotonic() < deadline:
                self._changed.wait(deadline - time.monotonic())
            return self._updates[:limit]

    def _send(self, method: str, params: Dict[str, Any]) -> Dict[str, Any]:
        _require(params, "chat_id", "text" if method == "sendMessage" else "photo")
        text = params.get("text", "")
        if params.get("parse_mode") == "MarkdownV2" and (error := markdown_v2_error(text)):
            raise _ApiError(400, error)
        if method == "sendMessage" and not (0 < visible_length(text) <= 4096):
            raise _ApiError(
                400, "Bad Request: message is too long" if text.strip() else "Bad Request: message text is empty"
            )
        message = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "from": BOT_USER,
            "chat": {"id": params["chat_id"], "type": "private"},
        }
        if method == "sendMessage":
            message["text"] = text
        else:
            message["photo"] = [{"file_id": "photo-1", "file_unique_id": "p1", "width": 1, "height": 1}]
        return message


class _ApiError(Exception):
    def __init__(self, code: int, description: str) -> None:
        super().__init__(description)
        self.code, self.description = code, description


@dataclass
class _Refusal:
    method: str
    params: Dict[str, Any]
    error: _ApiError

    def matches(self, method: str, params: Dict[str, Any]) -> bool:
        return method == self.method and all(params.get(k) == v for k, v in self.params.items())


def _require(params: Dict[str, Any], *names: str) -> None:
    for name in names:
        if name not in params:
            raise _ApiError(400, f"Bad Request: {name} is empty")


def _handler_for(api: FakeTelegramApi) -> type:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802
            self._answer()

        def do_POST(self) -> None:  # noqa: N802
            self._answer()

        def _answer(self) -> None:
            url = urlsplit(self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            match = re.fullmatch(r"/bot(?P<token>[^/]+)/(?P<method>\w+)", url.path)
            try:
                if not match or match["token"] != api.token:
                    raise _ApiError(401 if match else 404, "Unauthorized" if match else "Not Found")
                params = _params(url.query, body, self.headers.get("Content-Type", ""))
                payload = {"ok": True, "result": api.call(match["method"], params)}
                status = 200
            except _ApiError as error:
                payload = {"ok": False, "error_code": error.code, "description": error.description}
                status = error.code
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def _params(query: str, body: bytes, content_type: str) -> Dict[str, Any]:
    """Parameters as Telegram reads them: query string, then a form or JSON body."""
    params: Dict[str, Any] = dict(parse_qsl(query))
    if "application/json" in content_type and body:
        params.update(json.loads(body))
    else:
        params.update(parse_qsl(body.decode()))
    for name, value in list(params.items()):
        if isinstance(value, str) and name in JSON_FIELDS:
            params[name] = json.loads(value)
        elif isinstance(value, str) and name in INT_FIELDS and re.fullmatch(r"-?\d+", value):
            params[name] = int(value)
    return params


# Updates as Telegram sends them -------------------------------------------------------------------


def user(chat_id: int) -> Dict[str, Any]:
    return {"id": chat_id, "is_bot": False, "first_name": "Test", "language_code": "en"}


def message_update(
    update_id: int, chat_id: int, text: Optional[str] = None, kind: str = "message", **content: Any
) -> Dict[str, Any]:
    """A `message` (or `edited_message`) update; `content` adds e.g. a sticker or photo."""
    message = {
        "message_id": update_id,
        "date": int(time.time()),
        "chat": {"id": chat_id, "type": "private"},
        "from": user(chat_id),
        **content,
    }
    if text is not None:
        message["text"] = text
        if text.startswith("/"):
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
    if kind == "edited_message":
        message["edit_date"] = int(time.time())
    return {"update_id": update_id, kind: message}


def callback_update(update_id: int, chat_id: int, data: str) -> Dict[str, Any]:
    """A press on an inline keyboard button under one of the bot's messages."""
    return {
        "update_id": update_id,
        "callback_query": {
            "id": f"cq-{update_id}",
            "from": user(chat_id),
            "chat_instance": "1",
            "data": data,
            "message": {
                "message_id": 1,
                "date": int(time.time()),
                "chat": {"id": chat_id, "type": "private"},
                "from": BOT_USER,
                "text": "buttons",
            },
        },
    }

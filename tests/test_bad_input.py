"""The bad-input corpus (tests/bad_input.py) through REST, socket.io and Telegram on the real bot:
no crash, no hang, no lost event, and no slowdown for anybody else.

The corpus runs once, in a thread, while another REST conversation ("the bystander") keeps
chatting; the tests then judge what was recorded:
- every text is answered within ANSWER_BOUND_S (5 s, the 1M-character one included) with at least
  one non-empty bot message (2xx), and every transport-level piece of garbage gets a 4xx JSON
  error within that bound (socket.io, which has no error replies: is dropped, and the session
  goes on);
- Rasa and the action server are the same processes afterwards and still answer;
- the bystander's p99 reply time while the corpus runs is at most 2x its p99 before, plus
  LATENCY_FLOOR_S;
- the conversation log holds every user message sent and every bot answer received, per
  conversation, and exactly the text sent where nothing in it is redacted, cleaned or cut.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, List, Optional, Tuple

import httpx
import numpy as np
import pytest
import socketio

from bot.telegram.settings import SECRET_HEADER, WEBHOOK_PATH, TelegramSettings
from tests.bad_input import (
    OVERSIZED,
    REST_GARBAGE,
    SOCKETIO_GARBAGE,
    TELEGRAM_GARBAGE,
    TEXTS,
    Garbage,
    Text,
    json_bytes,
)
from tests.fake_telegram_api import message_update

REST_PATH = "/webhooks/rest/webhook"
# Measured on this project's 2-core machine: the slowest text (1M characters, or an emoji message
# that starts a form) took 1.0 s with the machine to itself and 1.8 s with two other suites running;
# 3x the latter. (The channels keep 10,000 characters; the NLU tokenizes at most max_chars of them.)
ANSWER_BOUND_S = 5.0
HANG_S = 3 * ANSWER_BOUND_S  # a request unanswered this long is a hang; the corpus goes on with the next item
# p99 of 20 replies is their maximum: one ordinary reply (~0.2 s) more, for a bystander's message
# queued behind one corpus message on 2 shared cores, is noise, not a slowdown. Measured p99: 0.16-0.22 s
# before, 0.27-0.49 s during.
LATENCY_FLOOR_S = 0.2
BYSTANDER_TEXTS = ["hi", "how long does shipping take?", "thank you", "what are your opening hours?"]
SAMPLES = 20
QUIET_S = 1.0  # socket.io has no end-of-answer marker: an answer is complete after this long without a message
STORE_WAIT_S = 5.0  # how long the log may take to show a conversation's last events (socket.io saves after sending)


@dataclass
class Outcome:
    """What one corpus item got on one channel."""

    channel: str
    item: str
    conversation: Optional[str]  # the id the conversation log stores it under (None: nothing may be stored)
    user_messages: int = 1  # user events the log must hold for the conversation
    texts: List[str] = field(default_factory=list)  # user texts the log must hold exactly (verbatim items)
    seconds: float = 0.0
    status: Optional[int] = None  # HTTP status (socket.io: None)
    body: Any = None  # the parsed JSON answer of an HTTP channel
    answers: List[str] = field(default_factory=list)  # texts of the bot messages received
    failure: Optional[str] = None  # an exception instead of an answer (a hang, a dropped connection)


class Corpus:
    """Sends the whole corpus through the three channels, one Outcome per item and channel."""

    def __init__(self, servers, fake_telegram) -> None:
        self.servers, self.fake_telegram = servers, fake_telegram
        self.run_id = uuid.uuid4().hex[:8]
        settings = TelegramSettings.from_env(servers.env)
        assert settings, "the test servers run with a Telegram token"
        self.secret = settings.secret_token
        self.outcomes: Dict[Tuple[str, str], Outcome] = {}
        self.error: Optional[Exception] = None

    def send_all(self) -> None:
        """The whole corpus, in this thread's own event loop; an error that stops it is kept in `error`."""
        try:
            asyncio.run(self._send_all())
        except Exception as error:  # noqa: BLE001 - the fixture fails with it once the bystander is done
            self.error = error

    async def _send_all(self) -> None:
        async with httpx.AsyncClient(base_url=self.servers.rasa_url, timeout=HANG_S) as client:
            for index, item in enumerate(TEXTS):
                if "rest" in item.channels:
                    await self.rest_text(client, index, item)
                if "telegram" in item.channels:
                    await self.telegram_text(client, index, item)
            for garbage in REST_GARBAGE:
                await self.rest_garbage(client, garbage)
            for garbage in TELEGRAM_GARBAGE:
                await self.telegram_garbage(client, garbage)
        for channel, path in (("rest", REST_PATH), ("telegram", WEBHOOK_PATH)):
            await self.oversized(channel, path)
        for item in TEXTS:
            if "socketio" in item.channels:
                await self.socketio_text(item)
        for name, payload in SOCKETIO_GARBAGE:
            await self.socketio_garbage(name, payload)
        await self.socketio_without_session()

    async def _timed(self, outcome: Outcome, request: Awaitable[Any]) -> Any:
        """`request`'s result (None if it failed), timed into `outcome`; an exception is the outcome's failure."""
        self.outcomes[(outcome.channel, outcome.item)] = outcome
        started = time.perf_counter()
        try:
            return await asyncio.wait_for(request, HANG_S)
        except Exception as error:  # noqa: BLE001 - recorded here, judged by the tests
            outcome.failure = f"{type(error).__name__}: {error}"
            return None
        finally:
            outcome.seconds = time.perf_counter() - started

    # REST ----------------------------------------------------------------------------------------

    async def rest_text(self, client: httpx.AsyncClient, index: int, item: Text) -> None:
        sender = f"bad-input-{self.run_id}-{index}"
        outcome = Outcome("rest", item.name, f"rest:{sender}", texts=[item.text] if item.verbatim else [])
        answer = await self._timed(
            outcome,
            client.post(
                REST_PATH,
                content=json_bytes({"sender": sender, "message": item.text}),
                headers={"Content-Type": "application/json"},
            ),
        )
        if answer is not None:
            outcome.status, outcome.body = answer.status_code, _json(answer)
            if isinstance(outcome.body, list):
                outcome.answers = [message.get("text") or "" for message in outcome.body]

    async def rest_garbage(self, client: httpx.AsyncClient, garbage: Garbage) -> None:
        # Garbage bodies that name a sender name "garbage": the log must hold nothing for it.
        outcome = Outcome("rest", garbage.name, "rest:garbage", user_messages=0)
        answer = await self._timed(
            outcome,
            client.post(
                REST_PATH, content=garbage.body, headers={"Content-Type": "application/json", **garbage.headers}
            ),
        )
        if answer is not None:
            outcome.status, outcome.body = answer.status_code, _json(answer)

    # Telegram ------------------------------------------------------------------------------------

    async def telegram_text(self, client: httpx.AsyncClient, index: int, item: Text) -> None:
        chat = 6_000_000 + int(self.run_id, 16) % 1_000_000 * 100 + index
        outcome = Outcome("telegram", item.name, f"telegram:{chat}", texts=[item.text] if item.verbatim else [])
        update = message_update(self.fake_telegram.next_update_id(), chat, item.text)
        answer = await self._timed(
            outcome,
            client.post(
                WEBHOOK_PATH,
                content=json_bytes(update),
                headers={"Content-Type": "application/json", SECRET_HEADER: self.secret},
            ),
        )
        if answer is not None:
            outcome.status, outcome.body = answer.status_code, _json(answer)
            outcome.answers = [
                sent.get("text") or sent.get("photo") or ""
                for method in ("sendMessage", "sendPhoto")
                for sent in self.fake_telegram.sent(method, chat)
            ]

    async def telegram_garbage(self, client: httpx.AsyncClient, garbage: Garbage) -> None:
        outcome = Outcome("telegram", garbage.name, None, user_messages=0)
        headers = {"Content-Type": "application/json", SECRET_HEADER: self.secret, **garbage.headers}
        answer = await self._timed(outcome, client.post(WEBHOOK_PATH, content=garbage.body, headers=headers))
        if answer is not None:
            outcome.status, outcome.body = answer.status_code, _json(answer)

    # Both HTTP channels ----------------------------------------------------------------------------

    async def oversized(self, channel: str, path: str) -> None:
        """A body announced larger than the server takes: the start of it is sent, then the answer read."""
        outcome = Outcome(channel, "oversized body", None, user_messages=0)
        answer = await self._timed(outcome, asyncio.to_thread(self._post_oversized, path))
        if answer is not None:
            outcome.status, outcome.body = answer

    def _post_oversized(self, path: str) -> Tuple[int, Any]:
        connection = http.client.HTTPConnection(
            httpx.URL(self.servers.rasa_url).host, httpx.URL(self.servers.rasa_url).port, timeout=HANG_S
        )
        try:
            connection.putrequest("POST", path)
            for name, value in (
                ("Content-Type", "application/json"),
                ("Content-Length", str(OVERSIZED)),
                (SECRET_HEADER, self.secret),
            ):
                connection.putheader(name, value)
            connection.endheaders()
            try:
                connection.send(b'{"sender": "garbage", "message": "' + b"x" * 65_536)
            except OSError:  # the server may close the connection as soon as it has answered
                pass
            answer = connection.getresponse()
            body = answer.read()
            try:
                return answer.status, json.loads(body)
            except ValueError:
                return answer.status, body.decode(errors="replace")
        finally:
            connection.close()

    # socket.io: each item in a connection and session of its own ---------------------------------

    async def socketio_text(self, item: Text) -> None:
        outcome = Outcome("socketio", item.name, None, texts=[item.text] if item.verbatim else [])
        await self._web_chat(outcome, lambda chat: chat.say({"message": item.text}))

    async def socketio_garbage(self, name: str, payload: Any) -> None:
        """Garbage, then an ordinary message in the same session: only that one is stored and answered."""

        async def talk(chat: WebChat) -> List[str]:
            await chat.client.emit("user_uttered", payload)
            return await chat.say({"message": "/thank"})

        await self._web_chat(Outcome("socketio", name, None), talk)

    async def socketio_without_session(self) -> None:
        """A socket that never asked for a session: its message is dropped, the server goes on."""
        outcome = Outcome("socketio", "no session", None, user_messages=0)
        await self._web_chat(outcome, lambda chat: chat.say({"message": "hi"}, first_within=QUIET_S), session=False)

    async def _web_chat(
        self, outcome: Outcome, talk: Callable[["WebChat"], Awaitable[List[str]]], session: bool = True
    ) -> None:
        """`talk` in a new connection (and session, the outcome's conversation); its answers, and
        the time to the first, into `outcome`; an exception is the outcome's failure."""
        self.outcomes[(outcome.channel, outcome.item)] = outcome
        chat = WebChat()
        try:
            # Long polling: python-engineio 4.15's websocket client needs aiohttp 3.10 (ClientWSTimeout),
            # and Rasa 3.6 pins aiohttp 3.9.
            await chat.client.connect(
                self.servers.rasa_url, transports=["polling"], socketio_path="/socket.io", wait_timeout=30
            )
            if session:
                outcome.conversation = f"socketio:{(await chat.session())['session_id']}"
            outcome.answers = await talk(chat)
        except Exception as error:  # noqa: BLE001 - recorded here, judged by the tests
            outcome.failure = f"{type(error).__name__}: {error}"
        finally:
            outcome.seconds = chat.first_answer_s
            await chat.client.disconnect()


class ServerClosed(ConnectionError):
    """The socket.io server closed the connection before answering."""


class WebChat:
    """A socket.io client speaking the widget's protocol: session_request, session_confirm with the
    session's id and secret, user_uttered, bot_uttered."""

    def __init__(self) -> None:
        self.client = socketio.AsyncClient(reconnection=False)
        self.confirmed: asyncio.Queue = asyncio.Queue()
        self.answers: asyncio.Queue = asyncio.Queue()
        self.first_answer_s = 0.0  # from the last user_uttered to its first answer (or to giving up)
        self.client.on("session_confirm", self.confirmed.put)
        self.client.on("bot_uttered", self.answers.put)
        self.client.on("disconnect", lambda: self.answers.put_nowait(None))

    async def session(self) -> Dict[str, str]:
        """A new session (the one the server confirms for an empty request)."""
        await self.client.emit("session_request", {})
        return await asyncio.wait_for(self.confirmed.get(), 30)

    async def say(self, data: Dict[str, Any], first_within: float = HANG_S) -> List[str]:
        """Send `data` as user_uttered; the texts of the answers, complete after QUIET_S without one more.
        TimeoutError when the first answer takes longer than `first_within`, ServerClosed when the
        server disconnects instead."""
        started = time.perf_counter()
        await self.client.emit("user_uttered", data)
        try:
            answers = [await self._next(first_within)]
        finally:
            self.first_answer_s = time.perf_counter() - started
        while True:
            try:
                answers.append(await self._next(QUIET_S))
            except asyncio.TimeoutError:
                return [answer.get("text") or "" for answer in answers]

    async def _next(self, within: float) -> Dict[str, Any]:
        answer = await asyncio.wait_for(self.answers.get(), within)
        if answer is None:
            raise ServerClosed("the server closed the connection")
        return answer


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


# The run -----------------------------------------------------------------------------------------


@dataclass
class Run:
    outcomes: Dict[Tuple[str, str], Outcome]
    baseline_s: List[float]
    during_s: List[float]
    pids_before: Dict[str, int]
    corpus_s: float
    log_offset: int  # where rasa.log stood when the run began


class Bystander:
    """An ordinary customer over REST: the same few messages in turn, each round of them in a new
    conversation, so that no reply costs more than another for a longer tracker."""

    def __init__(self, client: httpx.Client, run_id: str) -> None:
        self.client, self.run_id, self.sent = client, run_id, 0

    def reply_s(self) -> float:
        """Seconds until the answer to the next message."""
        rounds, turn = divmod(self.sent, len(BYSTANDER_TEXTS))
        self.sent += 1
        started = time.perf_counter()
        answer = self.client.post(
            REST_PATH, json={"sender": f"bystander-{self.run_id}-{rounds}", "message": BYSTANDER_TEXTS[turn]}
        )
        elapsed = time.perf_counter() - started
        assert answer.status_code == 200 and answer.json(), (
            f"the bystander got {answer.status_code}: {answer.text[:200]}"
        )
        return elapsed


def rasa_log(servers) -> Path:
    return Path(servers.supervisor.log_dir) / "rasa.log"


@pytest.fixture(scope="module")
def run(bot_servers, fake_telegram) -> Run:
    pids = {service.name: service.process.pid for service in bot_servers.supervisor.services}
    log_offset = rasa_log(bot_servers).stat().st_size
    corpus = Corpus(bot_servers, fake_telegram)
    with httpx.Client(base_url=bot_servers.rasa_url, timeout=HANG_S) as client:
        bystander = Bystander(client, corpus.run_id)
        for _ in BYSTANDER_TEXTS:  # warm-up: first answers load what later ones reuse
            bystander.reply_s()
        baseline = [bystander.reply_s() for _ in range(SAMPLES)]
        started = time.perf_counter()
        thread = threading.Thread(target=corpus.send_all, name="bad-input-corpus")
        thread.start()
        during = []
        while thread.is_alive():
            during.append(bystander.reply_s())
        thread.join()
    if corpus.error:
        raise corpus.error
    for outcome in corpus.outcomes.values():  # the measurements, for `pytest -s`
        print(
            f"{outcome.channel:9} {outcome.item:26} {outcome.seconds:6.2f} s  {outcome.status or ''} "
            f"{len(outcome.answers)} answer(s) {outcome.failure or ''}"
        )
    return Run(corpus.outcomes, baseline, during, pids, time.perf_counter() - started, log_offset)


def rasa_log_tail(servers, lines: int = 40) -> str:
    return "\n".join(rasa_log(servers).read_text(errors="replace").splitlines()[-lines:])


def stored_events(servers, conversation: str) -> List[Tuple[str, Dict[str, Any]]]:
    """(type, data) of the conversation's events in the conversation log, oldest first."""
    database = servers.project / "logs" / "conversations.db"
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30) as connection:
        rows = connection.execute(
            "SELECT type_name, data FROM events WHERE sender_id = ? ORDER BY id", (conversation,)
        ).fetchall()
    return [(kind, json.loads(data)) for kind, data in rows]


# The tests ---------------------------------------------------------------------------------------

TEXT_CASES = [
    (channel, item.name) for item in TEXTS for channel in ("rest", "socketio", "telegram") if channel in item.channels
]
GARBAGE = {
    **{("rest", g.name): g.status for g in REST_GARBAGE},
    **{("telegram", g.name): g.status for g in TELEGRAM_GARBAGE},
    ("rest", "oversized body"): 413,
    ("telegram", "oversized body"): 413,
}  # expected status
SOCKETIO_CASES = [name for name, _ in SOCKETIO_GARBAGE] + ["no session"]


@pytest.mark.parametrize("channel, item", TEXT_CASES)
def test_a_text_gets_a_polite_answer_in_bounded_time(run, bot_servers, channel, item):
    outcome = run.outcomes[(channel, item)]
    context = f"{channel} / {item}: {outcome}\n--- rasa.log ---\n{rasa_log_tail(bot_servers)}"
    assert outcome.failure is None, context
    assert outcome.status is None or 200 <= outcome.status < 300, context
    assert outcome.answers and all(answer.strip() for answer in outcome.answers), context
    assert outcome.seconds <= ANSWER_BOUND_S, context


@pytest.mark.parametrize("channel, item", GARBAGE)
def test_transport_garbage_gets_a_clear_4xx_json_error(run, bot_servers, channel, item):
    outcome = run.outcomes[(channel, item)]
    context = f"{channel} / {item}: {outcome}"
    assert outcome.failure is None, context
    assert outcome.status == GARBAGE[(channel, item)], context
    # Ours say {"error": ...}; Sanic's own 413 says {"description", "status", "message"}.
    assert isinstance(outcome.body, dict) and (outcome.body.get("error") or outcome.body.get("message")), context
    assert outcome.seconds <= ANSWER_BOUND_S, context
    assert not stored_events(bot_servers, "rest:garbage"), "a refused body was stored"


@pytest.mark.parametrize("item", SOCKETIO_CASES)
def test_socketio_garbage_is_dropped_and_the_session_goes_on(run, bot_servers, item):
    outcome = run.outcomes[("socketio", item)]
    if item == "no session":  # nothing to answer: the server must stay silent
        assert outcome.failure and "Timeout" in outcome.failure and not outcome.answers, outcome
        return
    assert outcome.failure is None and outcome.answers and all(outcome.answers), outcome
    assert [kind for kind, _ in stored_events(bot_servers, outcome.conversation) if kind == "user"] == ["user"]


def test_rasa_and_the_action_server_survive_as_the_same_processes(run, bot_servers):
    for service in bot_servers.supervisor.services:
        assert service.process.pid == run.pids_before[service.name], f"{service.name} was restarted"
        assert service.process.poll() is None, f"{service.name} exited: {rasa_log_tail(bot_servers)}"
    answer = httpx.post(
        f"{bot_servers.rasa_url}{REST_PATH}", json={"sender": "after-bad-input", "message": "/thank"}, timeout=30
    )
    assert answer.status_code == 200 and answer.json()
    assert httpx.get(f"http://localhost:{bot_servers.actions_port}/health", timeout=30).status_code == 200


def test_another_conversation_stays_as_fast_as_before(run):
    p99_before, p99_during = (float(np.percentile(samples, 99)) for samples in (run.baseline_s, run.during_s))
    print(
        f"bystander p99: {p99_before * 1000:.0f} ms before, {p99_during * 1000:.0f} ms during the corpus "
        f"({len(run.during_s)} replies in {run.corpus_s:.1f} s)"
    )
    assert len(run.during_s) >= SAMPLES, f"the corpus ran {run.corpus_s:.1f} s: too short to measure {SAMPLES} replies"
    assert p99_during <= 2 * p99_before + LATENCY_FLOOR_S, (run.baseline_s, run.during_s)


@pytest.mark.parametrize("channel, item", TEXT_CASES)
def test_no_event_of_a_corpus_conversation_is_lost(run, bot_servers, channel, item):
    outcome = run.outcomes[(channel, item)]
    deadline = time.monotonic() + STORE_WAIT_S
    while True:
        events = stored_events(bot_servers, outcome.conversation)
        users = [data for kind, data in events if kind == "user"]
        bots = [data for kind, data in events if kind == "bot"]
        if (len(users), len(bots)) == (outcome.user_messages, len(outcome.answers)) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert (len(users), len(bots)) == (outcome.user_messages, len(outcome.answers)), outcome
    if outcome.texts:
        assert [user["text"] for user in users] == outcome.texts


def test_the_log_never_blames_triton_for_the_corpus(run, bot_servers):
    """Long, blank and strange texts are the NLU's own business: they must not show up as Triton failures."""
    with rasa_log(bot_servers).open("rb") as log:
        log.seek(run.log_offset)
        lines = log.read().decode(errors="replace").splitlines()
    blamed = [line for line in lines if " ERROR " in line and "Triton" in line]
    assert not blamed, blamed[:3]

"""Locust users for `make loadtest` and tests/test_shipped_replicas.py: customers on the REST channel and in
the web widget's socket.io chat, each one conversation of the flows in loadtest/script.py, then done.

Every message and answer goes into the ledger (loadtest/ledger.py), written to $LOADTEST_LEDGER when
Locust quits; Locust quits once every user has finished its conversation.
"""

from __future__ import annotations

import os
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import gevent
import requests
import socketio
from gevent.event import AsyncResult
from gevent.queue import Empty, Queue
from locust import HttpUser, User, between, events, task
from locust.clients import ResponseContextManager
from locust.exception import StopUser

from loadtest.ledger import Conversation, Ledger
from loadtest.script import script

MESSAGES = script(int(os.environ.get("LOADTEST_MESSAGES", "20")))
# A customer reads the answer and types the next message: seconds between an answer and the next
# message, drawn uniformly from this range ("0,0": back to back, the most load the users can make).
THINK_TIME_S = tuple(float(s) for s in os.environ.get("LOADTEST_THINK_TIME", "0,0").split(","))
ANSWER_TIMEOUT_S = 60.0
LATER_ANSWERS_S = 1.0  # socket.io: how long more answers to a message may follow the first
LEDGER = Ledger()
finished = 0


@contextmanager
def _one_conversation(user: User, record: Conversation) -> Iterator[None]:
    """Run one conversation, then end the user: one that broke (an exception Locust would answer by
    starting another conversation) is counted as a failure of its last message instead. The last user
    to finish ends the run."""
    global finished
    try:
        yield
    except StopUser:
        raise  # Locust ends the run
    except Exception as error:  # noqa: BLE001 - counted in the ledger and Locust's failures, never retried
        record.fail(f"client: {type(error).__name__}")
    finished += 1
    if finished >= user.environment.parsed_options.num_users:
        gevent.spawn_later(0.1, user.environment.runner.quit)
    raise StopUser()


def _failure(response: ResponseContextManager) -> Optional[str]:
    """Why a REST answer is not one: its HTTP status, the client's error (a timeout, a refused
    connection), or a body that is not Rasa's JSON list."""
    if response.status_code == 0:  # no HTTP answer: Locust keeps the client's exception
        error = getattr(response, "error", None)
        return type(error).__name__ if error else "no answer"
    if response.status_code != 200:
        return f"HTTP {response.status_code}"
    try:
        return None if isinstance(response.json(), list) else "not a list of messages"
    except ValueError:
        return "not JSON"


@events.quitting.add_listener
def _write_ledger(environment, **_) -> None:
    LEDGER.save(Path(os.environ["LOADTEST_LEDGER"]))


class RestConversation(HttpUser):
    """A customer on the REST channel. It keeps no cookie, so HAProxy may send each message anywhere."""

    weight = int(os.environ.get("LOADTEST_REST_WEIGHT", "4"))
    wait_time = between(*THINK_TIME_S)

    @task
    def converse(self) -> None:
        sender = uuid.uuid4().hex
        record = LEDGER.conversation(f"rest:{sender}")
        with _one_conversation(self, record):
            for turn, message in enumerate(MESSAGES):
                if turn:
                    self.wait()  # thinking
                self.client.cookies.clear()
                record.sent.append(message)
                with self.client.post(
                    "/webhooks/rest/webhook",
                    json={"sender": sender, "message": message},
                    name="REST message",
                    catch_response=True,
                    timeout=ANSWER_TIMEOUT_S,
                ) as response:
                    reason = _failure(response)
                    if reason:
                        response.failure(reason)
                        record.fail(reason)
                        continue
                    record.answers += [m.get("text") or "" for m in response.json()]  # one per bot event


class SocketIOChat(User):
    """A customer in the web widget: socket.io over long polling, sticky by HAProxy's cookie."""

    weight = int(os.environ.get("LOADTEST_SOCKETIO_WEIGHT", "1"))
    wait_time = between(*THINK_TIME_S)

    @task
    def chat(self) -> None:
        answers: Queue = Queue()
        confirmed: AsyncResult = AsyncResult()
        client = socketio.Client(
            reconnection=False, http_session=requests.Session(), request_timeout=ANSWER_TIMEOUT_S
        )  # a busy server answers the handshake late, not never: the same patience as for an answer
        client.on("session_confirm", lambda data: confirmed.set(data["session_id"]))
        client.on("bot_uttered", lambda data: answers.put(data.get("text") or ""))
        record = Conversation()  # in the ledger under Rasa's session id once it is known
        with _one_conversation(self, record):
            try:
                client.connect(self.host, transports=["polling"], wait_timeout=ANSWER_TIMEOUT_S)
                client.emit("session_request", {})
                session = confirmed.get(timeout=ANSWER_TIMEOUT_S)
            except Exception as error:  # noqa: BLE001 - a chat that never started counts as a failure
                LEDGER.conversations[f"socketio:unconnected-{uuid.uuid4().hex}"] = record
                record.fail(f"connect: {type(error).__name__}: {str(error)[:80]}")
                client.disconnect()
                return
            LEDGER.conversations[f"socketio:{session}"] = record
            try:
                for turn, message in enumerate(MESSAGES):
                    if turn:
                        self.wait()  # thinking
                    self._send(client, answers, session, record, message)
            finally:
                client.disconnect()

    def _send(self, client: socketio.Client, answers: Queue, session: str, record: Conversation, message: str) -> None:
        record.sent.append(message)
        started = time.perf_counter()
        client.emit("user_uttered", {"message": message, "session_id": session})
        first = self._answer(answers, ANSWER_TIMEOUT_S)
        reason = None if first is not None else f"no answer within {ANSWER_TIMEOUT_S:.0f} s"
        events.request.fire(
            request_type="socket.io",
            name="socket.io message",
            response_time=(time.perf_counter() - started) * 1000,
            response_length=0,
            exception=TimeoutError(reason) if reason else None,
            context={},
        )
        if first is None:
            record.fail(str(reason))
            return
        record.answers.append(first)
        while (later := self._answer(answers, LATER_ANSWERS_S)) is not None:
            record.answers.append(later)

    @staticmethod
    def _answer(answers: Queue, timeout_s: float) -> Optional[str]:
        try:
            return answers.get(timeout=timeout_s)
        except Empty:
            return None

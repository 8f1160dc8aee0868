"""Locust users for `make loadtest` and tests/test_replicas.py: customers on the REST channel and in
the web widget's socket.io chat, each one conversation of the flows in loadtest/script.py, then done.

Every message and answer goes into the ledger (loadtest/ledger.py), written to $LOADTEST_LEDGER when
Locust quits; Locust quits once every user has finished its conversation.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Optional

import gevent
import requests
import socketio
from gevent.event import AsyncResult
from gevent.queue import Empty, Queue
from locust import HttpUser, User, events, task
from locust.exception import StopUser

from loadtest.ledger import Ledger
from loadtest.script import script

MESSAGES = script(int(os.environ.get("LOADTEST_MESSAGES", "20")))
ANSWER_TIMEOUT_S = 60.0
LATER_ANSWERS_S = 1.0  # socket.io: how long more answers to a message may follow the first
LEDGER = Ledger()
finished = 0


def _finish(user: User) -> None:
    """End this user; the last one to finish ends the run."""
    global finished
    finished += 1
    if finished >= user.environment.parsed_options.num_users:
        gevent.spawn_later(0.1, user.environment.runner.quit)
    raise StopUser()


@events.quitting.add_listener
def _write_ledger(environment, **_) -> None:
    LEDGER.save(Path(os.environ["LOADTEST_LEDGER"]))


class RestConversation(HttpUser):
    """A customer on the REST channel. It keeps no cookie, so HAProxy may send each message anywhere."""

    weight = int(os.environ.get("LOADTEST_REST_WEIGHT", "4"))

    @task
    def converse(self) -> None:
        sender = uuid.uuid4().hex
        record = LEDGER.conversation(f"rest:{sender}")
        for message in MESSAGES:
            self.client.cookies.clear()
            record.sent.append(message)
            with self.client.post(
                "/webhooks/rest/webhook",
                json={"sender": sender, "message": message},
                name="REST message",
                catch_response=True,
                timeout=ANSWER_TIMEOUT_S,
            ) as response:
                if response.status_code != 200:
                    response.failure(f"HTTP {response.status_code}")
                    record.errors += 1
                    continue
                record.answers += [m.get("text") or "" for m in response.json()]  # one per bot event
        _finish(self)


class SocketIOChat(User):
    """A customer in the web widget: socket.io over long polling, sticky by HAProxy's cookie."""

    weight = int(os.environ.get("LOADTEST_SOCKETIO_WEIGHT", "1"))

    @task
    def chat(self) -> None:
        answers: Queue = Queue()
        confirmed: AsyncResult = AsyncResult()
        client = socketio.Client(reconnection=False, http_session=requests.Session())
        client.on("session_confirm", lambda data: confirmed.set(data["session_id"]))
        client.on("bot_uttered", lambda data: answers.put(data.get("text") or ""))
        client.connect(self.host, transports=["polling"])
        try:
            client.emit("session_request", {})
            session = confirmed.get(timeout=ANSWER_TIMEOUT_S)
            record = LEDGER.conversation(f"socketio:{session}")
            for message in MESSAGES:
                record.sent.append(message)
                started = time.perf_counter()
                client.emit("user_uttered", {"message": message, "session_id": session})
                first = self._answer(answers, ANSWER_TIMEOUT_S)
                elapsed_ms = (time.perf_counter() - started) * 1000
                error = None if first is not None else TimeoutError(f"no answer within {ANSWER_TIMEOUT_S:.0f} s")
                events.request.fire(
                    request_type="socket.io",
                    name="socket.io message",
                    response_time=elapsed_ms,
                    response_length=0,
                    exception=error,
                    context={},
                )
                if first is None:
                    record.errors += 1
                    continue
                record.answers.append(first)
                while (later := self._answer(answers, LATER_ANSWERS_S)) is not None:
                    record.answers.append(later)
        finally:
            client.disconnect()
        _finish(self)

    @staticmethod
    def _answer(answers: Queue, timeout_s: float) -> Optional[str]:
        try:
            return answers.get(timeout=timeout_s)
        except Empty:
            return None

"""One queue for the messages a Rasa process works on at once (bot/channels/admission.py), shared
by the REST, socket.io and Telegram channels."""

from __future__ import annotations

import asyncio
from typing import List

import pytest
from rasa.core.channels.channel import UserMessage

from bot.channels import admission
from bot.channels.rest import RestInput
from bot.channels.socketio import SocketIOInput
from bot.telegram.channel import TelegramInput


def test_messages_beyond_the_limit_wait_and_are_served_in_arrival_order(monkeypatch):
    monkeypatch.setenv(admission.MESSAGES_AT_ONCE, "2")
    started: List[str] = []
    running, most = 0, 0

    async def rasa(message: UserMessage) -> str:
        nonlocal running, most
        started.append(message.text)
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.01)
        running -= 1
        return message.text

    async def six_at_once() -> List[str]:
        rest, socketio = admission.in_turn(rasa), admission.in_turn(rasa)  # two channels, one queue
        return await asyncio.gather(*(handle(UserMessage(str(n))) for n, handle in enumerate([rest, socketio] * 3)))

    assert asyncio.run(six_at_once()) == [str(n) for n in range(6)]
    assert most == 2 and started == [str(n) for n in range(6)]


def test_the_default_limit_applies_without_the_variable(monkeypatch):
    monkeypatch.delenv(admission.MESSAGES_AT_ONCE, raising=False)
    assert admission.messages_at_once() == admission.DEFAULT_MESSAGES_AT_ONCE


@pytest.mark.parametrize("value", ["0", "-1", "four", ""])
def test_a_bad_limit_stops_every_channel_when_rasa_builds_it(monkeypatch, value):
    monkeypatch.setenv(admission.MESSAGES_AT_ONCE, value)

    async def rasa(message: UserMessage) -> None:
        return None

    for channel in (RestInput(), SocketIOInput(session_key=b"k"), TelegramInput(None)):
        with pytest.raises(ValueError, match=f"{admission.MESSAGES_AT_ONCE}={value!r}: set it to a whole number"):
            channel.blueprint(rasa)

"""How many user messages one Rasa process works on at once; the others wait their turn, in order.

Rasa runs each message's NLU, policies and tracker store writes on its event loop, in steps between
awaits. Without a limit, a busy process interleaves the steps of every message it has received: all
of them slow down together, answers pass the clients' timeouts, and socket.io's pings go unanswered
so that the widget's sessions are dropped. With a limit the loop stays responsive and the messages
beyond it wait in one queue, first come first served. Every channel of the process shares it.
"""

from __future__ import annotations

import asyncio
import functools
import os
import weakref
from typing import Any, Awaitable, Callable

from rasa.core.channels.channel import UserMessage

MESSAGES_AT_ONCE = "BOT_MESSAGES_AT_ONCE"
DEFAULT_MESSAGES_AT_ONCE = 4  # enough to overlap one message's action call with another's NLU

Handler = Callable[[UserMessage], Awaitable[Any]]


def messages_at_once() -> int:
    """The limit: $BOT_MESSAGES_AT_ONCE, else the default."""
    value = os.environ.get(MESSAGES_AT_ONCE, str(DEFAULT_MESSAGES_AT_ONCE))
    try:
        limit = int(value)
    except ValueError:
        limit = 0
    if limit < 1:
        raise ValueError(f"{MESSAGES_AT_ONCE}={value!r}: set it to a whole number of at least 1, or unset it")
    return limit


# One queue per event loop: the server's, and in tests each asyncio.run's.
_queues: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore]" = weakref.WeakKeyDictionary()


def in_turn(on_new_message: Handler) -> Handler:
    """`on_new_message` (Rasa's handler, given to a channel's blueprint) run within the limit. A bad
    limit fails here, when Rasa builds its channels, not at the first message."""
    limit = messages_at_once()

    @functools.wraps(on_new_message)
    async def handle(message: UserMessage) -> Any:
        loop = asyncio.get_running_loop()
        turns = _queues.get(loop)
        if turns is None:
            turns = _queues[loop] = asyncio.Semaphore(limit)
        async with turns:
            return await on_new_message(message)

    return handle

"""A polite answer when a custom action cannot run (the action server down, timing out or failing).

Rasa 3.6 logs such a failure and goes on without a word: the customer's message gets no reply at
all. Every call to the action server goes through RemoteAction.run, so wrapping it is the one place
to answer instead: an apology (once a turn), sent and stored like any bot message. When the failed
action was a form's validation, the slot it was validating is emptied, so nothing unchecked passes
and the form asks for it again. A rejection (a form's "not this slot") stays Rasa's.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any, List

from rasa.core.actions.action import ActionExecutionRejection, RemoteAction
from rasa.shared.core.constants import REQUESTED_SLOT
from rasa.shared.core.events import BotUttered, Event, SlotSet, UserUttered
from rasa.shared.exceptions import RasaException

logger = logging.getLogger(__name__)

APOLOGY = (
    "Sorry, something went wrong on my side and I couldn't finish that. Please try again in a minute, "
    'or say "talk to a human".'
)


def install() -> None:
    """Wrap RemoteAction.run (once per process)."""
    run = RemoteAction.run
    if getattr(run, "answers_failures", False):
        return

    @functools.wraps(run)
    async def run_or_apologise(
        self: RemoteAction, output_channel: Any, nlg: Any, tracker: Any, domain: Any
    ) -> List[Event]:
        try:
            return await run(self, output_channel, nlg, tracker, domain)
        except ActionExecutionRejection:
            raise
        except (RasaException, asyncio.TimeoutError) as error:
            logger.error("Custom action '%s' failed (%s); the customer gets an apology", self.name(), error)
            events: List[Event] = [] if _apologised_this_turn(tracker) else [BotUttered(APOLOGY)]
            requested = tracker.get_slot(REQUESTED_SLOT)
            if self.name().startswith("validate_") and requested:
                events.append(SlotSet(requested, None))
            return events

    run_or_apologise.answers_failures = True  # type: ignore[attr-defined]
    RemoteAction.run = run_or_apologise


def _apologised_this_turn(tracker: Any) -> bool:
    for event in reversed(tracker.events):
        if isinstance(event, UserUttered):
            return False
        if isinstance(event, BotUttered) and event.text == APOLOGY:
            return True
    return False

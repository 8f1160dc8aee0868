"""Help outside the forms: a person (a ticket), frequent questions, and "Did you want to ...?"."""

from __future__ import annotations

import json
import logging
from typing import List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import shop
from actions.common import EMAIL, INTENT_DESCRIPTIONS, ORDER_ID, PRODUCT, verified_email
from actions.shop import ShopError

logger = logging.getLogger(__name__)


class ActionHumanHandoff(Action):
    """Open a ticket (one per conversation) with the conversation's summary and give its reference;
    the colleague writes to the email only when this conversation verified it."""

    def name(self) -> Text:
        return "action_human_handoff"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        email = verified_email(tracker)
        try:
            outcome = shop.open_ticket(tracker.sender_id, summarize(tracker), email, tracker.get_slot(ORDER_ID))
        except ShopError as error:
            logger.error("action_human_handoff in conversation %s: %s", tracker.sender_id, error)
            dispatcher.utter_message(response="utter_handoff_failed")
            return []
        # utter_handoff_by_email names the email slot, which is `email` here
        dispatcher.utter_message(
            response="utter_handoff_by_email" if email else "utter_handoff_in_chat", reference=outcome.reference
        )
        return []


def summarize(tracker: Tracker, turns: int = 12) -> Text:
    """What a colleague reads first: the customer's details (the email if verified here) and the
    last turns of the conversation."""
    details = {ORDER_ID: tracker.get_slot(ORDER_ID), EMAIL: verified_email(tracker), PRODUCT: tracker.get_slot(PRODUCT)}
    lines = [f"{name}: {value}" for name, value in details.items() if value]
    said = [(e["event"], e.get("text") or "") for e in tracker.events if e.get("event") in ("user", "bot")]
    lines += [f"{'customer' if who == 'user' else 'assistant'}: {text}" for who, text in said[-turns:] if text]
    return "\n".join(lines) or "(nothing said yet)"


class ActionAnswerFaq(Action):
    """Answer a frequent question with its response in domain.yml, utter_<intent> (utter_faq_shipping
    for faq_shipping), so an answer is added or changed there alone; a question without one gets the
    default answer and an error log that says what to add."""

    def name(self) -> Text:
        return "action_answer_faq"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        intent = tracker.get_intent_of_latest_message()
        response = f"utter_{intent}"
        if response not in domain.get("responses", {}):
            logger.error("No answer for '%s': add a response %s to domain.yml", intent, response)
            response = "utter_default"
        dispatcher.utter_message(response=response)
        return []


class ActionSuggestIntent(Action):
    """First stage of the fallback when the NLU is unsure: "Did you want to ...?" with Yes/No.

    "Yes" sends the guessed intent with the message's entities; "No" (out_of_scope) leads to
    "please rephrase" (data/rules/fallback.yml). When the best guess is no request (a greeting,
    chitchat) or there is none at all (Triton is down), it asks to rephrase right away.
    """

    def name(self) -> Text:
        return "action_suggest_intent"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        message = tracker.latest_message or {}
        ranking = message.get("intent_ranking") or []
        candidate = next((i["name"] for i in ranking if i.get("name") != "nlu_fallback"), None)
        if candidate not in INTENT_DESCRIPTIONS:
            dispatcher.utter_message(response="utter_default")
            return []
        entities = {e["entity"]: e["value"] for e in message.get("entities") or []}
        dispatcher.utter_message(
            response="utter_suggest_intent",
            description=INTENT_DESCRIPTIONS[candidate],
            payload=f"/{candidate}{json.dumps(entities) if entities else ''}",
        )
        return []

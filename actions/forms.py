"""The forms' validators and questions.

The validators (`validate_<form>`) check each answer against the shop: the order must exist and
the email must be the one on it; a refused answer empties its slot and keeps the reason in the
`problem` slot, which the next question (`action_ask_<slot>`) says first, in the same message.
"""

from __future__ import annotations

import logging
import re
from abc import ABC, abstractmethod
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import ActionExecutionRejected, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import answers, shop
from actions.common import (
    ADDRESS,
    CONFIRM,
    EMAIL,
    FORM_INTENTS,
    ORDER_ID,
    PROBLEM,
    PRODUCT,
    REASON,
    REQUESTED_SLOT,
    VERIFIED_IN,
    render,
    verified_email,
)
from actions.shop import BACKEND_DOWN, BackendUnavailable, EmailMismatch, NotAllowed, OrderInfo, ShopError

logger = logging.getLogger(__name__)


def refuse(slot: Text, domain: DomainDict, response: Text, **values: Any) -> Dict[Text, Any]:
    """Reject a form answer: empty its slot and keep the reason (the domain's `response`), which
    the next question leads with."""
    return {slot: None, PROBLEM: render(domain, response, **values)["text"]}


class VerifiedOrderForm(FormValidationAction, ABC):
    """Validates `order_id` (it must exist) and `email` (it must be the one on the order).

    Once both are verified, `blocker` may end the form early (e.g. cancelling a shipped order);
    the form's submit action then explains why.
    """

    @abstractmethod
    def name(self) -> Text:
        """validate_<form>."""

    def blocker(self, order: OrderInfo) -> Optional[NotAllowed]:
        return None

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        """Validate this turn's answers, and reject the turn when it asks for another order request.

        Rasa lets a form reject a turn only when nothing in it fills the question asked, so "I'd
        rather return an item from order 55821" would answer the order-number question of this
        form. Rejecting it lets the switch rules start the other form, which keeps the order number
        and email validated here.
        """
        events = await super().run(dispatcher, tracker, domain)
        if self._asks_for_another_form(tracker):
            events.append(ActionExecutionRejected(self.form_name()))
        return events

    def _asks_for_another_form(self, tracker: Tracker) -> bool:
        """The intent starts another form, and the message is more than a short answer to the
        question asked: "order 31415" or "cancel 100234" answer "What is your order number?"."""
        message = tracker.latest_message
        intent = (message.get("intent") or {}).get("name")
        if not any(intent in intents for form, intents in FORM_INTENTS.items() if form != self.form_name()):
            return False
        if tracker.get_slot(REQUESTED_SLOT) not in tracker.slots_to_validate():
            return True
        text = message.get("text") or ""
        answer = {i for entity in message.get("entities") or [] for i in range(entity["start"], entity["end"])}
        rest = "".join(" " if i in answer else character for i, character in enumerate(text))
        return len(re.findall(r"\w+", rest)) > 2

    def validate_order_id(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        number = answers.normalize_order_number(value)
        if number is None:
            return refuse(ORDER_ID, domain, "utter_no_order_number")
        try:
            if not shop.order_exists(number):
                logger.warning("Conversation %s: unknown order %s", tracker.sender_id, number)
                return refuse(ORDER_ID, domain, "utter_order_not_found", order_id=number)
            email = tracker.get_slot(EMAIL)
            if not email:
                return {ORDER_ID: number}
            return {ORDER_ID: number, **self._verified(shop.verify(number, email), tracker)}
        except EmailMismatch:
            return {ORDER_ID: number, EMAIL: None}  # the email was for another order; ask for this one's
        except BackendUnavailable as error:
            logger.error("Conversation %s: %s", tracker.sender_id, error)
            return refuse(ORDER_ID, domain, BACKEND_DOWN)

    def validate_email(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        email = answers.normalize_email(value)
        if email is None:
            return refuse(EMAIL, domain, "utter_not_an_email", value=value)
        number = tracker.get_slot(ORDER_ID)
        if number is None:
            return {EMAIL: email}
        try:
            return {EMAIL: email, **self._verified(shop.verify(number, email), tracker)}
        except EmailMismatch as error:
            logger.warning("Conversation %s: email does not match order %s", tracker.sender_id, number)
            return refuse(EMAIL, domain, error.response, **error.values)
        except ShopError as error:
            logger.error("Conversation %s: %s", tracker.sender_id, error)
            return refuse(EMAIL, domain, BACKEND_DOWN)

    def _verified(self, order: OrderInfo, tracker: Tracker) -> Dict[Text, Any]:
        """The email verified by this conversation; the form ended early when the order cannot
        have what the form is for."""
        return {VERIFIED_IN: tracker.sender_id, **({REQUESTED_SLOT: None} if self.blocker(order) else {})}


class ValidateOrderStatusForm(VerifiedOrderForm):
    def name(self) -> Text:
        return "validate_order_status_form"


class ValidateCancelOrderForm(VerifiedOrderForm):
    def name(self) -> Text:
        return "validate_cancel_order_form"

    def blocker(self, order: OrderInfo) -> Optional[NotAllowed]:
        return shop.cancellation_problem(order)

    def validate_confirm_cancel(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        """The yes or no that the slot's mappings took from affirm or deny, kept as it is: without a
        validator rasa_sdk logs a warning at every confirmation."""
        return {CONFIRM: value}


class ValidateChangeAddressForm(VerifiedOrderForm):
    def name(self) -> Text:
        return "validate_change_address_form"

    def blocker(self, order: OrderInfo) -> Optional[NotAllowed]:
        return shop.address_change_problem(order)

    def validate_new_address(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        address = " ".join(str(value or "").split())
        if len(address) < 10 or not any(c.isdigit() for c in address):
            return refuse(ADDRESS, domain, "utter_not_an_address")
        return {ADDRESS: address}


class ValidateReturnForm(VerifiedOrderForm):
    def name(self) -> Text:
        return "validate_return_form"

    def blocker(self, order: OrderInfo) -> Optional[NotAllowed]:
        return shop.return_problem(order)

    def validate_product(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        wanted = answers.first_value(value)
        number, email = tracker.get_slot(ORDER_ID), verified_email(tracker)
        if not (number and email):
            return {PRODUCT: wanted}  # checked against the order once it is verified
        try:
            products = shop.verify(number, email).products
        except ShopError as error:
            logger.error("Conversation %s: %s", tracker.sender_id, error)
            return refuse(PRODUCT, domain, BACKEND_DOWN)
        match = answers.match_product(products, wanted)
        if match is None:
            return refuse(
                PRODUCT, domain, "utter_no_such_product", order_id=number, product=wanted, products=", ".join(products)
            )
        return {PRODUCT: match}

    def validate_return_reason(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict[Text, Any]:
        reason = " ".join(str(value or "").split())
        return {REASON: reason} if len(reason) >= 3 else refuse(REASON, domain, "utter_tell_more")


class AskForSlot(Action, ABC):
    """A form's question for one slot, the domain's utter_ask_<slot> filled from the slots, in one
    message that starts with why the last answer was not accepted (the `problem` a validator set)."""

    @property
    @abstractmethod
    def slot(self) -> Text:
        """The slot asked for."""

    def name(self) -> Text:
        return f"action_ask_{self.slot}"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        question = render(domain, f"utter_ask_{self.slot}", **tracker.slots)
        problem = tracker.get_slot(PROBLEM)
        if problem:
            question["text"] = f"{problem} {question['text']}"
        dispatcher.utter_message(**question)
        return [SlotSet(PROBLEM, None)] if problem else []


class AskOrderId(AskForSlot):
    slot = ORDER_ID


class AskEmail(AskForSlot):
    slot = EMAIL


class AskConfirmCancel(AskForSlot):
    slot = CONFIRM


class AskProduct(AskForSlot):
    slot = PRODUCT


class AskReturnReason(AskForSlot):
    slot = REASON


class AskNewAddress(AskForSlot):
    slot = ADDRESS

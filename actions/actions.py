"""The action server: thin adapters between the conversation and the shop (actions/shop.py).

Forms collect and verify what an operation needs (the `validate_*_form` classes); each form's
submit action then does the operation once and says what happened. No action raises: a
customer's mistake gets an explanation, a failing database an apology, both a log line.

A verified email counts only in the conversation that verified it (`verified_email`): the
validators record that conversation's id beside the email, so slots that reach another
conversation (a tracker copied or restored under another id) open no order there.
"""

from __future__ import annotations

import json
import logging
import re
from abc import ABC, abstractmethod
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import ActionExecutionRejected, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import faq, shop
from actions.shop import BackendUnavailable, EmailMismatch, OrderInfo, ShopError

logger = logging.getLogger(__name__)

ORDER_ID, EMAIL, PRODUCT, REASON, ADDRESS, CONFIRM = (
    "order_id", "email", "product", "return_reason", "new_address", "confirm_cancel")
PROBLEM = "problem"  # why the user's last answer was not accepted; said with the next question
VERIFIED_IN = "verified_conversation"  # the conversation whose customer proved `email` is theirs
REQUESTED_SLOT = "requested_slot"
HANDOFF_FAILED = ("Sorry, I couldn't create a ticket right now. Please email support@example-shop.com or call "
                  "+1 800 555 0123 and a colleague will help you.")
NOT_VERIFIED = ("To keep your orders private I need to check it's you first. Please ask again and give me the "
                "email address on the order.")
BACKEND_DOWN = ("Sorry, I can't reach our order system right now. Please try again in a few minutes, "
                "or say \"talk to a human\" and a colleague will follow up.")

# What the fallback asks when it is unsure: "Did you want to <description>?"
INTENT_DESCRIPTIONS = {
    "order_status": "check the status of an order",
    "refund_status": "check on a refund",
    "cancel_order": "cancel an order",
    "return_item": "return an item",
    "change_address": "change a delivery address",
    "payment_problem": "get help with a payment or billing problem",
    "account_help": "get help with your account or password",
    "human_handoff": "talk to a person",
    "faq_shipping": "know how long shipping takes",
    "faq_shipping_cost": "know what shipping costs",
    "faq_return_policy": "know our return policy",
    "faq_payment_methods": "know which payment methods we accept",
    "faq_opening_hours": "know our opening hours",
    "faq_contact": "know how to contact us",
}

# The intents that start each form. Said in the middle of another form ("actually, I'd rather
# return it"), they switch to their form: the "Switch from ..." rules in data/rules.yml.
FORM_INTENTS = {
    "order_status_form": ("order_status", "refund_status"),
    "cancel_order_form": ("cancel_order",),
    "return_form": ("return_item",),
    "change_address_form": ("change_address",),
}


def verified_email(tracker: Tracker) -> Optional[Text]:
    """The email this conversation's customer verified; None when none was, or another conversation did."""
    email = tracker.get_slot(EMAIL)
    return email if email and tracker.get_slot(VERIFIED_IN) == tracker.sender_id else None


def _problem(text: str, **slots: Any) -> Dict[Text, Any]:
    """Reject a form answer: the slots to reset and the reason, which the next question leads with."""
    return {**slots, PROBLEM: text}


class VerifiedOrderForm(FormValidationAction, ABC):
    """Validates `order_id` (it must exist) and `email` (it must be the one on the order).

    Once both are verified, `blocker` may end the form early (e.g. cancelling a shipped order);
    the form's submit action then explains why.
    """

    @abstractmethod
    def name(self) -> Text:
        """validate_<form>."""

    def blocker(self, order: OrderInfo) -> Optional[str]:
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

    def validate_order_id(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                          domain: DomainDict) -> Dict[Text, Any]:
        number = shop.normalize_order_number(value)
        if number is None:
            return _problem("I need the order number, e.g. 12345.", order_id=None)
        try:
            if not shop.order_exists(number):
                logger.warning("Conversation %s: unknown order %s", tracker.sender_id, number)
                return _problem(f"I couldn't find an order with the number {number}. Please check the number "
                                "in your order confirmation email.", order_id=None)
            email = tracker.get_slot(EMAIL)
            if not email:
                return {ORDER_ID: number}
            return {ORDER_ID: number, **self._verified(shop.verify(number, email), tracker)}
        except EmailMismatch:
            return {ORDER_ID: number, EMAIL: None}  # the email was for another order; ask for this one's
        except BackendUnavailable as error:
            logger.error("Conversation %s: %s", tracker.sender_id, error)
            return _problem(BACKEND_DOWN, order_id=None)

    def validate_email(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                       domain: DomainDict) -> Dict[Text, Any]:
        email = shop.normalize_email(value)
        if email is None:
            return _problem(f"'{value}' doesn't look like an email address.", email=None)
        number = tracker.get_slot(ORDER_ID)
        if number is None:
            return {EMAIL: email}
        try:
            return {EMAIL: email, **self._verified(shop.verify(number, email), tracker)}
        except EmailMismatch as error:
            logger.warning("Conversation %s: email does not match order %s", tracker.sender_id, number)
            return _problem(f"{error} Please use the email address you ordered with.", email=None)
        except ShopError as error:
            logger.error("Conversation %s: %s", tracker.sender_id, error)
            return _problem(BACKEND_DOWN, email=None)

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

    def blocker(self, order: OrderInfo) -> Optional[str]:
        return shop.cancellation_problem(order)


class ValidateChangeAddressForm(VerifiedOrderForm):
    def name(self) -> Text:
        return "validate_change_address_form"

    def blocker(self, order: OrderInfo) -> Optional[str]:
        return shop.address_change_problem(order)

    def validate_new_address(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                             domain: DomainDict) -> Dict[Text, Any]:
        address = " ".join(str(value or "").split())
        if len(address) < 10 or not any(c.isdigit() for c in address):
            return _problem("That doesn't look like a full address.", new_address=None)
        return {ADDRESS: address}


class ValidateReturnForm(VerifiedOrderForm):
    def name(self) -> Text:
        return "validate_return_form"

    def blocker(self, order: OrderInfo) -> Optional[str]:
        return shop.return_problem(order)

    def validate_product(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                         domain: DomainDict) -> Dict[Text, Any]:
        wanted = shop.first_value(value)
        number, email = tracker.get_slot(ORDER_ID), verified_email(tracker)
        if not (number and email):
            return {PRODUCT: wanted}  # checked against the order once it is verified
        try:
            products = shop.verify(number, email).products
        except ShopError as error:
            logger.error("Conversation %s: %s", tracker.sender_id, error)
            return _problem(BACKEND_DOWN, product=None)
        match = shop.match_product(products, wanted)
        if match is None:
            return _problem(f"Order {number} has no '{wanted}'; it contains: {', '.join(products)}.", product=None)
        return {PRODUCT: match}

    def validate_return_reason(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                               domain: DomainDict) -> Dict[Text, Any]:
        reason = " ".join(str(value or "").split())
        return {REASON: reason} if len(reason) >= 3 else _problem("Could you tell me a bit more?", return_reason=None)


class AskForSlot(Action, ABC):
    """A form's question for one slot, in one message that starts with why the last answer was
    not accepted (the `problem` a validator set). Edit the questions here."""

    buttons: List[Dict[Text, Text]] = []

    @property
    @abstractmethod
    def slot(self) -> Text:
        """The slot asked for."""

    @property
    @abstractmethod
    def question(self) -> Text:
        """The question; {order_id} is replaced by the order number."""

    def name(self) -> Text:
        return f"action_ask_{self.slot}"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        problem = tracker.get_slot(PROBLEM)
        text = self.question.format(order_id=tracker.get_slot(ORDER_ID) or "")
        dispatcher.utter_message(text=f"{problem} {text}" if problem else text, buttons=self.buttons)
        return [SlotSet(PROBLEM, None)] if problem else []


class AskOrderId(AskForSlot):
    slot = ORDER_ID
    question = "What is your order number? You'll find it in your order confirmation email."


class AskEmail(AskForSlot):
    slot = EMAIL
    question = "To make sure it's you: what's the email address on order {order_id}?"


class AskConfirmCancel(AskForSlot):
    slot = CONFIRM
    question = "Do you really want to cancel order {order_id}? This can't be undone."
    buttons = [{"title": "Yes, cancel it", "payload": "/affirm"}, {"title": "No, keep it", "payload": "/deny"}]


class AskProduct(AskForSlot):
    slot = PRODUCT
    question = "Which item from order {order_id} would you like to return?"


class AskReturnReason(AskForSlot):
    slot = REASON
    question = "What's the reason for the return? For example: damaged, wrong size, not as described."


class AskNewAddress(AskForSlot):
    slot = ADDRESS
    question = "What's the new delivery address for order {order_id}? Please give street, city and postcode."


class ShopAction(Action, ABC):
    """A form's submit action: one shop operation with the verified email, every failure
    answered, its form's slots reset."""

    slots_to_reset: tuple = ()

    @abstractmethod
    def act(self, dispatcher: CollectingDispatcher, tracker: Tracker, email: Text) -> None:
        """Do the operation for the customer who verified `email` and tell them the outcome."""

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        email = verified_email(tracker)
        if email is None:
            logger.warning("%s in conversation %s: the email was not verified in this conversation",
                           self.name(), tracker.sender_id)
            dispatcher.utter_message(text=NOT_VERIFIED)
            return [SlotSet(slot, None) for slot in (ORDER_ID, EMAIL, VERIFIED_IN, *self.slots_to_reset)]
        try:
            self.act(dispatcher, tracker, email)
        except BackendUnavailable as error:
            logger.error("%s in conversation %s: %s", self.name(), tracker.sender_id, error)
            dispatcher.utter_message(text=BACKEND_DOWN)
        except ShopError as error:
            logger.warning("%s in conversation %s: %s", self.name(), tracker.sender_id, error)
            dispatcher.utter_message(text=str(error))
        except Exception:  # a bug must not end the conversation; the log has the traceback
            logger.exception("%s failed in conversation %s", self.name(), tracker.sender_id)
            dispatcher.utter_message(text=BACKEND_DOWN)
        return [SlotSet(slot, None) for slot in (ORDER_ID, *self.slots_to_reset)]


class ActionOrderStatus(ShopAction):
    """Status, delivery date, tracking, returns and refunds of the verified order."""

    def name(self) -> Text:
        return "action_order_status"

    def act(self, dispatcher: CollectingDispatcher, tracker: Tracker, email: Text) -> None:
        dispatcher.utter_message(text=describe(shop.verify(tracker.get_slot(ORDER_ID), email)))


def describe(order: OrderInfo) -> Text:
    """The order's status in a few sentences."""
    items = ", ".join(order.products)
    if order.status == "processing":
        text = f"Order {order.number} ({items}) is being prepared and will ship soon"
        text += f"; expected delivery is {order.expected_on:%A, %B %d}." if order.expected_on else "."
    elif order.status == "shipped":
        text = (f"Order {order.number} ({items}) shipped on {order.shipped_on:%B %d} with {order.carrier}, "
                f"tracking number {order.tracking_number}.")
        text += f" It should arrive by {order.expected_on:%A, %B %d}." if order.expected_on else ""
    elif order.status == "delivered":
        text = f"Order {order.number} ({items}) was delivered on {order.delivered_on:%B %d}."
    else:
        text = f"Order {order.number} ({items}) is cancelled."
    if order.returns:
        text += f" Returns: {'; '.join(order.returns)}."
    if order.refunds:
        text += f" Refunds: {'; '.join(order.refunds)}."
    return text


class ActionCancelOrder(ShopAction):
    """Cancel the verified order after the user confirmed; an already cancelled one stays so."""

    slots_to_reset = (CONFIRM,)

    def name(self) -> Text:
        return "action_cancel_order"

    def act(self, dispatcher: CollectingDispatcher, tracker: Tracker, email: Text) -> None:
        if tracker.get_slot(CONFIRM) is False:
            dispatcher.utter_message(text="Okay, I won't cancel anything. Your order stays as it is.")
            return
        outcome = shop.cancel_order(tracker.get_slot(ORDER_ID), email)
        if outcome.done_now:
            logger.info("Cancelled order %s for conversation %s", outcome.reference, tracker.sender_id)
            dispatcher.utter_message(text=f"Done: order {outcome.reference} is cancelled. Your refund of "
                                          f"{outcome.detail} will reach your account within 5 business days.")
        else:
            dispatcher.utter_message(text=f"Order {outcome.reference} is already cancelled; the refund of "
                                          f"{outcome.detail} is on its way.")


class ActionStartReturn(ShopAction):
    """Create the return (once per item) and give its reference."""

    slots_to_reset = (PRODUCT, REASON)

    def name(self) -> Text:
        return "action_start_return"

    def act(self, dispatcher: CollectingDispatcher, tracker: Tracker, email: Text) -> None:
        outcome = shop.start_return(tracker.get_slot(ORDER_ID), email,
                                    tracker.get_slot(PRODUCT) or "", tracker.get_slot(REASON) or "")
        if outcome.done_now:
            logger.info("Return %s for conversation %s", outcome.reference, tracker.sender_id)
            dispatcher.utter_message(
                text=f"Your return for the {outcome.detail} is registered. Your return reference is "
                     f"{outcome.reference}. We'll email a prepaid label to {email}; your "
                     "refund follows once the item is back with us.")
        else:
            dispatcher.utter_message(text=f"A return for the {outcome.detail} already exists: its reference is "
                                          f"{outcome.reference}.")


class ActionChangeAddress(ShopAction):
    """Change the delivery address of the verified, unshipped order."""

    slots_to_reset = (ADDRESS,)

    def name(self) -> Text:
        return "action_change_address"

    def act(self, dispatcher: CollectingDispatcher, tracker: Tracker, email: Text) -> None:
        outcome = shop.change_address(tracker.get_slot(ORDER_ID), email,
                                      tracker.get_slot(ADDRESS) or "")
        verb = "will now be delivered to" if outcome.done_now else "is already going to"
        dispatcher.utter_message(text=f"Order {outcome.reference} {verb}: {outcome.detail}.")


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
            dispatcher.utter_message(text=HANDOFF_FAILED)
            return []
        contact = f"by email at {email}" if email else "right here in this chat"
        dispatcher.utter_message(
            text=f"I've handed your conversation to our support team: your ticket number is {outcome.reference}. "
                 f"A colleague will get back to you {contact}, usually within a few hours.")
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
    """Answer a frequent question from actions/faq.yml, the file non-developers edit."""

    def name(self) -> Text:
        return "action_answer_faq"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        intent = tracker.get_intent_of_latest_message()
        try:
            text = faq.answer(intent)
            if text is None:
                logger.error("No answer for '%s' in %s; add one there", intent, faq.FAQ_FILE)
        except ValueError as error:  # the file is broken: its own message says where
            logger.error("%s", error)
            text = None
        if text is None:
            dispatcher.utter_message(response="utter_default")
        else:
            dispatcher.utter_message(text=text)
        return []


class ActionSuggestIntent(Action):
    """First stage of the fallback when the NLU is unsure: "Did you want to ...?" with Yes/No.

    "Yes" sends the guessed intent with the message's entities; "No" (out_of_scope) leads to
    "please rephrase" (rules.yml). When the best guess is no request (a greeting, chitchat) or
    there is none at all (Triton is down), it asks to rephrase right away.
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
        payload = f"/{candidate}{json.dumps(entities) if entities else ''}"
        dispatcher.utter_message(
            text=f"Sorry, I'm not sure I understood. Did you want to {INTENT_DESCRIPTIONS[candidate]}?",
            buttons=[{"title": "Yes", "payload": payload}, {"title": "No", "payload": "/out_of_scope"}],
        )
        return []

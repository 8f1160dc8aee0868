"""The forms' submit actions: each does its shop operation once and says what happened.

No action raises: a customer's mistake gets an explanation, a failing database an apology, both a
log line. Every text is a response in domain.yml; values that Rasa fills in are never personal
data (Rasa keeps them unredacted with the message): the email comes from its slot.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from typing import List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import shop
from actions.common import ADDRESS, CONFIRM, EMAIL, ORDER_ID, PRODUCT, REASON, VERIFIED_IN, render, verified_email
from actions.models import DELIVERED, PROCESSING, SHIPPED
from actions.shop import BACKEND_DOWN, BackendUnavailable, OrderInfo, ShopError

logger = logging.getLogger(__name__)


class ShopAction(Action, ABC):
    """A form's submit action: one shop operation with the verified email, every failure
    answered, its form's slots reset."""

    slots_to_reset: tuple = ()

    @abstractmethod
    def act(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict, email: Text) -> None:
        """Do the operation for the customer who verified `email` and tell them the outcome."""

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        email = verified_email(tracker)
        if email is None:
            logger.warning(
                "%s in conversation %s: the email was not verified in this conversation", self.name(), tracker.sender_id
            )
            dispatcher.utter_message(response="utter_not_verified")
            return [SlotSet(slot, None) for slot in (ORDER_ID, EMAIL, VERIFIED_IN, *self.slots_to_reset)]
        try:
            self.act(dispatcher, tracker, domain, email)
        except BackendUnavailable as error:
            logger.error("%s in conversation %s: %s", self.name(), tracker.sender_id, error)
            dispatcher.utter_message(response=BACKEND_DOWN)
        except ShopError as error:
            logger.warning("%s in conversation %s: %s", self.name(), tracker.sender_id, error)
            dispatcher.utter_message(response=error.response, **error.values)
        except Exception:  # a bug must not end the conversation; the log has the traceback
            logger.exception("%s failed in conversation %s", self.name(), tracker.sender_id)
            dispatcher.utter_message(response=BACKEND_DOWN)
        return [SlotSet(slot, None) for slot in (ORDER_ID, *self.slots_to_reset)]


class ActionOrderStatus(ShopAction):
    """Status, delivery date, tracking, returns and refunds of the verified order."""

    def name(self) -> Text:
        return "action_order_status"

    def act(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict, email: Text) -> None:
        dispatcher.utter_message(text=describe(domain, shop.verify(tracker.get_slot(ORDER_ID), email)))


def describe(domain: DomainDict, order: OrderInfo) -> Text:
    """The order's status in one message put together from responses: its status line, then when
    it should arrive, its returns and its refunds."""
    values = {
        "order_id": order.number,
        "items": ", ".join(order.products),
        "shipped_on": f"{order.shipped_on:%B %d}" if order.shipped_on else "",
        "delivered_on": f"{order.delivered_on:%B %d}" if order.delivered_on else "",
        "expected_on": f"{order.expected_on:%A, %B %d}" if order.expected_on else "",
        "carrier": order.carrier,
        "tracking_number": order.tracking_number,
        "returns": "; ".join(order.returns),
        "refunds": "; ".join(order.refunds),
    }
    if order.status == PROCESSING:
        lines = ["utter_order_processing_expected" if order.expected_on else "utter_order_processing"]
    elif order.status == SHIPPED:
        lines = ["utter_order_shipped", *(["utter_order_arrives"] if order.expected_on else [])]
    elif order.status == DELIVERED:
        lines = ["utter_order_delivered"]
    else:
        lines = ["utter_order_cancelled"]
    lines += ["utter_order_returns"] if order.returns else []
    lines += ["utter_order_refunds"] if order.refunds else []
    return " ".join(render(domain, line, **values)["text"] for line in lines)


class ActionCancelOrder(ShopAction):
    """Cancel the verified order after the user confirmed; an already cancelled one stays so."""

    slots_to_reset = (CONFIRM,)

    def name(self) -> Text:
        return "action_cancel_order"

    def act(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict, email: Text) -> None:
        if tracker.get_slot(CONFIRM) is False:
            dispatcher.utter_message(response="utter_cancel_declined")
            return
        outcome = shop.cancel_order(tracker.get_slot(ORDER_ID), email)
        if outcome.done_now:
            logger.info("Cancelled order %s for conversation %s", outcome.reference, tracker.sender_id)
        dispatcher.utter_message(
            response="utter_cancelled" if outcome.done_now else "utter_cancelled_before",
            order_id=outcome.reference,
            refund=outcome.detail,
        )


class ActionStartReturn(ShopAction):
    """Create the return (once per item) and give its reference; the label goes to the email slot."""

    slots_to_reset = (PRODUCT, REASON)

    def name(self) -> Text:
        return "action_start_return"

    def act(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict, email: Text) -> None:
        outcome = shop.start_return(
            tracker.get_slot(ORDER_ID), email, tracker.get_slot(PRODUCT) or "", tracker.get_slot(REASON) or ""
        )
        if outcome.done_now:
            logger.info("Return %s for conversation %s", outcome.reference, tracker.sender_id)
        dispatcher.utter_message(
            response="utter_return_registered" if outcome.done_now else "utter_return_registered_before",
            product=outcome.detail,
            reference=outcome.reference,
        )


class ActionChangeAddress(ShopAction):
    """Change the delivery address of the verified, unshipped order."""

    slots_to_reset = (ADDRESS,)

    def name(self) -> Text:
        return "action_change_address"

    def act(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict, email: Text) -> None:
        outcome = shop.change_address(tracker.get_slot(ORDER_ID), email, tracker.get_slot(ADDRESS) or "")
        dispatcher.utter_message(
            response="utter_address_changed" if outcome.done_now else "utter_address_changed_before",
            order_id=outcome.reference,
            address=outcome.detail,
        )

"""Custom actions for the shop support bot.

Order data is a tiny in-memory demo table; a later issue replaces it with a
real order backend.
"""

from abc import ABCMeta, abstractmethod
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

# Demo orders: order id -> status.
DEMO_ORDERS: Dict[Text, Text] = {
    "12345": "shipped",
    "98765": "in_transit",
    "100234": "processing",
    "55821": "delivered",
    "A-7781": "processing",
}

STATUS_MESSAGES: Dict[Text, Text] = {
    "processing": "Order {id} is being prepared and will ship soon.",
    "shipped": "Order {id} has shipped and is on its way.",
    "in_transit": "Order {id} is on its way and should arrive in 1-2 days.",
    "delivered": "Order {id} has been delivered.",
}

ASK_ORDER_ID = "What is your order number?"


def normalize_order_id(value: Any) -> Optional[Text]:
    """Return a cleaned order id (no '#', no spaces, upper case) or None."""
    if value is None:
        return None
    if isinstance(value, list):  # a slot may hold several extracted values
        value = value[0] if value else None
        if value is None:
            return None
    cleaned = str(value).strip().lstrip("#").strip().upper()
    return cleaned or None


def get_order_id(tracker: Tracker) -> Optional[Text]:
    """Read the order id from the slot, falling back to the latest entity."""
    order_id = normalize_order_id(tracker.get_slot("order_id"))
    if order_id is None:
        order_id = normalize_order_id(
            next(tracker.get_latest_entity_values("order_id"), None)
        )
    return order_id


class OrderAction(Action, metaclass=ABCMeta):
    """An action about one order: it asks for the number when the user gave none.

    Abstract, so that the action server registers only its subclasses.
    """

    ask_for_order_id = ASK_ORDER_ID

    def run(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: Dict[Text, Any],
    ) -> List[Dict[Text, Any]]:
        order_id = get_order_id(tracker)
        if order_id is None:
            dispatcher.utter_message(text=self.ask_for_order_id)
        else:
            self.handle(dispatcher, tracker, order_id)
        return []

    @abstractmethod
    def handle(self, dispatcher: CollectingDispatcher, tracker: Tracker, order_id: Text) -> None:
        """Answer about the order `order_id`."""


class ActionOrderStatus(OrderAction):
    """Tell the user the status of their order."""

    def name(self) -> Text:
        return "action_order_status"

    def handle(self, dispatcher: CollectingDispatcher, tracker: Tracker, order_id: Text) -> None:
        status = DEMO_ORDERS.get(order_id)
        if status is None:
            dispatcher.utter_message(text=f"I could not find order {order_id}. Please double-check the number.")
        else:
            dispatcher.utter_message(text=STATUS_MESSAGES[status].format(id=order_id))


class ActionCancelOrder(OrderAction):
    """Cancel an order that has not shipped yet."""

    def name(self) -> Text:
        return "action_cancel_order"

    def handle(self, dispatcher: CollectingDispatcher, tracker: Tracker, order_id: Text) -> None:
        status = DEMO_ORDERS.get(order_id)
        if status is None:
            dispatcher.utter_message(text=f"I could not find order {order_id}.")
        elif status == "processing":
            DEMO_ORDERS[order_id] = "cancelled"
            dispatcher.utter_message(
                text=f"Order {order_id} has been cancelled. Your refund will arrive within 5 business days."
            )
        elif status == "cancelled":
            dispatcher.utter_message(text=f"Order {order_id} is already cancelled.")
        else:
            dispatcher.utter_message(
                text=f"Order {order_id} has already shipped, so it can't be cancelled anymore. "
                "You can return it once it arrives."
            )


class ActionStartReturn(OrderAction):
    """Start a return and hand the user a return reference."""

    ask_for_order_id = 'To start a return, please tell me your order number, for example: "return order 12345".'

    def name(self) -> Text:
        return "action_start_return"

    def handle(self, dispatcher: CollectingDispatcher, tracker: Tracker, order_id: Text) -> None:
        product = tracker.get_slot("product")
        item = f"the {product} from order {order_id}" if product else f"order {order_id}"
        dispatcher.utter_message(
            text=f"I've started a return for {item}. Your return reference is RET-{order_id}. "
            "A prepaid return label will be sent to your email."
        )

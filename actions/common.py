"""What the actions share: slot names, the table of requests (actions/flows.yml), the verified
email, and the one helper that renders a response of the domain for a message Rasa cannot send as
one response.

A verified email counts only in the conversation that verified it (`verified_email`): the
validators record that conversation's id beside the email, so slots that reach another
conversation (a tracker copied or restored under another id) open no order there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional, Text

import yaml
from rasa_sdk import Tracker
from rasa_sdk.types import DomainDict

ORDER_ID, EMAIL, PRODUCT, REASON, ADDRESS, CONFIRM = (
    "order_id",
    "email",
    "product",
    "return_reason",
    "new_address",
    "confirm_cancel",
)
PROBLEM = "problem"  # why the user's last answer was not accepted; said with the next question
VERIFIED_IN = "verified_conversation"  # the conversation whose customer proved `email` is theirs
REQUESTED_SLOT = "requested_slot"

FLOWS_FILE = Path(__file__).with_name("flows.yml")
FLOWS = yaml.safe_load(FLOWS_FILE.read_text(encoding="utf-8"))
FORM_INTENTS = {form: tuple(spec["intents"]) for form, spec in FLOWS["forms"].items()}
INTENT_DESCRIPTIONS: Dict[Text, Text] = FLOWS["descriptions"]


def verified_email(tracker: Tracker) -> Optional[Text]:
    """The email this conversation's customer verified; None when none was, or another conversation did."""
    email = tracker.get_slot(EMAIL)
    return email if email and tracker.get_slot(VERIFIED_IN) == tracker.sender_id else None


def render(domain: DomainDict, response: Text, **values: Any) -> Dict[Text, Any]:
    """The domain's `response` (its first variation) as a message: text filled with `values` as Rasa
    fills {names}, and its buttons. For a text put together from several responses (a refusal and
    the next question, an order's status); everything else is sent as `response=` and Rasa fills it."""
    first = domain["responses"][response][0]
    return {"text": first["text"].format_map(values), "buttons": first.get("buttons", [])}

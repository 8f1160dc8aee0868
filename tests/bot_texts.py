"""The bot's texts as a customer reads them: the responses in domain.yml, filled by Rasa's own
response generator, as Rasa fills the messages an action sends with `response=`."""

from __future__ import annotations

from typing import Any, Dict, Optional

import yaml
from rasa.core.nlg.response import TemplatedNaturalLanguageGenerator

from tests.conftest import ROOT

RESPONSES = yaml.safe_load((ROOT / "domain.yml").read_text())["responses"]
GENERATOR = TemplatedNaturalLanguageGenerator(RESPONSES)


def shown(message: Dict[str, Any], slots: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """An action's message (CollectingDispatcher's, or the action server's JSON) as Rasa sends it:
    its response filled from the slots and the message's values, or the message as it is."""
    values = dict(message)
    response = values.pop("response", None)
    return GENERATOR.generate_from_slots(response, slots or {}, "rest", **values) if response else message


def said(message: Dict[str, Any], slots: Optional[Dict[str, Any]] = None) -> str:
    """The text of an action's message, as the customer reads it."""
    return shown(message, slots)["text"]


def text(response: str, **values: Any) -> str:
    """The response's text with its {names} filled from `values`."""
    return said({"response": response, **values})

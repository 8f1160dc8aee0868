"""Rasa's check of the action server's answers (bot/rasa_patches/action_results.py): the same verdicts
and errors as Rasa's own, with the schema compiled once."""

from __future__ import annotations

import jsonschema
import pytest
from rasa.core.actions.action import RemoteAction

import bot.channels  # noqa: F401 - installs the check, as credentials.yml's channels do in `rasa run`
from bot.rasa_patches import action_results

VALID = [
    {"events": [], "responses": []},
    {
        "events": [
            {"event": "slot", "timestamp": None, "name": "order_id", "value": "12345"},
            {"event": "active_loop", "name": None},
            {"event": "action_execution_rejected", "name": "order_status_form"},
        ],
        "responses": [{"text": "What is the email address on order 12345?", "response": "utter_ask_email"}],
    },
]
INVALID = [
    {"events": {"event": "slot"}, "responses": []},
    {"events": [{"name": "order_id", "value": "12345"}], "responses": []},
    {"events": [{"event": "slot", "name": 7}], "responses": []},
    {"events": [], "responses": ["not an object"]},
]


def rasas_verdict(result: dict) -> str:
    """What Rasa 3.6's own RemoteAction._validate_action_result does: jsonschema.validate, its words added."""
    try:
        jsonschema.validate(result, RemoteAction.action_response_format_spec())
    except jsonschema.ValidationError as error:
        return error.message
    return "valid"


def test_rasa_uses_the_compiled_check():
    assert RemoteAction._validate_action_result is action_results.validate_action_result


@pytest.mark.parametrize("result", VALID)
def test_answers_rasa_accepts_are_accepted(result):
    assert rasas_verdict(result) == "valid"
    assert RemoteAction("action_x", None)._validate_action_result(result) is True


@pytest.mark.parametrize("result", INVALID)
def test_answers_rasa_refuses_are_refused_with_rasas_error(result):
    with pytest.raises(jsonschema.ValidationError) as raised:
        RemoteAction("action_x", None)._validate_action_result(result)
    assert raised.value.message.startswith(rasas_verdict(result) + ". Failed to validate Action server response")
    assert "/custom-actions" in raised.value.message

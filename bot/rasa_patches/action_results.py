"""Rasa's check of every action server answer, with its JSON schema compiled once.

Rasa 3.6 checks each answer with `jsonschema.validate(answer, schema)`, which first checks the
schema itself against the JSON Schema meta-schema: about 50 ms of CPU per action call on two cores,
a third of what a Rasa process spends on a message. The schema never changes, so here it is checked
once and the answers against it as before, with Rasa's error message when one does not conform.
"""

from __future__ import annotations

import functools
from typing import Any, Dict, Text

from jsonschema.exceptions import best_match
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for
from rasa.core.actions.action import RemoteAction
from rasa.shared.constants import DOCS_BASE_URL


@functools.lru_cache(maxsize=1)
def _validator() -> Validator:
    schema = RemoteAction.action_response_format_spec()
    cls = validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def validate_action_result(self: RemoteAction, result: Dict[Text, Any]) -> bool:
    """RemoteAction._validate_action_result, with the validator made once."""
    error = best_match(_validator().iter_errors(result))  # the error jsonschema.validate would raise
    if error is None:
        return True
    error.message += (  # and Rasa's words with it
        f". Failed to validate Action server response from API, "
        f"make sure your response from the Action endpoint is valid. "
        f"For more information about the format visit "
        f"{DOCS_BASE_URL}/custom-actions"
    )
    raise error


def install() -> None:
    """Replace RemoteAction._validate_action_result (once per process)."""
    RemoteAction._validate_action_result = validate_action_result

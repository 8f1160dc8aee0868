"""Rasa's lookup of an event's class by type name (bot/rasa_patches/event_classes.py): the same
answers as Rasa's walk over Event's subclasses, for every event Rasa knows and for the edge cases."""

from __future__ import annotations

import pytest
from rasa.shared.core.events import ActionExecuted, Event, UserUttered
from rasa.shared.utils.common import all_subclasses

import bot.channels  # noqa: F401 - installs the table, as credentials.yml's channels do in rasa run
from bot.rasa_patches import event_classes

rasas_walk = event_classes._walk


def test_the_channels_install_it() -> None:
    assert Event.resolve_by_type is event_classes.resolve_by_type


@pytest.mark.parametrize("type_name", sorted({cls.type_name for cls in all_subclasses(Event)}))
def test_every_event_type_resolves_to_the_class_rasa_finds(type_name: str) -> None:
    assert Event.resolve_by_type(type_name) is rasas_walk(type_name)


def test_unknown_names_are_answered_as_rasa_answers_them() -> None:
    with pytest.raises(ValueError, match="Unknown event name 'no_such_event'"):
        Event.resolve_by_type("no_such_event")
    assert Event.resolve_by_type("no_such_event", default=ActionExecuted) is ActionExecuted
    assert Event.resolve_by_type("topic") is None  # Rasa's backwards compatibility


def test_an_event_class_imported_later_is_found() -> None:
    Event.resolve_by_type("user")  # the table exists before the new class does

    class CustomerRated(ActionExecuted):
        type_name = "test_customer_rated"

    assert Event.resolve_by_type("test_customer_rated") is CustomerRated


def test_stored_events_read_back_as_before() -> None:
    stored = [UserUttered("where is my order?", {"name": "order_status", "confidence": 0.9}), ActionExecuted("x")]
    assert [Event.from_parameters(event.as_dict()) for event in stored] == stored

"""Rasa's lookup of an event's class by its type name, from a table instead of a walk.

Rasa 3.6 finds the class of every event it reads back (each stored event of a conversation at each
message, each event an action returns) by walking every subclass of `Event` and asking each whether
it is abstract: about a tenth of a Rasa process's CPU per message. The answer only changes when a new
subclass is imported, so the walk's answers are kept by type name and the walk runs again only for a
name the table does not know yet.
"""

from __future__ import annotations

from typing import Dict, Optional, Text, Type

from rasa.shared.core.events import Event
from rasa.shared.utils.common import all_subclasses

_walk = Event.resolve_by_type  # Rasa's own: unknown names, "topic" and the default stay its business
_classes: Dict[Text, Type[Event]] = {}


def resolve_by_type(type_name: Text, default: Optional[Type[Event]] = None) -> Optional[Type[Event]]:
    """Event.resolve_by_type: the same class for a name, as Rasa's walk finds it first."""
    found = _classes.get(type_name)
    if found is None:
        for cls in reversed(all_subclasses(Event)):  # the walk's first match wins, as in Rasa's
            _classes[cls.type_name] = cls
        found = _classes.get(type_name)
    return found if found is not None else _walk(type_name, default)


def install() -> None:
    """Replace Event.resolve_by_type (once per process)."""
    Event.resolve_by_type = staticmethod(resolve_by_type)

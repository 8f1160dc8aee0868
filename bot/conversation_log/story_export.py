"""Whole logged conversations as Rasa test stories, to turn real chats into regression tests.

A conversation is one session of one sender (Rasa starts a new session after the domain's
`session_expiration_time`); every session with a user message in the period is exported, from its
start. User texts and slot values are redacted and placeholders stay unannotated, as in the
review export: a story whose user typed an email needs an example address before `rasa test`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Dict, List, Optional

from rasa.shared.core.domain import Domain
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.core.training_data.story_writer.yaml_story_writer import YAMLStoryWriter

from bot.conversation_log.redaction import Redactor
from bot.conversation_log.review_export import exportable
from bot.conversation_log.store import StoredEvent

SESSION_STARTED = "session_started"


def sessions(events: List[StoredEvent]) -> Dict[str, List[List[Dict[str, Any]]]]:
    """Each sender's events split into sessions, in the order they happened."""
    split: Dict[str, List[List[Dict[str, Any]]]] = {}
    for event in events:
        sender = split.setdefault(event.sender_id, [[]])
        if event.type == SESSION_STARTED and any(e.get("event") == "user" for e in sender[-1]):
            sender.append([])
        sender[-1].append(event.data)
    return split


def render(
    events: List[StoredEvent], domain: Domain, redactor: Redactor, since: Optional[float], until: Optional[float]
) -> str:
    """Test stories (YAML) of the sessions of `events` that have a user message in [since, until)."""
    steps = []
    for sender_id, sender_sessions in sessions(events).items():
        for session in sender_sessions:
            said = [e["timestamp"] for e in session if e.get("event") == "user" and e.get("timestamp") is not None]
            if not any((since is None or t >= since) and (until is None or t < until) for t in said):
                continue
            started = datetime.fromtimestamp(min(said)).strftime("%Y-%m-%d %H:%M:%S")
            tracker = DialogueStateTracker.from_dict(
                f"{sender_id} {started}", [_private(e, redactor) for e in session], domain.slots
            )
            steps.extend(tracker.as_story().story_steps)
    return YAMLStoryWriter().dumps(steps, is_test_story=True) if steps else 'version: "3.1"\nstories: []\n'


def _private(event: Dict[str, Any], redactor: Redactor) -> Dict[str, Any]:
    """The event with its message redacted, entities Rasa can annotate, and slot values redacted."""
    if event.get("event") == "user" and event.get("text"):
        parse_data = dict(event.get("parse_data") or {})
        text, entities = exportable(event["text"], parse_data.get("entities") or [], redactor)
        return {**event, "text": text, "parse_data": {**parse_data, "text": text, "entities": entities}}
    if event.get("event") == "slot" and isinstance(event.get("value"), str):
        return {**event, "value": redactor.redact(event["value"])}
    return redactor.redact_event(event)

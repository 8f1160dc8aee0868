"""The NLU result of each logged user message, as the review export and the report read it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional

from rasa.shared.constants import DEFAULT_NLU_FALLBACK_INTENT_NAME as FALLBACK_INTENT
from rasa.shared.constants import INTENT_MESSAGE_PREFIX

from bot.conversation_log.store import StoredEvent


@dataclass(frozen=True)
class LoggedMessage:
    sender_id: str
    timestamp: float
    text: str
    intent: Optional[str]  # what Rasa acted on: the model's intent, or nlu_fallback
    predicted: Optional[str]  # the model's best real intent (also under a fallback); None if it never answered
    confidence: float  # the model's confidence in `predicted`
    entities: List[Dict[str, Any]]
    typed: bool  # False for button payloads and /intent triggers, which skip NLU

    @property
    def fallback(self) -> bool:
        return self.intent == FALLBACK_INTENT


def logged_messages(events: Iterable[StoredEvent]) -> List[LoggedMessage]:
    """The `user` events among `events`, with the intent and confidence the model gave each."""
    messages = []
    for event in events:
        if event.type != "user":
            continue
        parse = event.data.get("parse_data") or {}
        text = event.data.get("text") or ""
        intent = (parse.get("intent") or {}).get("name")
        ranking = parse.get("intent_ranking") or [parse.get("intent") or {}]
        best: Dict[str, Any] = next(
            (entry for entry in ranking if entry.get("name") not in (None, FALLBACK_INTENT)), {}
        )
        messages.append(
            LoggedMessage(
                sender_id=event.sender_id,
                timestamp=event.timestamp,
                text=text,
                intent=intent,
                predicted=best.get("name"),
                confidence=float(best.get("confidence") or 0.0),
                entities=list(parse.get("entities") or []),
                typed=bool(text) and not text.startswith(INTENT_MESSAGE_PREFIX),
            )
        )
    return messages

"""Real user messages as Rasa NLU YAML to review: the least confident and the fallbacks first.

Each distinct message (case and spacing ignored) appears once, under the intent the model
predicted, annotated with the entities it found; texts that are already training examples are
left out. A reviewer moves examples to the right intent, deletes what should not be learned,
and drops the file into data/, where `rasa train` picks it up. Messages the model never answered
(Triton down) and button payloads are not exported. Spans replaced by placeholders stay
unannotated, since `[EMAIL]` cannot sit inside an annotation.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Set, Tuple

from rasa.shared.importers.rasa import RasaFileImporter
from rasa.shared.nlu.training_data.formats.readerwriter import TrainingDataWriter

from bot.conversation_log.logged_messages import LoggedMessage
from bot.conversation_log.redaction import Redactor

HEADER = """\
# Real user messages from the conversation log ({period}), for review.
# Each example sits under the intent the model predicted, with its confidence; least confident first.
# Move examples to the right intent, delete what should not be learned, then put this file in data/.
"""


@dataclass
class Candidate:
    message: LoggedMessage
    count: int = 1


def normalized(text: str) -> str:
    """The same message however it was cased or spaced."""
    return re.sub(r"\s+", " ", text).strip().casefold()


def training_texts(data: Path) -> Set[str]:
    """The normalized texts of the NLU examples under `data` (a file or directory)."""
    if not data.exists():
        return set()
    examples = RasaFileImporter(training_data_paths=[str(data)]).get_nlu_data().intent_examples
    return {normalized(example.get("text") or "") for example in examples}


def candidates(messages: Iterable[LoggedMessage], known: Set[str]) -> List[Candidate]:
    """Typed, model-answered messages not in `known`, one per distinct text, keeping the least confident."""
    found: Dict[str, Candidate] = {}
    for message in messages:
        key = normalized(message.text)
        if not message.typed or message.predicted is None or not key or key in known:
            continue
        if key not in found:
            found[key] = Candidate(message)
            continue
        found[key].count += 1
        if _urgency(message) < _urgency(found[key].message):
            found[key].message = message
    return list(found.values())


def _urgency(message: LoggedMessage) -> tuple:
    """Sort key: fallbacks before the rest, then by rising confidence."""
    return (not message.fallback, message.confidence)


def render(found: List[Candidate], redactor: Redactor, period: str) -> str:
    """The NLU YAML: intents ordered by their least confident example, examples by rising confidence."""
    groups: Dict[str, List[Candidate]] = {}
    for candidate in sorted(found, key=lambda c: _urgency(c.message)):
        assert candidate.message.predicted is not None  # candidates() keeps only predicted messages
        groups.setdefault(candidate.message.predicted, []).append(candidate)
    lines = [HEADER.format(period=period), 'version: "3.1"', "nlu:" if groups else "nlu: []"]
    for intent, members in groups.items():
        lowest = members[0].message.confidence
        count = f"{len(members)} message{'s' if len(members) > 1 else ''}"
        lines.append(f"- intent: {intent}  # {count}, lowest confidence {lowest:.2f}")
        lines.append("  examples:")
        for candidate in members:
            text = json.dumps(_annotated(candidate.message, redactor), ensure_ascii=False)
            notes = [f"{candidate.message.confidence:.2f}"]
            if candidate.message.fallback:
                notes.append("fallback")
            if candidate.count > 1:
                notes.append(f"seen {candidate.count} times")
            lines.append(f"  - text: {text}  # {', '.join(notes)}")
    return "\n".join(lines) + "\n"


def _annotated(message: LoggedMessage, redactor: Redactor) -> str:
    """The text with Rasa's inline entity annotations, e.g. `where is [12345](order_id)`."""
    text, entities = exportable(message.text, message.entities, redactor)
    return TrainingDataWriter.generate_message({"text": text, "entities": entities})


def exportable(text: str, entities: List[Dict[str, Any]], redactor: Redactor) -> Tuple[str, List[Dict[str, Any]]]:
    """The text redacted (a log written with redaction off stays private in exports) and the
    entities Rasa can annotate in it: one per span and type, with a text value and no placeholder."""
    event = redactor.redact_event({"event": "user", "text": text, "parse_data": {"text": text, "entities": entities}})
    text = event["text"]
    kept: Dict[Tuple[int, int, str], Dict[str, Any]] = {}
    for entity in event["parse_data"]["entities"]:
        start, end, value = entity.get("start"), entity.get("end"), entity.get("value")
        if not (
            isinstance(start, int) and isinstance(end, int) and isinstance(value, str) and 0 <= start < end <= len(text)
        ):
            continue
        if redactor.contains_placeholder(text[start:end] + value):
            continue
        fields = ("start", "end", "entity", "value", "role", "group")
        kept.setdefault((start, end, entity.get("entity")), {key: entity[key] for key in fields if key in entity})
    return text, list(kept.values())

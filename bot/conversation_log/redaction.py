"""Typed placeholders for personal data in what users type, before it reaches the log store.

Email addresses become `[EMAIL]`, IBANs `[IBAN]`, payment card numbers `[CARD]`, phone numbers
`[PHONE]` (what counts as each: personal_data.py); extra patterns from endpoints.yml name their own
placeholder and run as given, so they must take linear time themselves. Entity offsets are moved
with the text, so a redacted message keeps exact entity spans.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Pattern, Tuple

from bot.conversation_log.personal_data import cards, emails, ibans, mask, phones

Span = Tuple[int, int, str]  # start, end, placeholder
Finder = Callable[[str], Iterable[Tuple[int, int]]]  # text -> sorted, non-overlapping (start, end)


@dataclass(frozen=True)
class Rule:
    placeholder: str
    find: Finder


def _matches(pattern: Pattern[str]) -> Finder:
    """An extra pattern's non-empty matches."""
    return lambda text: (match.span() for match in pattern.finditer(text) if match.end() > match.start())


# Earlier rules win where finds overlap: the digits of an email or IBAN are not also a phone.
DEFAULT_RULES = (
    Rule("[EMAIL]", emails),
    Rule("[IBAN]", ibans),
    Rule("[CARD]", cards),
    Rule("[PHONE]", phones),
)


@dataclass(frozen=True)
class Redactor:
    """Replaces personal data in texts and in the messages of serialised events."""

    rules: Tuple[Rule, ...] = DEFAULT_RULES
    enabled: bool = True
    placeholders: Tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "placeholders", tuple(rule.placeholder for rule in self.rules))

    @classmethod
    def from_config(cls, redact: bool = True, extra_patterns: Optional[Mapping[str, str]] = None) -> "Redactor":
        """`redact: false` turns redaction off; `extra_patterns` maps a name to a regex (name
        CUSTOMER_ID -> [CUSTOMER_ID]), applied after the default rules."""
        extra = []
        for name, regex in (extra_patterns or {}).items():
            try:
                extra.append(Rule(f"[{name.upper()}]", _matches(re.compile(regex))))
            except re.error as error:
                raise ValueError(
                    f"extra_patterns.{name} in the tracker_store section is not a valid regex: {error}"
                ) from error
        return cls(DEFAULT_RULES + tuple(extra), enabled=bool(redact))

    def spans(self, text: str) -> List[Span]:
        """Non-overlapping finds in text order, earlier rules first: each rule sees the text with
        what earlier rules found masked, so a card number is never also a phone."""
        found: List[Span] = []
        for rule in self.rules:
            found = _merge(found, [(start, end, rule.placeholder) for start, end in rule.find(mask(text, found))])
        return found

    def redact(self, text: str) -> str:
        return _apply(text, self.spans(text))[0] if self.enabled and text else text

    def contains_placeholder(self, text: str) -> bool:
        return any(placeholder in text for placeholder in self.placeholders)

    def redact_event(self, event: Dict[str, Any]) -> Dict[str, Any]:
        """A copy of a serialised event with its message text redacted: for a `user` event also the
        parse-data text and entity values (offsets moved), for a `bot` event the text it sent."""
        text = event.get("text")
        if not self.enabled or event.get("event") not in ("user", "bot") or not text:
            return event
        redacted, move = _apply(text, self.spans(text))
        if redacted == text:
            return event
        if event["event"] == "bot":
            return {**event, "text": redacted}
        parse_data = dict(event.get("parse_data") or {})
        parse_data["text"] = redacted
        parse_data["entities"] = [
            self._redact_entity(entity, text, redacted, move) for entity in parse_data.get("entities") or []
        ]
        return {**event, "text": redacted, "parse_data": parse_data}

    def _redact_entity(self, entity: Dict[str, Any], text: str, redacted: str, move: "Move") -> Dict[str, Any]:
        entity = dict(entity)
        start, end = entity.get("start"), entity.get("end")
        if isinstance(start, int) and isinstance(end, int) and 0 <= start <= end <= len(text):
            entity["start"], entity["end"] = move(start, False), move(end, True)
            if str(entity.get("value")) == text[start:end]:
                entity["value"] = redacted[entity["start"] : entity["end"]]
        entity["value"] = self._redact_value(entity.get("value"))
        return entity

    def _redact_value(self, value: Any) -> Any:
        """Strings redacted, also inside the dicts and lists that normalising extractors return."""
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            return {key: self._redact_value(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self._redact_value(item) for item in value]
        return value


def _merge(kept: List[Span], new: List[Span]) -> List[Span]:
    """Both sorted lists in one, without the new spans that overlap a kept one (an extra pattern
    may match masked text)."""
    merged: List[Span] = []
    index = 0
    for span in new:
        while index < len(kept) and kept[index][1] <= span[0]:
            merged.append(kept[index])
            index += 1
        if (index < len(kept) and kept[index][0] < span[1]) or (merged and merged[-1][1] > span[0]):
            continue
        merged.append(span)
    return merged + kept[index:]


Move = Callable[[int, bool], int]  # old offset, is it a span's end -> new offset


def _apply(text: str, spans: List[Span]) -> Tuple[str, Move]:
    """The text with each span replaced, and a map from old offsets to new ones.

    An offset inside a replaced span maps to the placeholder's start, or its end for a span's end.
    """
    pieces, starts, shifts, last, shift = [], [], [], 0, 0
    for start, end, placeholder in spans:
        pieces += [text[last:start], placeholder]
        after = shift + len(placeholder) - (end - start)
        starts.append(start)
        shifts.append((start, end, shift, after))
        shift, last = after, end
    pieces.append(text[last:])

    def move(offset: int, is_end: bool) -> int:
        index = bisect_left(starts, offset)  # the spans before it start before the offset
        if not index:
            return offset
        start, end, before, after = shifts[index - 1]
        if offset < end:
            return end + after if is_end else start + before
        return offset + after

    return "".join(pieces), move

"""Typed placeholders for personal data in what users type, before it reaches the log store.

Email addresses become `[EMAIL]`, phone numbers `[PHONE]`, payment card numbers (13-19 digits that
pass the Luhn check) `[CARD]`; extra patterns name their own placeholder. Entity offsets are
moved with the text, so a redacted message keeps exact entity spans.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Pattern, Tuple

Span = Tuple[int, int, str]  # start, end, placeholder

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
PHONE = re.compile(r"(?<![\w+])(?:\+|\()?\d[\d ().-]{5,}\d(?!\w)")
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def luhn_valid(digits: str) -> bool:
    """The checksum every payment card number passes."""
    total = 0
    for position, digit in enumerate(reversed(digits)):
        value = int(digit) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def _is_card(candidate: str) -> bool:
    digits = re.sub(r"\D", "", candidate)
    return 13 <= len(digits) <= 19 and luhn_valid(digits)


def _is_phone(candidate: str) -> bool:
    """7-15 digits written like a phone number: with +, 00 or (area code), a national 0 and 9+
    digits, or in 3+ groups.

    A bare run of digits (an order number) and an ISO date are not phone numbers.
    """
    digits = re.sub(r"\D", "", candidate)
    if not 7 <= len(digits) <= 15 or ISO_DATE.fullmatch(candidate):
        return False
    if candidate.startswith(("+", "(", "00")) or (candidate.startswith("0") and len(digits) >= 9):
        return True
    return len(re.findall(r"\d+", candidate)) >= 3


@dataclass(frozen=True)
class Rule:
    placeholder: str
    pattern: Pattern[str]
    accept: Callable[[str], bool] = lambda candidate: True


DEFAULT_RULES = (
    Rule("[CARD]", CARD, _is_card),
    Rule("[EMAIL]", EMAIL),
    Rule("[PHONE]", PHONE, _is_phone),
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
        """`redact: false` turns redaction off; `extra_patterns` maps a name to a regex (name IBAN -> [IBAN])."""
        extra = []
        for name, regex in (extra_patterns or {}).items():
            try:
                extra.append(Rule(f"[{name.upper()}]", re.compile(regex)))
            except re.error as error:
                raise ValueError(f"extra_patterns.{name} in the tracker_store section is not a valid regex: {error}") from error
        return cls(DEFAULT_RULES + tuple(extra), enabled=bool(redact))

    def spans(self, text: str) -> List[Span]:
        """Non-overlapping matches, earlier rules first (a card number is never also a phone)."""
        found: List[Span] = []
        for rule in self.rules:
            for match in rule.pattern.finditer(text):
                start, end = match.span()
                if end > start and rule.accept(match.group()) and all(end <= s or start >= e for s, e, _ in found):
                    found.append((start, end, rule.placeholder))
        return sorted(found)

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
        parse_data["entities"] = [self._redact_entity(entity, text, redacted, move) for entity in parse_data.get("entities") or []]
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


Move = Callable[[int, bool], int]  # old offset, is it a span's end -> new offset


def _apply(text: str, spans: List[Span]) -> Tuple[str, Move]:
    """The text with each span replaced, and a map from old offsets to new ones.

    An offset inside a replaced span maps to the placeholder's start, or its end for a span's end.
    """
    pieces, shifts, last, shift = [], [], 0, 0
    for start, end, placeholder in spans:
        pieces += [text[last:start], placeholder]
        after = shift + len(placeholder) - (end - start)
        shifts.append((start, end, shift, after))
        shift, last = after, end
    pieces.append(text[last:])

    def move(offset: int, is_end: bool) -> int:
        for start, end, before, after in shifts:
            if offset <= start:
                return offset + before
            if offset < end:
                return end + after if is_end else start + before
        return offset + shift

    return "".join(pieces), move

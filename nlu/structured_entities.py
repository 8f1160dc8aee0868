"""Rule-based extraction of structured entities: order numbers, emails, phones, amounts, dates.

The BERT tagger learns free-text entities (products, reasons, addresses) from examples; values
with a fixed shape are found more reliably by rules. This component runs spaCy's Matcher on the
blank English pipeline (no downloaded model) after BertTritonNLU and adds the entities that the
tagger missed. It never duplicates one: a match that overlaps a tagged entity is dropped, except
that a match which contains a shorter entity of the same type replaces it (the tagger cut an
email address short, say).
"""

from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.extractors.extractor import EntityExtractorMixin
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from nlu.spacy_blank import spacy  # before spaCy's own modules: see nlu/spacy_blank.py

# isort: split
from spacy.matcher import Matcher
from spacy.tokens import Doc, Span
from spacy.util import filter_spans

MONTHS = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
    "jan",
    "feb",
    "mar",
    "apr",
    "jun",
    "jul",
    "aug",
    "sep",
    "sept",
    "oct",
    "nov",
    "dec",
]
WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
CURRENCY_WORDS = ["dollar", "dollars", "usd", "eur", "euro", "euros", "gbp", "pound", "pounds", "bucks"]
DAY = {"REGEX": r"^\d{1,2}(st|nd|rd|th)?$"}
YEAR = {"TEXT": {"REGEX": r"^\d{4}$"}, "OP": "?"}
YEAR_AFTER_COMMA = {"TEXT": {"REGEX": r"^\d{4}$"}}

PATTERNS: Dict[str, List[List[Dict[str, Any]]]] = {
    "order_id": [[{"TEXT": {"REGEX": r"^(\d{5,6}|[A-Za-z]-\d{3,6})$"}}]],
    "email": [[{"LIKE_EMAIL": True}]],
    "phone": [
        [{"TEXT": {"REGEX": r"^\+\d{1,3}$"}}, {"TEXT": {"REGEX": r"^\d{2,4}$"}, "OP": "+"}],
        [
            {"ORTH": "(", "OP": "?"},
            {"TEXT": {"REGEX": r"^\d{3}$"}},
            {"ORTH": ")", "OP": "?"},
            {"ORTH": "-", "OP": "?"},
            {"TEXT": {"REGEX": r"^\d{3}$"}},
            {"ORTH": "-", "OP": "?"},
            {"TEXT": {"REGEX": r"^\d{4}$"}},
        ],
        [{"TEXT": {"REGEX": r"^\+?\d{10,13}$"}}],
    ],
    "amount": [
        [{"IS_CURRENCY": True}, {"LIKE_NUM": True}],
        [{"LIKE_NUM": True}, {"LOWER": {"IN": CURRENCY_WORDS}}],
    ],
    "date": [
        [{"LOWER": {"IN": ["today", "yesterday", "tomorrow"]}}],
        [{"LOWER": {"IN": ["last", "this", "next"]}}, {"LOWER": {"IN": WEEKDAYS + ["week", "weekend", "month"]}}],
        [{"LOWER": {"IN": WEEKDAYS}}],
        [{"LOWER": {"IN": MONTHS}}, {"TEXT": DAY}, YEAR],
        [{"LOWER": {"IN": MONTHS}}, {"TEXT": DAY}, {"ORTH": ","}, YEAR_AFTER_COMMA],
        [{"TEXT": DAY}, {"LOWER": "of", "OP": "?"}, {"LOWER": {"IN": MONTHS}}, YEAR],
        [{"TEXT": {"REGEX": r"^\d{1,2}/\d{1,2}(/\d{2,4})?$"}}],
        [
            {"TEXT": {"REGEX": r"^\d{4}$"}},
            {"ORTH": "-"},
            {"TEXT": {"REGEX": r"^\d{2}$"}},
            {"ORTH": "-"},
            {"TEXT": {"REGEX": r"^\d{2}$"}},
        ],
        [{"LIKE_NUM": True}, {"LOWER": {"IN": ["day", "days", "week", "weeks", "month", "months"]}}, {"LOWER": "ago"}],
    ],
}

# A bare 5-6 digit number is an order number only near these words, or as (nearly) the whole
# message ("it's 12345"): a ZIP code in an address is not.
ORDER_CONTEXT = {"order", "orders", "#", "number", "no", "no.", "nr", "num", "ref", "reference", "id"}
SHORT_ANSWER_TOKENS = 3


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=False)
class StructuredEntityExtractor(GraphComponent, EntityExtractorMixin):
    """Order numbers, emails, phone numbers, amounts and dates by spaCy Matcher rules."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {"language": "en", "entities": list(PATTERNS)}

    def __init__(self, config: Dict[Text, Any]) -> None:
        self.component_config = config
        unknown = set(config["entities"]) - set(PATTERNS)
        if unknown:
            raise ValueError(
                f"{type(self).__name__}: no rules for entities {sorted(unknown)} in config.yml; "
                f"choose from {sorted(PATTERNS)}."
            )
        self._nlp = spacy.blank(config["language"])
        self._matcher = Matcher(self._nlp.vocab)
        for label in config["entities"]:
            self._matcher.add(label, PATTERNS[label], greedy="LONGEST")

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "StructuredEntityExtractor":
        return cls(config)

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            text = message.get(TEXT)
            if text:
                found = self.add_extractor_name(self.extract(text))
                message.set(ENTITIES, merge(message.get(ENTITIES, []), found), add_to_output=True)
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data

    def extract(self, text: Text) -> List[Dict[Text, Any]]:
        """The structured entities in `text`, longest match first where matches overlap."""
        doc = self._nlp.make_doc(text)
        spans = [
            Span(doc, start, end, label=self._nlp.vocab.strings[match_id])
            for match_id, start, end in self._matcher(doc)
        ]
        return [
            {"entity": span.label_, "start": span.start_char, "end": span.end_char, "value": span.text}
            for span in sorted(filter_spans(spans), key=lambda s: s.start)
            if span.label_ != "order_id" or _looks_like_order_number(doc, span)
        ]


def _looks_like_order_number(doc: Doc, span: Span) -> bool:
    before = {token.lower_ for token in doc[max(0, span.start - 3) : span.start]}
    return bool(before & ORDER_CONTEXT) or len([t for t in doc if not t.is_punct]) <= SHORT_ANSWER_TOKENS


def merge(tagged: List[Dict[Text, Any]], found: List[Dict[Text, Any]]) -> List[Dict[Text, Any]]:
    """`tagged` plus those of `found` that add something (see the module's docstring)."""
    merged = list(tagged)
    for entity in found:
        overlapping = [other for other in merged if _overlap(entity, other)]
        if not overlapping:
            merged.append(entity)
        elif all(_replaceable_by(entity, other) for other in overlapping):
            merged = [other for other in merged if other not in overlapping] + [entity]
    return sorted(merged, key=lambda e: (e["start"], e["end"]))


def _overlap(a: Dict[Text, Any], b: Dict[Text, Any]) -> bool:
    return a["start"] < b["end"] and b["start"] < a["end"]


def _replaceable_by(entity: Dict[Text, Any], other: Dict[Text, Any]) -> bool:
    """A shorter entity of the same type, inside `entity`."""
    contained = entity["start"] <= other["start"] and other["end"] <= entity["end"]
    return (
        other["entity"] == entity["entity"]
        and contained
        and (other["end"] - other["start"]) < (entity["end"] - entity["start"])
    )

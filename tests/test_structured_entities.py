"""The rule-based extractor of structured entities, and how it merges with the BERT tagger's."""

from __future__ import annotations

import pytest
from rasa.shared.nlu.training_data.message import Message

from nlu.structured_entities import StructuredEntityExtractor, merge

EXTRACTOR = StructuredEntityExtractor(StructuredEntityExtractor.get_default_config())


def found(text: str) -> list:
    return [(e["entity"], e["value"]) for e in EXTRACTOR.extract(text)]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("where is my order 12345?", [("order_id", "12345")]),
        ("order #A-7781 please", [("order_id", "A-7781")]),
        ("it's 55821", [("order_id", "55821")]),
        ("my email is jane.doe@example.com", [("email", "jane.doe@example.com")]),
        ("call me at +1 555 0100 or (555) 123-4567", [("phone", "+1 555 0100"), ("phone", "(555) 123-4567")]),
        ("I was charged $59.99 and 20 dollars", [("amount", "$59.99"), ("amount", "20 dollars")]),
        (
            "it came yesterday, not on March 3rd, 2024 or 3/14",
            [("date", "yesterday"), ("date", "March 3rd, 2024"), ("date", "3/14")],
        ),
        ("ordered 3 days ago, last monday", [("date", "3 days ago"), ("date", "last monday")]),
    ],
)
def test_structured_values_are_found_with_exact_values(text, expected):
    assert found(text) == expected
    for entity in EXTRACTOR.extract(text):
        assert text[entity["start"] : entity["end"]] == entity["value"]


def test_a_zip_code_in_an_address_is_not_an_order_number():
    assert found("please send it to 12 Elm Street, Springfield, IL 62704") == []


def test_tagged_entities_win_and_nothing_is_duplicated():
    text = "order 12345 for jane.doe@example.com"
    message = Message(
        data={
            "text": text,
            "entities": [
                {"entity": "order_id", "start": 6, "end": 11, "value": "12345", "extractor": "BertTritonNLU"},
                {"entity": "email", "start": 16, "end": 24, "value": "jane.doe", "extractor": "BertTritonNLU"},
            ],
        }
    )
    EXTRACTOR.process([message])
    entities = [(e["entity"], e["value"], e["extractor"]) for e in message.get("entities")]
    # the order number stays the tagger's; the cut-short email is replaced by the whole address
    assert entities == [
        ("order_id", "12345", "BertTritonNLU"),
        ("email", "jane.doe@example.com", "StructuredEntityExtractor"),
    ]


def test_an_overlapping_entity_of_another_type_is_kept():
    tagged = [{"entity": "address", "start": 0, "end": 20, "value": "x"}]
    assert merge(tagged, [{"entity": "phone", "start": 5, "end": 15, "value": "y"}]) == tagged


def test_unknown_entity_types_in_the_config_are_a_clear_error():
    with pytest.raises(ValueError, match="no rules for entities \\['zipcode'\\]"):
        StructuredEntityExtractor({"language": "en", "entities": ["zipcode"]})

"""Entity spans survive the trip to word pieces and back exactly, for every tokenizer family."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest
from tokenizers import Tokenizer

from nlu.encoding import EncodingSettings, TextEncoder
from nlu.tags import EntityLabel, constrained_tags, decode_spans, piece_tags, tag_names
from nlu.training import base_model
from tests.checkpoints import TOKENIZERS

TEXTS = [
    "where is my order 12345?",
    "track  order   #99881,please!!",
    "Statut de la commande 100234 – merci ünïcode 😀 order 77777.",
    "my email is jane.doe@example.com and order A-7781",
    "   leading spaces 55555   ",
    "return the blue running shoes from order 55821 " + "because they did not fit at all " * 12 + "order 31313",
]


def annotate(text: str):
    patterns = {"order_id": r"(?<![\w-])(?:A-)?\d{4,6}\b", "email": r"\S+@\S+\.com", "product": r"blue running shoes"}
    found = [
        {"start": m.start(), "end": m.end(), "value": m.group(), "entity": entity}
        for entity, pattern in patterns.items()
        for m in re.finditer(pattern, text)
    ]
    return sorted(found, key=lambda a: a["start"])


@pytest.fixture(scope="module", params=sorted(TOKENIZERS))
def encoder(request, tmp_path_factory):
    directory = tmp_path_factory.mktemp(request.param)
    TOKENIZERS[request.param](directory, TEXTS * 5).save_pretrained(directory)
    return base_model.load_encoder(str(directory), EncodingSettings(max_length=24, stride=8, max_windows=64))


def test_annotations_round_trip_through_pieces(encoder):
    """Tag the pieces from the annotations, decode them again: the same spans come back."""
    tags = tag_names(a for text in TEXTS for a in annotate(text))
    windows = encoder.windows(TEXTS)
    assert len(windows.input_ids) > len(TEXTS), "the long text must span several windows"
    seen = {i: {} for i in range(len(TEXTS))}
    for offsets, text_index in zip(windows.offsets, windows.text_index):
        labels = piece_tags(offsets, annotate(TEXTS[text_index]), tags)
        for offset, label in zip(offsets, labels):
            if label >= 0:
                seen[text_index].setdefault(offset, label)
    for index, text in enumerate(TEXTS):
        pieces = [(offset, label, 1.0) for offset, label in seen[index].items()]
        decoded = decode_spans(text, pieces, tags)
        expected = annotate(text)
        assert [(e["entity"], e["start"], e["end"], e["value"]) for e in decoded] == [
            (a["entity"], a["start"], a["end"], a["value"]) for a in expected
        ]


def test_no_entity_starts_or_ends_inside_a_word():
    """A tagger unsure of a rare word may change labels between its pieces: the word stays whole."""
    tags = tag_names([{"entity": "order_id"}, {"entity": "address"}])
    tag = {name: i for i, name in enumerate(tags)}
    text = "asdkjh qwpoeiru"
    pieces = [
        ((0, 2), tag["B-order_id||"], 0.6),
        ((2, 6), tag["B-address||"], 0.5),
        ((7, 9), tag["I-address||"], 0.7),
        ((9, 15), tag["I-address||"], 0.9),
    ]
    assert [(e["entity"], e["value"]) for e in decode_spans(text, pieces, tags)] == [
        ("order_id", "asdkjh"),
        ("address", "qwpoeiru"),
    ]


def test_roles_and_groups_are_part_of_the_label():
    annotation = {"entity": "city", "role": "destination", "group": "1", "start": 0, "end": 5}
    label = EntityLabel.of(annotation)
    assert EntityLabel.parse(label.key) == label
    assert label.as_rasa() == {"entity": "city", "role": "destination", "group": "1"}
    assert tag_names([annotation, {"entity": "city", "start": 0, "end": 1}]) == [
        "O",
        "B-city|destination|1",
        "I-city|destination|1",
        "B-city||",
        "I-city||",
    ]


def test_padding_goes_to_the_longest_window_only(encoder):
    ids, mask = encoder.pad([[1, 2, 3], [1] * 17])
    assert ids.shape == mask.shape == (2, 17)
    assert mask.sum() == 20 and (ids[0, 3:] == encoder.special.pad).all()


def test_windows_per_text_are_capped_and_the_first_window_is_the_texts_beginning(encoder):
    capped = TextEncoder(
        Tokenizer.from_str(encoder.tokenizer.to_str()),
        EncodingSettings(max_length=24, stride=8, max_windows=2),
        encoder.special,
    )
    windows = capped.windows(["hello there", TEXTS[-1], "order 12345"])
    assert windows.text_index == [0, 1, 1, 2]
    assert windows.capped == [1]
    assert windows.first_windows() == [0, 1, 3]
    assert windows.input_ids[1] == encoder.tokenizer.encode(TEXTS[-1]).ids  # max_length 24 too


def test_encoder_saved_with_the_model_loads_with_its_settings(encoder, tmp_path):
    encoder.save(tmp_path)
    loaded = TextEncoder.load(tmp_path)
    assert loaded.settings == encoder.settings
    assert loaded.windows(TEXTS).input_ids == encoder.windows(TEXTS).input_ids


def valid_bio(path, tags) -> bool:
    names = ["O"] + [tags[t] for t in path]
    return all(not b.startswith("I-") or a[2:] == b[2:] and a != "O" for a, b in zip(names, names[1:]))


def test_constrained_decoding_finds_the_best_valid_bio_sequence():
    """No span starts with I-, and no valid sequence is more probable (brute force over small cases)."""
    tags = ["O", "B-city||", "I-city||", "B-date||", "I-date||"]
    rng = np.random.default_rng(7)
    for _ in range(200):
        pieces = int(rng.integers(1, 5))
        probabilities = rng.dirichlet(np.full(len(tags), 0.3), size=pieces)
        path = constrained_tags(probabilities, tags)
        assert valid_bio(path, tags)
        log = np.log(np.clip(probabilities, 1e-12, None))
        best = max(
            (p for p in itertools.product(range(len(tags)), repeat=pieces) if valid_bio(p, tags)),
            key=lambda p: sum(log[i, t] for i, t in enumerate(p)),
        )
        assert np.isclose(sum(log[i, t] for i, t in enumerate(path)), sum(log[i, t] for i, t in enumerate(best)))


def test_an_entity_opened_with_i_is_repaired_not_split():
    """Argmax says O, I-city, I-city: the span keeps both pieces and starts with B-."""
    tags = ["O", "B-city||", "I-city||"]
    probabilities = np.array([[0.9, 0.05, 0.05], [0.1, 0.4, 0.5], [0.1, 0.2, 0.7]])
    assert constrained_tags(probabilities, tags) == [0, 1, 2]

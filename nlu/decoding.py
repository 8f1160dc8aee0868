"""Texts through the joint model and back to Rasa's intent ranking and entity spans.

Used by the parser at serving time (the model on Triton) and by the export's quality gate (the
model in ONNX Runtime), so that the gate judges exactly what Rasa would be given.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Sequence, Tuple

import numpy as np

from nlu.encoding import TextEncoder, Windows
from nlu.tags import decode_spans, is_special

logger = logging.getLogger(__name__)

# (input ids, attention mask) -> (intent probabilities, tag probabilities) of a batch of windows
Infer = Callable[[np.ndarray, np.ndarray], Tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Labels:
    """The class names of the joint model's two heads."""

    intents: List[str]
    tags: List[str]


@dataclass
class Parse:
    intent_ranking: List[Dict[str, Any]]
    entities: List[Dict[str, Any]]


def parse_texts(
    texts: Sequence[str], encoder: TextEncoder, infer: Infer, labels: Labels, ranking_length: int, chunk_size: int
) -> List[Parse]:
    """Every window of every text through `infer`, at most `chunk_size` windows a call, then decoded."""
    windows = encoder.windows(texts)
    if windows.capped:
        settings = encoder.settings
        logger.debug(
            "%d text(s) longer than %d windows of %d word pieces: entities are tagged in the first %d windows only",
            len(windows.capped),
            settings.max_windows,
            settings.max_length,
            settings.max_windows,
        )
    intents: List[np.ndarray] = []
    tags: List[np.ndarray] = []
    for start in range(0, len(windows.input_ids), chunk_size):
        chunk_intents, chunk_tags = infer(*encoder.pad(windows.input_ids[start : start + chunk_size]))
        intents.append(chunk_intents)
        tags.extend(chunk_tags)  # chunks may differ in length: each row is read up to its own offsets
    width = max(row.shape[0] for row in tags)
    tag_array = np.stack([np.pad(row, ((0, width - row.shape[0]), (0, 0))) for row in tags])
    return decode(texts, windows, np.concatenate(intents), tag_array, labels, ranking_length)


def decode(
    texts: Sequence[str],
    windows: Windows,
    intent_probabilities: np.ndarray,
    tag_probabilities: np.ndarray,
    labels: Labels,
    ranking_length: int,
) -> List[Parse]:
    """One Parse per text from the per-window outputs: the intent of its first window, the tags of all."""
    firsts = windows.first_windows()
    rankings = [_ranking(intent_probabilities[window], labels.intents, ranking_length) for window in firsts]
    return [
        Parse(ranking, spans)
        for ranking, spans in zip(rankings, _spans(texts, windows, tag_probabilities, labels.tags))
    ]


def _ranking(row: np.ndarray, intents: Sequence[str], length: int) -> List[Dict[str, Any]]:
    return [{"name": intents[i], "confidence": float(row[i])} for i in np.argsort(-row)[:length]]


def _spans(
    texts: Sequence[str], windows: Windows, probabilities: np.ndarray, tags: Sequence[str]
) -> List[List[Dict[str, Any]]]:
    # A piece seen in two overlapping windows keeps the first window's prediction.
    pieces: List[Dict[Tuple[int, int], Tuple[int, float]]] = [{} for _ in texts]
    for window, (offsets, text) in enumerate(zip(windows.offsets, windows.text_index)):
        for position, offset in enumerate(offsets):
            if not is_special(offset) and offset not in pieces[text]:
                row = probabilities[window, position]
                tag = int(row.argmax())
                pieces[text][offset] = (tag, float(row[tag]))
    return [
        decode_spans(text, [(offset, tag, p) for offset, (tag, p) in found.items()], tags)
        for text, found in zip(texts, pieces)
    ]

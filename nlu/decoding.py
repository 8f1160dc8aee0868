"""Texts through the joint model and back to Rasa's intent ranking and entity spans.

Used by the parser at serving time (the model on Triton) and by the export's quality gate (the
model in ONNX Runtime), so that the gate judges exactly what Rasa would be given.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Sequence, Tuple

import numpy as np
from rasa.shared.constants import DEFAULT_NLU_FALLBACK_INTENT_NAME as DECLINED  # answered by the fallback rules

from nlu.encoding import TextEncoder, Windows
from nlu.stored_model import Labels
from nlu.tags import constrained_tags, decode_spans, is_special

logger = logging.getLogger(__name__)

OUT_OF_SCOPE = "out_of_scope"  # Rasa's and CLINC150's intent for examples that no intent covers

# (input ids, attention mask) -> (intent probabilities, tag probabilities, out-of-scope scores) of a batch of windows
Infer = Callable[[np.ndarray, np.ndarray], Sequence[np.ndarray]]


@dataclass
class Parse:
    intent_ranking: List[Dict[str, Any]]
    entities: List[Dict[str, Any]]
    out_of_scope_score: float


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
    scores: List[np.ndarray] = []
    for start in range(0, len(windows.input_ids), chunk_size):
        chunk_intents, chunk_tags, chunk_scores = infer(*encoder.pad(windows.input_ids[start : start + chunk_size]))
        intents.append(chunk_intents)
        tags.extend(chunk_tags)  # chunks may differ in length: each row is read up to its own offsets
        scores.append(np.reshape(chunk_scores, -1))
    width = max(row.shape[0] for row in tags)
    tag_array = np.stack([np.pad(row, ((0, width - row.shape[0]), (0, 0))) for row in tags])
    return decode(texts, windows, np.concatenate(intents), tag_array, np.concatenate(scores), labels, ranking_length)


def decode(
    texts: Sequence[str],
    windows: Windows,
    intent_probabilities: np.ndarray,
    tag_probabilities: np.ndarray,
    out_of_scope_scores: np.ndarray,
    labels: Labels,
    ranking_length: int,
) -> List[Parse]:
    """One Parse per text from the per-window outputs: the intent of its first window, the tags of all.

    A text whose out-of-scope score passes the calibrated threshold is declined: `nlu_fallback`
    heads its ranking, as Rasa's FallbackClassifier would put it, so the fallback rules answer
    (unless the model itself answered `out_of_scope`, which the data's own rules answer).
    """
    firsts = windows.first_windows()
    parses = []
    for window, spans in zip(firsts, _spans(texts, windows, tag_probabilities, labels.tags)):
        ranking = _ranking(intent_probabilities[window], labels.intents, ranking_length)
        score = float(out_of_scope_scores[window])
        declined = labels.out_of_scope_threshold is not None and score > labels.out_of_scope_threshold
        if declined and ranking[0]["name"] != OUT_OF_SCOPE:  # a trained out_of_scope answer stands
            ranking = [{"name": DECLINED, "confidence": 1.0}] + ranking[: ranking_length - 1]
        parses.append(Parse(ranking, spans, score))
    return parses


def _ranking(row: np.ndarray, intents: Sequence[str], length: int) -> List[Dict[str, Any]]:
    return [{"name": intents[i], "confidence": float(row[i])} for i in np.argsort(-row)[:length]]


def _spans(
    texts: Sequence[str], windows: Windows, probabilities: np.ndarray, tags: Sequence[str]
) -> List[List[Dict[str, Any]]]:
    # A piece seen in two overlapping windows keeps the first window's prediction.
    pieces: List[Dict[Tuple[int, int], np.ndarray]] = [{} for _ in texts]
    for window, (offsets, text) in enumerate(zip(windows.offsets, windows.text_index)):
        for position, offset in enumerate(offsets):
            if not is_special(offset) and offset not in pieces[text]:
                pieces[text][offset] = probabilities[window, position]
    spans = []
    for content, found in zip(texts, pieces):
        offsets = sorted(found)
        rows = np.array([found[offset] for offset in offsets]).reshape(len(offsets), len(tags))
        path = constrained_tags(rows, tags)
        spans.append(decode_spans(content, [(o, t, float(r[t])) for o, t, r in zip(offsets, path, rows)], tags))
    return spans

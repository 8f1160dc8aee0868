"""Quality as Rasa would see it: intent accuracy and exact-span entity F1 of parsed texts.

Shared by the validation-based schedule of fine-tuning (torch), the export's quality gate
(ONNX Runtime) and the benchmark, so that each judges exactly what Rasa would be given.
"""

from __future__ import annotations

from typing import Any, Dict, Hashable, Sequence, Set, TypeVar

import numpy as np

from nlu.decoding import Infer, parse_texts
from nlu.encoding import TextEncoder
from nlu.stored_model import Labels
from nlu.tags import EntityLabel
from nlu.triton.contract import MAX_BATCH_SIZE

Span = TypeVar("Span", bound=Hashable)


def entity_scores(gold: Sequence[Set[Span]], predicted: Sequence[Set[Span]]) -> Dict[str, float]:
    """Micro precision, recall and F1 over exact spans (e.g. (entity, start, end) tuples)."""
    tp = sum(len(g & p) for g, p in zip(gold, predicted))
    fp = sum(len(p - g) for g, p in zip(gold, predicted))
    fn = sum(len(g - p) for g, p in zip(gold, predicted))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"entity_precision": precision, "entity_recall": recall, "entity_f1": f1}


def parse_quality(
    infer: Infer,
    encoder: TextEncoder,
    labels: Labels,
    texts: Sequence[str],
    intents: Sequence[str],
    annotations: Sequence[Sequence[Dict[str, Any]]],
) -> Dict[str, float]:
    """Intent accuracy and exact-span entity F1 (1.0 where no text has entities) of `infer`'s parses."""
    parses = parse_texts(texts, encoder, infer, labels, ranking_length=1, chunk_size=MAX_BATCH_SIZE)
    accuracy = float(np.mean([p.intent_ranking[0]["name"] == intent for p, intent in zip(parses, intents)]))
    key = lambda e: (EntityLabel.of(e).key, e["start"], e["end"])
    gold = [{key(e) for e in text_annotations} for text_annotations in annotations]
    predicted = [{key(e) for e in p.entities} for p in parses]
    return {"intent_accuracy": accuracy, "entity_f1": entity_scores(gold, predicted)["entity_f1"] if any(gold) else 1.0}

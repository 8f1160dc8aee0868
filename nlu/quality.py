"""Entity scores over exact spans, shared by the export's quality gate and the benchmark."""

from __future__ import annotations

from typing import Dict, Hashable, Sequence, Set, TypeVar

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

"""Quality and latency figures from gold labels, predictions and timings (pure functions)."""

from __future__ import annotations

from typing import Collection, Dict, Optional, Sequence, Set, Tuple

import numpy as np
from sklearn.metrics import f1_score

from nlu.training.quality import entity_scores  # the bench scores entities as the gate does

Span = Tuple[str, int, int]  # (entity, start, end)


def intent_scores(gold: Sequence[str], predicted: Sequence[str]) -> Dict[str, float]:
    """Accuracy, and F1 averaged over the gold intents (predicted-only labels add no class)."""
    labels = sorted(set(gold))
    return {
        "intent_accuracy": float(np.mean([g == p for g, p in zip(gold, predicted)])),
        "intent_macro_f1": float(f1_score(gold, predicted, labels=labels, average="macro", zero_division=0)),
    }


def out_of_scope_scores(
    gold: Sequence[str], predicted: Sequence[str], label: str, declines: Collection[str]
) -> Dict[str, Optional[float]]:
    """Recall of `label` (out-of-scope: any of `declines` counts), and accuracy on the other (in-scope) examples."""
    oos = [p in declines for g, p in zip(gold, predicted) if g == label]
    in_scope = [p == g for g, p in zip(gold, predicted) if g != label]
    return {
        "oos_recall": float(np.mean(oos)) if oos else None,
        "in_scope_accuracy": float(np.mean(in_scope)) if in_scope else None,
    }


def entity_type_scores(gold: Sequence[Set[Span]], predicted: Sequence[Set[Span]]) -> Dict[str, Dict[str, float]]:
    """Precision, recall, F1 and gold count of each entity type, over exact spans."""
    types = sorted({span[0] for spans in (*gold, *predicted) for span in spans})
    scores = {}
    for entity in types:
        of_type = lambda spans: {s for s in spans if s[0] == entity}  # noqa: B023 (used at once)
        scores[entity] = {
            **entity_scores([of_type(g) for g in gold], [of_type(p) for p in predicted]),
            "support": sum(len(of_type(g)) for g in gold),
        }
    return scores


def intent_slot_mean_f1(intents: Sequence[str], gold: Sequence[Set[Span]], predicted: Sequence[Set[Span]]) -> float:
    """F1 of each (gold intent, entity type) pair with gold spans, averaged over the pairs.

    The figure of the 2017 comparison of hosted NLU services on SNIPS (Coucke et al. 2018), where a
    rare slot counts as much as a frequent one.
    """
    pairs: Dict[Tuple[str, str], Tuple[list, list]] = {}
    for intent, g, p in zip(intents, gold, predicted):
        for entity in {s[0] for s in g | p}:
            gold_of, predicted_of = pairs.setdefault((intent, entity), ([], []))
            gold_of.append({s for s in g if s[0] == entity})
            predicted_of.append({s for s in p if s[0] == entity})
    f1s = [entity_scores(g, p)["entity_f1"] for g, p in pairs.values() if any(g)]
    return float(np.mean(f1s)) if f1s else 0.0


def latency_summary(milliseconds: Sequence[float]) -> Dict[str, float]:
    """p50, p99, mean and count of latencies in milliseconds."""
    values = np.asarray(milliseconds, dtype=float)
    return {
        "p50": float(np.percentile(values, 50)),
        "p99": float(np.percentile(values, 99)),
        "mean": float(values.mean()),
        "n": int(values.size),
    }

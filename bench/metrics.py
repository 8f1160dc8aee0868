"""Quality and latency figures from gold labels, predictions and timings (pure functions)."""

from __future__ import annotations

from typing import Dict, Optional, Sequence

import numpy as np
from sklearn.metrics import f1_score

from nlu.quality import entity_scores  # noqa: F401  (re-exported: the bench scores entities as the gate does)


def intent_scores(gold: Sequence[str], predicted: Sequence[str]) -> Dict[str, float]:
    """Accuracy, and F1 averaged over the gold intents (predicted-only labels add no class)."""
    labels = sorted(set(gold))
    return {
        "intent_accuracy": float(np.mean([g == p for g, p in zip(gold, predicted)])),
        "intent_macro_f1": float(f1_score(gold, predicted, labels=labels, average="macro", zero_division=0)),
    }


def out_of_scope_scores(gold: Sequence[str], predicted: Sequence[str], label: str) -> Dict[str, Optional[float]]:
    """Recall of `label` (out-of-scope), and accuracy on the other (in-scope) examples."""
    oos = [p == label for g, p in zip(gold, predicted) if g == label]
    in_scope = [p == g for g, p in zip(gold, predicted) if g != label]
    return {
        "oos_recall": float(np.mean(oos)) if oos else None,
        "in_scope_accuracy": float(np.mean(in_scope)) if in_scope else None,
    }


def latency_summary(milliseconds: Sequence[float]) -> Dict[str, float]:
    """p50, p99, mean and count of latencies in milliseconds."""
    values = np.asarray(milliseconds, dtype=float)
    return {
        "p50": float(np.percentile(values, 50)),
        "p99": float(np.percentile(values, 99)),
        "mean": float(values.mean()),
        "n": int(values.size),
    }

"""Calibration of the out-of-scope threshold on held-out in-scope texts.

The joint model scores every text (nlu.training.joint_model: the energy of its in-scope intent logits);
a text scoring above the threshold is declined. The threshold is the score that the chosen
fraction of in-scope validation texts stays below, so the cost in in-scope answers is known
before serving, whatever the data.
"""

from __future__ import annotations

import logging
from typing import Optional, Sequence

import numpy as np
import torch

from nlu.decoding import OUT_OF_SCOPE, parse_texts
from nlu.encoding import TextEncoder
from nlu.stored_model import Labels
from nlu.training.joint_model import JointIntentTagger
from nlu.training.loop import HeldOut, torch_infer
from nlu.triton.contract import MAX_BATCH_SIZE

logger = logging.getLogger(__name__)


def calibrate(in_scope_scores: Sequence[float], coverage: float) -> Optional[float]:
    """The `coverage` quantile of in-scope validation scores; None without validation texts."""
    if not 0.0 < coverage <= 1.0:
        raise ValueError(f"in_scope_coverage must be in (0, 1], not {coverage}")
    if len(in_scope_scores) == 0:
        return None
    return float(np.quantile(np.asarray(in_scope_scores, dtype=float), coverage))


def threshold(
    model: JointIntentTagger, encoder: TextEncoder, labels: Labels, held_out: HeldOut, coverage: float
) -> Optional[float]:
    """The score that `coverage` of the in-scope validation texts stay below (None without any)."""
    texts = [text for text, intent in zip(held_out.texts, held_out.intents) if intent != OUT_OF_SCOPE]
    if not texts:
        return None
    parses = parse_texts(texts, encoder, torch_infer(model, torch.device("cpu")), labels, 1, MAX_BATCH_SIZE)
    value = calibrate([p.out_of_scope_score for p in parses], coverage)
    logger.info(
        "Out-of-scope threshold %.3f (%.0f%% of %d in-scope validation texts below)",
        value,
        coverage * 100,
        len(texts),
    )
    return value

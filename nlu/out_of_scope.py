"""Calibration of the out-of-scope threshold on held-out in-scope texts.

The joint model scores every text (nlu.joint_model: the energy of its in-scope intent logits);
a text scoring above the threshold is declined. The threshold is the score that the chosen
fraction of in-scope validation texts stays below, so the cost in in-scope answers is known
before serving, whatever the data.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

OUT_OF_SCOPE = "out_of_scope"  # Rasa's and CLINC150's intent for examples that no intent covers


def calibrate(in_scope_scores: Sequence[float], coverage: float) -> Optional[float]:
    """The `coverage` quantile of in-scope validation scores; None without validation texts."""
    if not 0.0 < coverage <= 1.0:
        raise ValueError(f"in_scope_coverage must be in (0, 1], not {coverage}")
    if len(in_scope_scores) == 0:
        return None
    return float(np.quantile(np.asarray(in_scope_scores, dtype=float), coverage))

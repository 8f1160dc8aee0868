"""The epochs of fine-tuning: AdamW with linear warm-up and decay, batches of similar lengths,
validation after each epoch as Rasa would be served, the best epoch kept, an early stop."""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np
import torch
from torch.nn.functional import cross_entropy
from tqdm import tqdm
from transformers import get_linear_schedule_with_warmup

from nlu.decoding import Infer
from nlu.encoding import TextEncoder
from nlu.stored_model import Labels
from nlu.tags import IGNORED
from nlu.training.hyperparameters import FineTuneConfig
from nlu.training.joint_model import JointIntentTagger
from nlu.training.quality import parse_quality

logger = logging.getLogger(__name__)

Example = Tuple[List[int], int, List[int]]  # window's piece ids, intent id (or IGNORED), tag id per piece
_POOL_BATCHES = 50


@dataclass
class HeldOut:
    """The validation slice's texts with their labels, as the schedule parses them."""

    texts: List[str]
    intents: List[str]
    annotations: List[Sequence[Dict[str, Any]]]


def fit(
    model: JointIntentTagger,
    encoder: TextEncoder,
    labels: Labels,
    train: Sequence[Example],
    validation: Sequence[Example],
    held_out: HeldOut,
    config: FineTuneConfig,
) -> List[Dict[str, float]]:
    """Train in place; with a validation slice, keep the best epoch's weights and stop early.

    "Best" is the validation texts' intent accuracy plus entity F1 as Rasa would get them (ties:
    the lower validation loss). Returns each epoch's figures.
    """
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device).train()
    named = list(model.named_parameters())
    no_decay = [p for n, p in named if any(k in n.lower() for k in ("bias", "norm"))]
    decay = [p for n, p in named if not any(k in n.lower() for k in ("bias", "norm"))]
    # One fused kernel for all parameters: the per-parameter loop cost a third of a CPU step.
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.learning_rate,
        fused=True,
    )
    bf16 = config.mixed_precision and bf16_is_native(device)
    epochs = epochs_to_run(config, len(train))
    steps_per_epoch = -(-len(train) // config.batch_size)
    total_steps = steps_per_epoch * epochs
    scheduler = get_linear_schedule_with_warmup(optimizer, int(config.warmup_ratio * total_steps), total_steps)
    generator = torch.Generator().manual_seed(config.seed)
    best: Tuple[float, float] = (-float("inf"), 0.0)  # (accuracy + F1, -loss)
    best_state, stale, history = None, 0, []
    progress = tqdm(total=total_steps, desc="Fine-tuning intents and entities", unit="step", leave=False, disable=None)
    for epoch in range(epochs):
        order = _bucketed_order(train, config.batch_size, generator)
        total_loss = 0.0
        for batch in _batches(encoder, train, config.batch_size, order, device):
            loss = _loss(model, batch, bf16)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            total_loss += loss.item()
            progress.update(1)
            progress.set_postfix(epoch=epoch + 1, loss=f"{loss.item():.4f}")
        figures = {"epoch": epoch + 1, "train_loss": total_loss / steps_per_epoch}
        history.append(figures)
        if not validation:
            continue
        figures.update(_validate(model, encoder, labels, validation, held_out, config, device))
        logger.debug("epoch %d: %s", epoch + 1, figures)
        score = (
            figures["validation_intent_accuracy"] + figures["validation_entity_f1"],
            -figures["validation_loss"],
        )
        if score > best:
            best, best_state, stale = score, copy.deepcopy(model.state_dict()), 0
        else:
            stale += 1
            if stale >= config.patience:
                logger.info("Early stop after epoch %d (best: epoch %d)", epoch + 1, epoch + 1 - stale)
                break
    progress.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    model.to("cpu").eval()
    return history


def epochs_to_run(config: FineTuneConfig, examples: int) -> int:
    """config.epochs, fewer where they would pass many more than max_training_examples examples
    (the nearest whole number of epochs: BANKING77's 7,237 training texts get 3, CLINC150's 13,590 get 2)."""
    return max(1, min(config.epochs, round(config.max_training_examples / max(examples, 1))))


def bf16_is_native(device: torch.device) -> bool:
    """Whether this device computes bfloat16 in hardware (CUDA from Ampere on; CPUs with AVX512-BF16
    or AMX). Elsewhere autocast would emulate it, slower than float32."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return any(
        getattr(torch.cpu, check, lambda: False)() for check in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    )


def torch_infer(model: JointIntentTagger, device: torch.device) -> Infer:
    """The model in eval mode as the parser's inference function (what Triton answers)."""

    def infer(ids: np.ndarray, mask: np.ndarray) -> Tuple[np.ndarray, ...]:
        with torch.no_grad():
            outputs = model(torch.from_numpy(ids).to(device), torch.from_numpy(mask).to(device))
        return tuple(output.cpu().numpy() for output in outputs)

    return infer


def _validate(
    model: JointIntentTagger,
    encoder: TextEncoder,
    labels: Labels,
    examples: Sequence[Example],
    held_out: HeldOut,
    config: FineTuneConfig,
    device: torch.device,
) -> Dict[str, float]:
    """Validation loss, and intent accuracy and entity F1 of the held-out texts parsed as served."""
    model.eval()
    total = 0.0
    with torch.no_grad():
        for batch in _batches(encoder, examples, config.batch_size, range(len(examples)), device):
            total += _loss(model, batch).item() * len(batch["intents"])
    scores = parse_quality(
        torch_infer(model, device), encoder, labels, held_out.texts, held_out.intents, held_out.annotations
    )
    model.train()
    return {
        "validation_loss": total / len(examples),
        "validation_intent_accuracy": scores["intent_accuracy"],
        "validation_entity_f1": scores["entity_f1"],
    }


def _loss(model: JointIntentTagger, batch: Dict[str, torch.Tensor], bf16: bool = False) -> torch.Tensor:
    """Intent cross-entropy plus tag cross-entropy, each a mean over its labelled items.

    With `bf16` the encoder runs under bfloat16 autocast (weights and optimizer stay float32)."""
    intent_logits, tag_logits = model.logits(batch["input_ids"], batch["attention_mask"], bf16)
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

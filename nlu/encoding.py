"""Text to model inputs, the same way at training and at serving time.

One place decides truncation, windowing of long texts and padding, so the tagger never sees
inputs at serving time that differ from those it was trained on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence, Tuple

import numpy as np
from transformers import PreTrainedTokenizerBase

PAD_TO_MULTIPLE_OF = 16  # few distinct shapes, so Triton's dynamic batcher can merge requests


@dataclass
class Windows:
    """Tokenized texts; a text longer than max_length spans several overlapping windows."""

    input_ids: List[List[int]]
    offsets: List[List[Tuple[int, int]]]
    text_index: List[int]  # which input text each window belongs to


def encode_windows(
    tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], max_length: int, stride: int
) -> Windows:
    """Windows of at most max_length pieces, overlapping by `stride` pieces."""
    encoded = tokenizer(
        list(texts),
        truncation=True,
        max_length=max_length,
        stride=stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
    )
    return Windows(
        input_ids=encoded["input_ids"],
        offsets=[[tuple(o) for o in window] for window in encoded["offset_mapping"]],
        text_index=list(encoded["overflow_to_sample_mapping"]),
    )


def encode_truncated(
    tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], max_length: int
) -> List[List[int]]:
    """Input ids of each text, cut at max_length pieces (intent classification)."""
    return tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]


def pad_batch(tokenizer: PreTrainedTokenizerBase, input_ids: Sequence[Sequence[int]]) -> Tuple[np.ndarray, np.ndarray]:
    """Right-padded int64 input ids and attention mask, length a multiple of 16."""
    longest = max(len(ids) for ids in input_ids)
    length = -(-longest // PAD_TO_MULTIPLE_OF) * PAD_TO_MULTIPLE_OF
    ids = np.full((len(input_ids), length), tokenizer.pad_token_id or 0, dtype=np.int64)
    mask = np.zeros((len(input_ids), length), dtype=np.int64)
    for row, sequence in enumerate(input_ids):
        ids[row, : len(sequence)] = sequence
        mask[row, : len(sequence)] = 1
    return ids, mask

"""Texts in, intents and entities out: tokenizes, asks Triton once per model, decodes.

This is everything the Rasa component does at message time, kept free of Rasa so that the
benchmark can time it alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
from transformers import PreTrainedTokenizerBase

from nlu.encoding import encode_truncated, encode_windows, pad_batch
from nlu.tags import decode_spans, is_special
from nlu.triton_client import TritonNLUClient


@dataclass(frozen=True)
class ServedModel:
    """A Triton model version and the label of each of its output classes."""

    name: str
    version: int
    labels: List[str]


@dataclass
class Parse:
    intent_ranking: List[Dict[str, Any]]
    entities: List[Dict[str, Any]]


class Parser:
    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        client: TritonNLUClient,
        intent_model: ServedModel,
        entity_model: Optional[ServedModel],
        max_length: int,
        stride: int,
        ranking_length: int,
    ) -> None:
        self.tokenizer = tokenizer
        self.client = client
        self.intent_model = intent_model
        self.entity_model = entity_model
        self.max_length = max_length
        self.stride = stride
        self.ranking_length = ranking_length

    def parse(self, texts: Sequence[str]) -> List[Parse]:
        """One batched request per model for all texts; raises TritonUnavailable."""
        rankings = self._intents(texts)
        entities = self._entities(texts) if self.entity_model else [[] for _ in texts]
        return [Parse(ranking, found) for ranking, found in zip(rankings, entities)]

    def _intents(self, texts: Sequence[str]) -> List[List[Dict[str, Any]]]:
        ids, mask = pad_batch(self.tokenizer, encode_truncated(self.tokenizer, texts, self.max_length))
        probabilities = self.client.infer(self.intent_model.name, self.intent_model.version, ids, mask)
        labels = self.intent_model.labels
        return [
            [{"name": labels[i], "confidence": float(row[i])} for i in np.argsort(-row)[: self.ranking_length]]
            for row in probabilities
        ]

    def _entities(self, texts: Sequence[str]) -> List[List[Dict[str, Any]]]:
        windows = encode_windows(self.tokenizer, texts, self.max_length, self.stride)
        ids, mask = pad_batch(self.tokenizer, windows.input_ids)
        probabilities = self.client.infer(self.entity_model.name, self.entity_model.version, ids, mask)
        # A piece seen in two overlapping windows keeps the first window's prediction.
        pieces: List[Dict[Tuple[int, int], Tuple[int, float]]] = [{} for _ in texts]
        for window, (offsets, text) in enumerate(zip(windows.offsets, windows.text_index)):
            for position, offset in enumerate(offsets):
                if not is_special(offset) and offset not in pieces[text]:
                    row = probabilities[window, position]
                    tag = int(row.argmax())
                    pieces[text][offset] = (tag, float(row[tag]))
        return [
            decode_spans(text, [(offset, tag, p) for offset, (tag, p) in found.items()], self.entity_model.labels)
            for text, found in zip(texts, pieces)
        ]

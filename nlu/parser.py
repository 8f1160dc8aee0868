"""Texts in, intents and entities out: tokenizes, asks Triton once per model, decodes.

This is everything the Rasa component does at message time, kept free of Rasa so that the
benchmark can time it alone.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
from transformers import PreTrainedTokenizerBase

from nlu.encoding import Windows, encode_truncated, encode_windows, pad_batch
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
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="triton-entities")

    @property
    def versions(self) -> Dict[str, int]:
        """The version of each Triton model this parser asks, by model name."""
        return {model.name: model.version for model in (self.intent_model, self.entity_model) if model}

    def parse(self, texts: Sequence[str]) -> List[Parse]:
        """One batched request per model for all texts, both models at once; raises TritonUnavailable.

        Tokenizing stays on this thread: a fast tokenizer must not be used from two threads.
        """
        intent_ids, intent_mask = pad_batch(self.tokenizer, encode_truncated(self.tokenizer, texts, self.max_length))
        if self.entity_model:
            windows = encode_windows(self.tokenizer, texts, self.max_length, self.stride)
            ids, mask = pad_batch(self.tokenizer, windows.input_ids)
            tagged = self._pool.submit(self.client.infer, self.entity_model.name, self.entity_model.version, ids, mask)
        intent_probabilities = self.client.infer(self.intent_model.name, self.intent_model.version, intent_ids, intent_mask)
        rankings = self._rank(intent_probabilities)
        entities = self._spans(texts, windows, tagged.result()) if self.entity_model else [[] for _ in texts]
        return [Parse(ranking, spans) for ranking, spans in zip(rankings, entities)]

    def _rank(self, probabilities: np.ndarray) -> List[List[Dict[str, Any]]]:
        labels = self.intent_model.labels
        return [
            [{"name": labels[i], "confidence": float(row[i])} for i in np.argsort(-row)[: self.ranking_length]]
            for row in probabilities
        ]

    def _spans(self, texts: Sequence[str], windows: Windows, probabilities: np.ndarray) -> List[List[Dict[str, Any]]]:
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

"""Texts in, intents and entities out: encodes, asks Triton's joint model, decodes.

This is everything the Rasa component does at message time, kept free of Rasa so that the
benchmark can time it alone. It imports nothing from training.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import List, Protocol, Sequence, Tuple

import numpy as np

from nlu.decoding import Parse, parse_texts
from nlu.encoding import TextEncoder
from nlu.stored_model import Labels
from nlu.triton.contract import MAX_BATCH_SIZE


@dataclass(frozen=True)
class ServedModel:
    """A Triton model version and the class names of its two heads."""

    name: str
    version: int
    labels: Labels


class Inference(Protocol):
    """What the parser asks of Triton: nlu.triton.client.TritonNLUClient, or a stand-in in tests."""

    def infer(
        self, name: str, version: int, input_ids: np.ndarray, attention_mask: np.ndarray
    ) -> Tuple[np.ndarray, ...]: ...


class Parser:
    def __init__(self, encoder: TextEncoder, client: Inference, model: ServedModel, ranking_length: int) -> None:
        self.encoder = encoder
        self.client = client
        self.model = model
        self.ranking_length = ranking_length

    @property
    def versions(self) -> dict:
        """The Triton model version that answers, by model name."""
        return {self.model.name: self.model.version}

    def parse(self, texts: Sequence[str]) -> List[Parse]:
        """One request for all windows of all texts (more only past max_batch_size); raises TritonUnavailable."""
        infer = functools.partial(self.client.infer, self.model.name, self.model.version)
        return parse_texts(texts, self.encoder, infer, self.model.labels, self.ranking_length, MAX_BATCH_SIZE)

"""Text to model inputs, the same way at training and at serving time.

`TextEncoder` is the one object that decides tokenization, windowing of long texts, the cap on
windows per text and padding. It is saved with every trained model and loaded by the parser, so
the model never sees inputs at serving time that differ from those it was trained on.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np
from tokenizers import Tokenizer

logger = logging.getLogger(__name__)

TOKENIZER_FILE = "tokenizer.json"
SETTINGS_FILE = "encoding.json"  # the encoding settings and the special ids
# Characters read per word piece the windows can hold: four times an average English piece (with
# its space), so the cut lands well past the last kept window of any ordinary text.
CHARS_PER_PIECE = 16


class TokenizerError(RuntimeError):
    """A stored encoder could not be loaded."""


@dataclass(frozen=True)
class EncodingSettings:
    """Word pieces per window, overlap of consecutive windows, and the most windows per text."""

    max_length: int = 64  # word pieces per window; the intent is read from a text's first window
    stride: int = 16  # pieces two consecutive windows of a long text share
    max_windows: int = 16  # bounds the work per message: ~700 words at the defaults

    @property
    def max_chars(self) -> int:
        """Characters of a text that are tokenized at most (16,384 at the defaults).

        The windows are capped anyway, but tokenizing all of a 1 MB text to keep its first windows
        would cost seconds of CPU per message; this cut bounds that cost to milliseconds.
        """
        return self.max_windows * self.max_length * CHARS_PER_PIECE

    @classmethod
    def from_component_config(cls, config: Dict[str, Any]) -> "EncodingSettings":
        return cls(**{name: config[name] for name in cls.__dataclass_fields__ if name in config})


@dataclass
class Windows:
    """Tokenized texts; a text longer than max_length spans several overlapping windows.

    The first window of each text is what the intent is read from: the text's beginning,
    exactly as a truncated encoding would be.
    """

    input_ids: List[List[int]]
    offsets: List[List[Tuple[int, int]]]
    text_index: List[int]  # which input text each window belongs to
    capped: List[int]  # texts that had more windows than max_windows (only the first are kept)

    def first_windows(self) -> List[int]:
        """Index of each text's first window, in text order."""
        firsts: dict = {}
        for window, text in enumerate(self.text_index):
            firsts.setdefault(text, window)
        return [firsts[text] for text in sorted(firsts)]


@dataclass(frozen=True)
class SpecialIds:
    """The tokenizer's ids of padding and of a hidden piece (its mask token, else its unknown token)."""

    pad: int
    mask: int


class TextEncoder:
    """A fast tokenizer (the `tokenizers` library's, as in tokenizer.json) with its encoding settings.

    Serving loads it without transformers, which would import torch into the Rasa server (about
    600 MiB and 4 s of start-up: docs/nlu.md); training builds it from transformers' tokenizer of the
    base model (nlu.training.base_model). The encoder sets the tokenizer's truncation and padding:
    give it a tokenizer of its own.
    """

    def __init__(self, tokenizer: Tokenizer, settings: EncodingSettings, special: SpecialIds) -> None:
        self.tokenizer = tokenizer
        self.settings = settings
        self.special = special
        tokenizer.enable_truncation(max_length=settings.max_length, stride=settings.stride)
        tokenizer.no_padding()  # pad() pads a batch to its longest window only

    @classmethod
    def load(cls, directory: Path) -> "TextEncoder":
        """The encoder saved by `save`."""
        try:
            tokenizer = Tokenizer.from_file(str(directory / TOKENIZER_FILE))
            saved = json.loads((directory / SETTINGS_FILE).read_text())
            special = SpecialIds(**saved.pop("special"))
            return cls(tokenizer, EncodingSettings(**saved), special)
        except Exception as error:  # tokenizers raises a plain Exception for a file it cannot read
            raise TokenizerError(f"Could not load the encoder saved in {directory}: {error}") from error

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.tokenizer.save(str(directory / TOKENIZER_FILE))
        saved = {**asdict(self.settings), "special": asdict(self.special)}
        (directory / SETTINGS_FILE).write_text(json.dumps(saved, indent=2))

    def windows(self, texts: Sequence[str]) -> Windows:
        """Windows of at most max_length pieces overlapping by `stride`, at most max_windows a text
        (of its first max_chars characters)."""
        settings = self.settings
        windows = Windows([], [], [], [])
        encodings = self.tokenizer.encode_batch([_head(text, settings.max_chars) for text in texts])
        for text, encoding in enumerate(encodings):
            pieces = [encoding, *encoding.overflowing]  # a long text's later windows
            if len(pieces) > settings.max_windows:
                windows.capped.append(text)
            for piece in pieces[: settings.max_windows]:
                windows.input_ids.append(piece.ids)
                windows.offsets.append(piece.offsets)
                windows.text_index.append(text)
        return windows

    def pad(self, input_ids: Sequence[Sequence[int]]) -> Tuple[np.ndarray, np.ndarray]:
        """Int64 input ids and attention mask, right-padded to the longest window only.

        A typical message is about ten pieces: padding it to a round 16 would cost the CPU
        half as much again, and the backend pads across requests itself.
        """
        length = max(len(ids) for ids in input_ids)
        ids = np.full((len(input_ids), length), self.special.pad, dtype=np.int64)
        mask = np.zeros((len(input_ids), length), dtype=np.int64)
        for row, sequence in enumerate(input_ids):
            ids[row, : len(sequence)] = sequence
            mask[row, : len(sequence)] = 1
        return ids, mask


def _head(text: str, limit: int) -> str:
    """The first `limit` characters of `text`, less the word the cut would split (a prefix, so
    offsets into it are offsets into `text`)."""
    if len(text) <= limit:
        return text
    logger.debug("A text of %d characters: only its first %d are read", len(text), limit)
    head = text[:limit]
    if text[limit].isspace():
        return head
    last_space = max(head.rfind(space) for space in " \t\n\r")
    return head[: last_space + 1] if last_space > 0 else head

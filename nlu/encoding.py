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
from transformers import AutoTokenizer, PreTrainedTokenizerBase

logger = logging.getLogger(__name__)

SETTINGS_FILE = "encoding.json"
# Characters read per word piece the windows can hold: four times an average English piece (with
# its space), so the cut lands well past the last kept window of any ordinary text.
CHARS_PER_PIECE = 16


class TokenizerError(RuntimeError):
    """A tokenizer could not be loaded or cannot give exact entity spans."""


@dataclass(frozen=True)
class EncodingSettings:
    """Word pieces per window, overlap of consecutive windows, and the most windows per text."""

    max_length: int = 64
    stride: int = 16
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


class TextEncoder:
    """A fast tokenizer with the encoding settings it was trained with."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, settings: EncodingSettings) -> None:
        if not tokenizer.is_fast:
            raise TokenizerError("The tokenizer is not a fast one (no tokenizer.json); exact entity spans need one.")
        self.tokenizer = tokenizer
        self.settings = settings

    @classmethod
    def from_pretrained(cls, name_or_path: str, settings: EncodingSettings) -> "TextEncoder":
        try:
            tokenizer = AutoTokenizer.from_pretrained(name_or_path)
        except (OSError, ValueError) as error:
            raise TokenizerError(
                f"Could not load a tokenizer from '{name_or_path}': give a local model directory or a hub id "
                f"whose files are in the local Hugging Face cache ({error})."
            ) from error
        return cls(tokenizer, settings)

    @classmethod
    def load(cls, directory: Path) -> "TextEncoder":
        """The encoder saved by `save` (tokenizer files and encoding.json)."""
        settings = EncodingSettings(**json.loads((directory / SETTINGS_FILE).read_text()))
        return cls.from_pretrained(str(directory), settings)

    def save(self, directory: Path) -> None:
        self.tokenizer.save_pretrained(directory)
        (directory / SETTINGS_FILE).write_text(json.dumps(asdict(self.settings), indent=2))

    @property
    def pad_id(self) -> int:
        return self.tokenizer.pad_token_id or 0

    def windows(self, texts: Sequence[str]) -> Windows:
        """Windows of at most max_length pieces overlapping by `stride`, at most max_windows a text
        (of its first max_chars characters)."""
        settings = self.settings
        encoded = self.tokenizer(
            [_head(text, settings.max_chars) for text in texts],
            truncation=True,
            max_length=settings.max_length,
            stride=settings.stride,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
        )
        kept, capped = [], set()
        counts: Dict[int, int] = {}
        for window, text in enumerate(encoded["overflow_to_sample_mapping"]):
            counts[text] = counts.get(text, 0) + 1
            if counts[text] <= settings.max_windows:
                kept.append(window)
            else:
                capped.add(text)
        return Windows(
            input_ids=[encoded["input_ids"][w] for w in kept],
            offsets=[[tuple(o) for o in encoded["offset_mapping"][w]] for w in kept],
            text_index=[int(encoded["overflow_to_sample_mapping"][w]) for w in kept],
            capped=sorted(capped),
        )

    def pad(self, input_ids: Sequence[Sequence[int]]) -> Tuple[np.ndarray, np.ndarray]:
        """Int64 input ids and attention mask, right-padded to the longest window only.

        A typical message is about ten pieces: padding it to a round 16 would cost the CPU
        half as much again, and the backend pads across requests itself.
        """
        length = max(len(ids) for ids in input_ids)
        ids = np.full((len(input_ids), length), self.pad_id, dtype=np.int64)
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

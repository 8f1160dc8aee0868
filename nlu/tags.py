"""BIO tags over word pieces, and the way back from tagged pieces to character spans.

Rasa annotates entities as character spans of the user's text; the tagger sees word pieces.
Both directions go through the fast tokenizer's offset mapping, so spans survive word pieces,
punctuation, unicode and repeated spaces exactly (as in Hugging Face's token-classification
examples, but labelling every piece so that decoding needs no word boundaries).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

OUTSIDE = "O"
IGNORED = -100  # label of special and padding pieces: torch's cross-entropy skips it
_SEP = "|"

Offsets = Sequence[Tuple[int, int]]


@dataclass(frozen=True)
class EntityLabel:
    """What a span is: an entity type with Rasa's optional role and group."""

    entity: str
    role: Optional[str] = None
    group: Optional[str] = None

    @classmethod
    def of(cls, annotation: Dict[str, Any]) -> "EntityLabel":
        return cls(annotation["entity"], annotation.get("role"), annotation.get("group"))

    @classmethod
    def parse(cls, key: str) -> "EntityLabel":
        entity, role, group = key.split(_SEP)
        return cls(entity, role or None, group or None)

    @property
    def key(self) -> str:
        return _SEP.join([self.entity, self.role or "", self.group or ""])

    def as_rasa(self) -> Dict[str, str]:
        fields = {"entity": self.entity}
        if self.role:
            fields["role"] = self.role
        if self.group:
            fields["group"] = self.group
        return fields


def tag_names(annotations: Iterable[Dict[str, Any]]) -> List[str]:
    """The tagger's label set for these annotations: O, then B-/I- of each label, sorted."""
    keys = sorted({EntityLabel.of(a).key for a in annotations})
    return [OUTSIDE] + [f"{prefix}-{key}" for key in keys for prefix in ("B", "I")]


def is_special(offset: Tuple[int, int]) -> bool:
    """Special pieces ([CLS], <s>, padding) cover no characters."""
    return offset[0] == offset[1]


def piece_tags(offsets: Offsets, annotations: Sequence[Dict[str, Any]], tags: Sequence[str]) -> List[int]:
    """Tag ids for each piece: B on the first piece overlapping an entity, I on the rest."""
    index = {name: i for i, name in enumerate(tags)}
    labels = []
    previous: Optional[int] = None  # annotation the previous piece belonged to
    for offset in offsets:
        if is_special(offset):
            labels.append(IGNORED)
            continue
        start, end = offset
        owner = next((i for i, a in enumerate(annotations) if start < a["end"] and end > a["start"]), None)
        if owner is None:
            labels.append(index[OUTSIDE])
        else:
            prefix = "I" if owner == previous else "B"
            labels.append(index[f"{prefix}-{EntityLabel.of(annotations[owner]).key}"])
        previous = owner
    return labels


@functools.lru_cache(maxsize=8)
def _transition_penalties(tags: Tuple[str, ...]) -> np.ndarray:
    """[previous + 1, current] log-penalty: 0 where BIO allows the step, -inf where it does not.

    Row 0 is the start of the text. An I- tag may only follow a B- or I- of its own label.
    """
    penalties = np.zeros((len(tags) + 1, len(tags)))
    for current, name in enumerate(tags):
        if name.startswith("I-"):
            for previous, before in enumerate((OUTSIDE,) + tags):
                if before == OUTSIDE or before[2:] != name[2:]:
                    penalties[previous, current] = -np.inf
    return penalties


def constrained_tags(probabilities: np.ndarray, tags: Sequence[str]) -> List[int]:
    """The most probable tag sequence in which no span starts with I- (Viterbi over the pieces).

    `probabilities` is [pieces, tags] in text order. Each piece's argmax alone can open a span
    with I- or switch labels mid-span; the best valid sequence repairs those boundaries (measured
    on SNIPS-70: +2.7 points of exact-span F1 over the argmax; docs/benchmarks.md).
    """
    if len(probabilities) == 0:
        return []
    penalties = _transition_penalties(tuple(tags))
    scores = np.log(np.clip(probabilities, 1e-12, None))
    best = penalties[0] + scores[0]
    back = []
    for row in scores[1:]:
        total = best[:, None] + penalties[1:]
        back.append(total.argmax(0))
        best = total.max(0) + row
    path = [int(best.argmax())]
    for pointers in reversed(back):
        path.append(int(pointers[path[-1]]))
    return path[::-1]


def decode_spans(
    text: str, pieces: Sequence[Tuple[Tuple[int, int], int, float]], tags: Sequence[str]
) -> List[Dict[str, Any]]:
    """Entities from (offset, tag id, probability) of each piece, in text order.

    A B tag opens a span; an I tag of the same label extends the open span (an I of another
    label opens one, as a lenient tagger should), and so does a B on the next piece. A piece
    inside the open span's word extends it whatever its label: an entity cannot start or end
    inside a word. Values are cut from the user's own text.
    """
    spans: List[Dict[str, Any]] = []
    current: Optional[Dict[str, Any]] = None
    for (start, end), tag_id, probability in sorted(pieces, key=lambda p: p[0]):
        name = tags[tag_id]
        if name == OUTSIDE:
            current = None
            continue
        prefix, key = name.split("-", 1)
        adjacent = current is not None and current["end"] == start
        inside_word = adjacent and not text[start].isspace()  # SentencePiece pieces start with the space
        if current is not None and (inside_word or (prefix == "I" or adjacent) and current["key"] == key):
            current["end"] = end
            current["probabilities"].append(probability)
            continue
        current = {"key": key, "start": start, "end": end, "probabilities": [probability]}
        spans.append(current)
    for span in spans:  # some tokenizers (SentencePiece) count the space before a word in its piece
        while span["start"] < span["end"] and text[span["start"]].isspace():
            span["start"] += 1
        while span["end"] > span["start"] and text[span["end"] - 1].isspace():
            span["end"] -= 1
    return [
        {
            **EntityLabel.parse(span["key"]).as_rasa(),
            "start": span["start"],
            "end": span["end"],
            "value": text[span["start"] : span["end"]],
            "confidence_entity": sum(span["probabilities"]) / len(span["probabilities"]),
        }
        for span in spans
        if span["end"] > span["start"]
    ]

"""Seeded train/test splits of the shared NLU benchmarks, written as Rasa YAML files.

Every intent's examples are shuffled with their own seeded generator, so a split depends only
on the seed and the data, and caps (--max-train-per-intent, --test-per-intent) take prefixes:
a smaller cap gives a subset of a larger one, and the test slice never depends on the train cap.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from rasa.shared.nlu.constants import ENTITIES, INTENT, TEXT
from rasa.shared.nlu.training_data.formats.rasa_yaml import RasaYAMLWriter
from rasa.shared.nlu.training_data.loading import load_data
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

DATASETS = ("snips70", "clinc150", "banking77")
OUT_OF_SCOPE = "out_of_scope"
SNIPS_TRAIN_PER_INTENT = 70
SNIPS_TEST_PER_INTENT = 100
BANKING_TEST_FRACTION = 0.2

Span = Tuple[str, int, int]  # (entity, start, end)


@dataclass(frozen=True)
class Example:
    """A test text with its gold intent and entity spans."""

    text: str
    intent: str
    entities: Tuple[Span, ...]


@dataclass
class Split:
    """A dataset's training file, its test examples, and how they were made."""

    name: str
    train_file: Path
    test_file: Path
    test: List[Example]
    has_entities: bool
    summary: Dict[str, Any]


def spans(entities: Sequence[Dict[str, Any]]) -> Tuple[Span, ...]:
    """Exact entity spans, the unit of entity scoring."""
    return tuple(sorted((e["entity"], int(e["start"]), int(e["end"])) for e in entities or []))


def make_split(
    name: str,
    datasets_dir: Path,
    work_dir: Path,
    seed: int,
    max_train_per_intent: Optional[int] = None,
    test_per_intent: Optional[int] = None,
) -> Split:
    """Build dataset `name`'s split and write train/test YAML into `work_dir`."""
    if name == "snips70":
        groups = _shuffled_groups(_load(datasets_dir / "snips" / "train.yml"), seed, "snips")
        cap = test_per_intent or SNIPS_TEST_PER_INTENT
        train = {i: m[:SNIPS_TRAIN_PER_INTENT] for i, m in groups.items()}
        test = {i: m[SNIPS_TRAIN_PER_INTENT:][:cap] for i, m in groups.items()}
        definition = (
            f"`snips/train.yml`; each intent's examples shuffled (seed {seed}); the first "
            f"{SNIPS_TRAIN_PER_INTENT} train, the next {cap} of the rest test"
        )
    elif name == "clinc150":
        train = _shuffled_groups(_load(datasets_dir / "clinc150" / "train.yml"), seed, "clinc-train")
        test = _cap(_shuffled_groups(_load(datasets_dir / "clinc150" / "val.yml"), seed, "clinc-test"), test_per_intent)
        definition = "`clinc150/train.yml` train (150 intents + `out_of_scope`), `clinc150/val.yml` test"
        if test_per_intent:
            definition += f" ({test_per_intent} per intent, seed {seed})"
    elif name == "banking77":
        groups = _shuffled_groups(_load(datasets_dir / "banking77" / "train.yml"), seed, "banking")
        cuts = {i: max(1, round(BANKING_TEST_FRACTION * len(m))) for i, m in groups.items()}
        train = {i: m[cuts[i] :] for i, m in groups.items()}
        test = _cap({i: m[: cuts[i]] for i, m in groups.items()}, test_per_intent)
        definition = (
            f"`banking77/train.yml`; each intent's examples shuffled (seed {seed}); "
            f"{BANKING_TEST_FRACTION:.0%} held out per intent as test, the rest train"
        )
        if test_per_intent:
            definition += f" (test capped at {test_per_intent} per intent)"
    else:
        raise ValueError(f"unknown dataset '{name}' (known: {', '.join(DATASETS)})")
    if name != "snips70":  # SNIPS-70 is a fixed few-shot setting; the cap is for the big sets
        train = _cap(train, max_train_per_intent)
    if max_train_per_intent and name != "snips70":
        definition += f"; training capped at {max_train_per_intent} per intent (seeded prefix)"

    train_messages = [m for group in train.values() for m in group]
    test_messages = [m for group in test.values() for m in group]
    train_file, test_file = work_dir / f"{name}-train.yml", work_dir / f"{name}-test.yml"
    train_file.write_text(RasaYAMLWriter().dumps(TrainingData(training_examples=train_messages)))
    test_file.write_text(RasaYAMLWriter().dumps(TrainingData(training_examples=test_messages)))
    has_entities = any(m.get(ENTITIES) for m in train_messages + test_messages)
    summary = {
        "definition": definition,
        "seed": seed,
        "max_train_per_intent": max_train_per_intent,
        "test_per_intent": test_per_intent,
        "intents": len(train),
        "train_examples": len(train_messages),
        "test_examples": len(test_messages),
        "has_entities": has_entities,
    }
    test_examples = [Example(m.get(TEXT), m.get(INTENT), spans(m.get(ENTITIES))) for m in test_messages]
    return Split(name, train_file, test_file, test_examples, has_entities, summary)


def _load(path: Path) -> List[Message]:
    if not path.is_file():
        raise FileNotFoundError(f"dataset file {path} is missing (set --datasets-dir or DATASETS_DIR)")
    return [m for m in load_data(str(path)).intent_examples if m.get(TEXT)]


def _shuffled_groups(messages: Sequence[Message], seed: int, salt: str) -> Dict[str, List[Message]]:
    """Messages by intent (sorted by name), each group shuffled by its own seeded generator."""
    groups: Dict[str, List[Message]] = {}
    for message in messages:
        groups.setdefault(message.get(INTENT), []).append(message)
    for intent, group in groups.items():
        random.Random(f"{seed}:{salt}:{intent}").shuffle(group)
    return dict(sorted(groups.items()))


def _cap(groups: Dict[str, List[Message]], cap: Optional[int]) -> Dict[str, List[Message]]:
    return {i: m[:cap] for i, m in groups.items()} if cap else groups

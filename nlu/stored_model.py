"""The NLU component's stored model: the directory Rasa packs into its model archive.

One place knows its layout, writes it at the end of training and reads it back (with the one
format check) wherever a model is served, explained or installed:

    meta.json                    the Triton model's name and version, and this layout's format
    encoder/                     the tokenizer and its encoding settings (nlu.encoding)
    triton/<name>/<version>/     the version as Triton serves it: graphs, labels.json, fingerprint
    mlflow_run.json              the tracked run that trained it (nlu.training.tracking), if any
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import List, Optional

from nlu.encoding import TextEncoder
from nlu.triton import repository
from nlu.triton.contract import LABELS_FILE

# 3: the encoder is a tokenizers file with its special ids (2: transformers' files; 1: two Triton
# models). An older format must be retrained.
MODEL_FORMAT = 3
META_FILE = "meta.json"
ENCODER_DIR = "encoder"
TRITON_DIR = "triton"
RUN_FILE = "mlflow_run.json"


class StoredModelError(ValueError):
    """A directory that is not a stored model of this component's format."""


@dataclass(frozen=True)
class Labels:
    """The class names of the joint model's two heads, and where out-of-scope begins.

    `out_of_scope_threshold` is the energy score above which a text is declined (calibrated on the
    validation slice by nlu.training.out_of_scope; None: never declined on the score).
    """

    intents: List[str]
    tags: List[str]
    out_of_scope_threshold: Optional[float] = None


@dataclass(frozen=True)
class StoredModel:
    """A stored model's directory and the Triton model version it holds."""

    directory: Path
    name: str
    version: int

    @property
    def encoder_dir(self) -> Path:
        return self.directory / ENCODER_DIR

    @property
    def triton_dir(self) -> Path:
        """A model repository holding this one version (what gets installed into the live one)."""
        return self.directory / TRITON_DIR

    @property
    def version_dir(self) -> Path:
        return repository.version_dir(self.triton_dir, self.name, self.version)

    def labels(self) -> Labels:
        return read_labels(self.version_dir)

    def encoder(self) -> TextEncoder:
        return TextEncoder.load(self.encoder_dir)


def read_labels(version_dir: Path) -> Labels:
    """The labels.json of a Triton version directory."""
    return Labels(**json.loads((version_dir / LABELS_FILE).read_text()))


def write_labels(version_dir: Path, labels: Labels) -> None:
    (version_dir / LABELS_FILE).write_text(json.dumps(asdict(labels), indent=2))


def read(directory: Path) -> StoredModel:
    """The stored model in `directory`; StoredModelError if it is missing or of another format."""
    try:
        meta = json.loads((directory / META_FILE).read_text())
    except (OSError, ValueError) as error:
        raise StoredModelError(f"{directory} holds no readable {META_FILE}: {error}") from error
    found = meta.get("format") if isinstance(meta, dict) else None
    if found != MODEL_FORMAT:
        raise StoredModelError(
            f"it was trained by an older version of BertTritonNLU (stored format {found}, now {MODEL_FORMAT}); "
            "retrain it with `rasa train`"
        )
    return StoredModel(directory, meta["name"], meta["version"])


def write(stored: StoredModel, encoder: TextEncoder, labels: Labels) -> StoredModel:
    """Complete a stored model whose version directory holds its graphs: the encoder, the labels,
    the version's fingerprint and meta.json (last: a directory without it is no stored model)."""
    encoder.save(stored.encoder_dir)
    write_labels(stored.version_dir, labels)
    repository.seal_version(stored.version_dir)
    meta = {"name": stored.name, "version": stored.version, "format": MODEL_FORMAT}
    (stored.directory / META_FILE).write_text(json.dumps(meta, indent=2))
    return stored

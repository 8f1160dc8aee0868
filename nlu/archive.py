"""The NLU component's stored model, read out of a Rasa model archive by tools outside Rasa.

Rasa's own loader (`LocalModelStorage.from_model_archive`) also builds the graph's metadata, which
imports every component of the pipeline, TensorFlow policies included: tens of seconds for a tool
that needs one directory. This reads the archive as Rasa writes it (`components/<resource>/...`)
and extracts only the BertTritonNLU resource, with TarSafe as Rasa does: an archive is input from
outside.
"""

from __future__ import annotations

import json
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from rasa.exceptions import ModelNotFound
from rasa.model import get_local_model
from rasa.shared.constants import DEFAULT_MODELS_PATH
from tarsafe import TarSafe, TarSafeException

from nlu.decoding import Labels
from nlu.triton import repository

COMPONENT = "BertTritonNLU"  # Rasa names the resource after the pipeline entry: train_nlu.component.BertTritonNLU1
COMPONENTS_DIR = "components"
# The layout nlu.component writes into its resource (its META_FILE and ENCODER_DIR; importing it
# here would load Rasa's NLU stack).
META_FILE = "meta.json"
ENCODER_DIR = "encoder"
TRITON_DIR = "triton"


class ArchiveError(RuntimeError):
    """No model archive, or one without a usable BertTritonNLU model."""


@dataclass(frozen=True)
class StoredNLU:
    """The component's resource directory: its tokenizer and its Triton model version."""

    directory: Path
    name: str
    version: int

    @property
    def encoder_dir(self) -> Path:
        return self.directory / ENCODER_DIR

    @property
    def version_dir(self) -> Path:
        return repository.version_dir(self.directory / TRITON_DIR, self.name, self.version)

    def labels(self) -> Labels:
        return repository.read_labels(self.directory / TRITON_DIR, self.name, self.version)


def find_archive(model: str = DEFAULT_MODELS_PATH) -> Path:
    """`model` if it is an archive, else the newest archive in the directory `model`."""
    try:
        return Path(get_local_model(model))
    except ModelNotFound as error:
        raise ArchiveError(f"No Rasa model: {error} Train one with `make train`, or name one with --model.") from error


def extract(archive: Path, into: Path) -> StoredNLU:
    """Extract the archive's BertTritonNLU resource into `into` (only that) and read its meta.json."""
    try:
        with TarSafe.open(archive, "r:gz") as tar:
            directory = into / _extract_resource(tar, archive, into)
    except (tarfile.TarError, TarSafeException) as error:
        raise ArchiveError(f"{archive} is not a readable Rasa model archive: {error}") from error
    meta = json.loads((directory / META_FILE).read_text())
    if "name" not in meta:
        raise ArchiveError(f"{archive} was trained by an older version of {COMPONENT}; retrain it with `rasa train`.")
    return StoredNLU(directory, meta["name"], meta["version"])


def _extract_resource(tar: TarSafe, archive: Path, into: Path) -> str:
    """Extract the one BertTritonNLU resource; its path inside the archive."""
    members = tar.getmembers()
    resources = {
        parts[1]
        for parts in (PurePosixPath(member.name).parts for member in members)
        if len(parts) > 2 and parts[0] == COMPONENTS_DIR and COMPONENT in parts[1] and parts[2] == META_FILE
    }
    if len(resources) != 1:
        found = f"{len(resources)} ({', '.join(sorted(resources))})" if resources else "none"
        raise ArchiveError(
            f"{archive} should hold one trained {COMPONENT} component and holds {found}; train one with "
            f"`rasa train` on a pipeline that has nlu.component.{COMPONENT}."
        )
    prefix = f"{COMPONENTS_DIR}/{resources.pop()}"
    tar.extractall(into, [member for member in members if PurePosixPath(member.name).is_relative_to(prefix)])
    return prefix

"""The NLU component's stored model, read out of a Rasa model archive by tools outside Rasa.

Rasa's own loader (`LocalModelStorage.from_model_archive`) also builds the graph's metadata, which
imports every component of the pipeline, TensorFlow policies included: tens of seconds for a tool
that needs one directory. This reads the archive as Rasa writes it (`components/<resource>/...`)
and extracts only the BertTritonNLU resource, with TarSafe as Rasa does: an archive is input from
outside.
"""

from __future__ import annotations

import tarfile
from pathlib import Path, PurePosixPath
from typing import Optional

from rasa.exceptions import ModelNotFound
from rasa.model import get_latest_model, get_local_model
from rasa.shared.constants import DEFAULT_MODELS_PATH
from tarsafe import TarSafe, TarSafeException

from nlu import stored_model
from nlu.stored_model import META_FILE, StoredModel, StoredModelError

COMPONENT = "BertTritonNLU"  # Rasa names the resource after the pipeline entry: train_nlu.component.BertTritonNLU1
COMPONENTS_DIR = "components"


class ArchiveError(RuntimeError):
    """No model archive, or one without a usable BertTritonNLU model."""


def newest_archive(directory: Path = Path(DEFAULT_MODELS_PATH)) -> Optional[Path]:
    """The Rasa model `rasa train` wrote last into `directory`, by Rasa's own rule (what it serves by default)."""
    latest = get_latest_model(str(directory)) if directory.is_dir() else None
    return Path(latest) if latest else None


def find_archive(model: str = DEFAULT_MODELS_PATH) -> Path:
    """`model` if it is an archive, else the newest archive in the directory `model`."""
    try:
        return Path(get_local_model(model))
    except ModelNotFound as error:
        raise ArchiveError(f"No Rasa model: {error} Train one with `make train`, or name one with --model.") from error


def extract(archive: Path, into: Path) -> StoredModel:
    """Extract the archive's BertTritonNLU resource into `into` (only that) and read it."""
    try:
        with TarSafe.open(archive, "r:gz") as tar:
            directory = into / _extract_resource(tar, archive, into)
    except (tarfile.TarError, TarSafeException) as error:
        raise ArchiveError(f"{archive} is not a readable Rasa model archive: {error}") from error
    try:
        return stored_model.read(directory)
    except StoredModelError as error:
        raise ArchiveError(f"{archive}: {error}.") from error


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

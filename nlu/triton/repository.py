"""The Triton model repository: one model per pipeline, numbered versions, one config.pbtxt.

A trained model is written once as a version directory (the ONNX graphs, labels.json and a
fingerprint). The same directory goes into the Rasa model archive and into the live repository
that Triton serves, so each Rasa model names exactly the version it needs.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Optional

from nlu.decoding import Labels
from nlu.triton.contract import FINGERPRINT_FILE, LABELS_FILE
from nlu.triton.model_config import CONFIG_FILE, model_config, read_config, write_config


class RepositoryConflict(RuntimeError):
    """The live repository holds different weights under the version a Rasa model names."""


def version_dir(repository: Path, name: str, version: int) -> Path:
    return repository / name / str(version)


def next_version(repository: Path, name: str) -> int:
    """One more than the highest version the model has in the repository."""
    model_dir = repository / name
    versions = [int(entry.name) for entry in model_dir.iterdir() if entry.name.isdigit()] if model_dir.is_dir() else []
    return max(versions, default=0) + 1


def finish_version(repository: Path, name: str, version: int, labels: Labels) -> Path:
    """Add labels.json, the fingerprint and the model's config.pbtxt to a version holding its graphs."""
    directory = version_dir(repository, name, version)
    (directory / LABELS_FILE).write_text(json.dumps(asdict(labels), indent=2))
    (directory / FINGERPRINT_FILE).write_text(_digest(directory))
    write_config(repository / name, model_config(name))
    return directory


def read_labels(repository: Path, name: str, version: int) -> Labels:
    return Labels(**json.loads((version_dir(repository, name, version) / LABELS_FILE).read_text()))


def install_version(source: Path, repository: Path, name: str, version: int) -> Optional[Path]:
    """Copy a version from `source` into `repository` unless it is there; give it a config.

    Returns the installed directory, or None when it was already present and identical.
    Raises RepositoryConflict when the repository holds other weights under that version.
    """
    source_dir, target_dir = version_dir(source, name, version), version_dir(repository, name, version)
    write_config(repository / name, read_config(source / name / CONFIG_FILE))
    if target_dir.exists():
        if (target_dir / FINGERPRINT_FILE).read_text() != (source_dir / FINGERPRINT_FILE).read_text():
            raise RepositoryConflict(
                f"Version {version} of Triton model '{name}' in {repository} holds other weights than this "
                f"Rasa model's. Remove {target_dir} or retrain so that a new version is written."
            )
        return None
    staging = target_dir.with_name(f".{version}.partial")  # Triton must never see a half-copied version
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(source_dir, staging)
    staging.rename(target_dir)
    return target_dir


def _digest(directory: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(directory.glob("*.onnx")) + [directory / LABELS_FILE]:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()

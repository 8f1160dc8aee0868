"""The Triton model repository: one model per pipeline, numbered versions, one config.pbtxt.

A trained model is written once as a version directory (the ONNX graphs, labels.json and a
fingerprint). The same directory goes into the Rasa model archive and into the live repository
that Triton serves, so each Rasa model names exactly the version it needs.

A Rasa model archive is input from outside (`PUT /model`, a models/ folder): only those data
files are installed from it, and the config is always ours, so an archive can never bring code
(a Python model, another backend, an execution environment) into the live repository.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
from pathlib import Path
from typing import Optional

from nlu.triton.contract import FINGERPRINT_FILE, FP32_FILE, INT8_FILE, LABELS_FILE
from nlu.triton.model_config import model_config, write_config

VERSION_FILES = (FP32_FILE, INT8_FILE, LABELS_FILE, FINGERPRINT_FILE)  # all a version may hold
_MODEL_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


class RepositoryConflict(RuntimeError):
    """The live repository holds different weights under the version a Rasa model names."""


class UnsafeModel(ValueError):
    """A stored version that is not only our data files, or whose name or version could escape the repository."""


def version_dir(repository: Path, name: str, version: int) -> Path:
    if not _MODEL_NAME.fullmatch(name) or type(version) is not int or version < 1:
        raise UnsafeModel(f"'{name}' version {version!r} is not a valid Triton model name and version")
    return repository / name / str(version)


def next_version(repository: Path, name: str) -> int:
    """One more than the highest version the model has in the repository."""
    model_dir = repository / name
    versions = [int(entry.name) for entry in model_dir.iterdir() if entry.name.isdigit()] if model_dir.is_dir() else []
    return max(versions, default=0) + 1


def seal_version(directory: Path) -> None:
    """Write the fingerprint of a version holding its graphs and labels.json: installing compares
    it, so that one version number never serves two sets of weights."""
    (directory / FINGERPRINT_FILE).write_text(_digest(directory))


def install_version(source: Path, repository: Path, name: str, version: int) -> Optional[Path]:
    """Copy a version's data files from `source` into `repository` unless it is there; give the model our config.

    Returns the installed directory, or None when it was already present and identical.
    Raises RepositoryConflict when the repository holds other weights under that version, and
    UnsafeModel when the version holds anything but VERSION_FILES (or links).
    """
    source_dir, target_dir = version_dir(source, name, version), version_dir(repository, name, version)
    files = _data_files(source_dir)
    write_config(repository / name, model_config(name))
    if target_dir.exists():
        _check_same_weights(source_dir, target_dir, repository)
        return None
    # Triton must never see a half-copied version, and replicas starting together each copy into
    # their own staging directory: the first rename wins, the others find its version.
    staging = Path(tempfile.mkdtemp(prefix=f".{version}.", suffix=".partial", dir=target_dir.parent))
    try:
        for path in files:
            shutil.copyfile(path, staging / path.name)
        staging.chmod(0o755)
        staging.rename(target_dir)
    except OSError:
        if not target_dir.exists():
            raise
        _check_same_weights(source_dir, target_dir, repository)
        return None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target_dir


def _check_same_weights(source_dir: Path, target_dir: Path, repository: Path) -> None:
    if (target_dir / FINGERPRINT_FILE).read_text() != (source_dir / FINGERPRINT_FILE).read_text():
        raise RepositoryConflict(
            f"Version {target_dir.name} of Triton model '{target_dir.parent.name}' in {repository} holds other "
            f"weights than this Rasa model's. Remove {target_dir} or retrain so that a new version is written."
        )


def _data_files(directory: Path) -> list:
    """The version's files, checked to be regular files named in VERSION_FILES."""
    entries = list(directory.iterdir())
    strangers = [
        entry.name for entry in entries if entry.name not in VERSION_FILES or entry.is_symlink() or not entry.is_file()
    ]
    if strangers:
        raise UnsafeModel(
            f"{directory} holds {', '.join(sorted(strangers))}: a version may hold only "
            f"{', '.join(VERSION_FILES)}; retrain the model with `rasa train`"
        )
    return entries


def _digest(directory: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(directory.glob("*.onnx")) + [directory / LABELS_FILE]:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()

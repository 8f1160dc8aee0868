"""The Triton model repository: one directory per model, numbered versions, a config.pbtxt.

A fine-tuned model is written once as a version directory (model.py, the weights under hf/,
a fingerprint). The same directory goes into the Rasa model archive and into the live
repository that Triton serves, so each Rasa model names exactly the version it needs.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:  # importing transformers takes seconds; this module only writes files
    from transformers import PreTrainedModel

TASKS = ("intent", "entities")
BACKEND_SOURCE = Path(__file__).with_name("triton_backend.py")
MAX_BATCH_SIZE = 64

_CONFIG = """\
name: "{name}"
backend: "python"
max_batch_size: {max_batch_size}
version_policy: {{ all {{ }} }}
input [
  {{ name: "INPUT_IDS" data_type: TYPE_INT64 dims: [ -1 ] }},
  {{ name: "ATTENTION_MASK" data_type: TYPE_INT64 dims: [ -1 ] }}
]
output [
  {{ name: "PROBABILITIES" data_type: TYPE_FP32 dims: [ {output_dims} ] }}
]
dynamic_batching {{ max_queue_delay_microseconds: 2000 }}
parameters: {{ key: "task" value: {{ string_value: "{task}" }} }}
parameters: {{ key: "half_precision_on_gpu" value: {{ string_value: "true" }} }}
"""


class RepositoryConflict(RuntimeError):
    """The live repository holds different weights under the version a Rasa model names."""


def triton_model_name(prefix: str, task: str) -> str:
    """Name of the Triton model serving `task` ("intent" or "entities") for a pipeline."""
    return f"{prefix}_{task}"


def model_config(name: str, task: str) -> str:
    """config.pbtxt text: probabilities per text for intents, per piece for entities."""
    output_dims = "-1" if task == "intent" else "-1, -1"
    return _CONFIG.format(name=name, task=task, max_batch_size=MAX_BATCH_SIZE, output_dims=output_dims)


def next_version(repository: Path, *names: str) -> int:
    """One more than the highest version any of these models has in the repository."""
    versions = [
        int(entry.name)
        for name in names
        if (repository / name).is_dir()
        for entry in (repository / name).iterdir()
        if entry.name.isdigit()
    ]
    return max(versions, default=0) + 1


def write_version(repository: Path, name: str, task: str, version: int, model: "PreTrainedModel") -> Path:
    """Write the model as `repository/name/version`, with the model's config.pbtxt."""
    model_dir = repository / name
    version_dir = model_dir / str(version)
    model.save_pretrained(version_dir / "hf")
    shutil.copyfile(BACKEND_SOURCE, version_dir / "model.py")
    (version_dir / "fingerprint").write_text(_weights_digest(version_dir / "hf"))
    (model_dir / "config.pbtxt").write_text(model_config(name, task))
    return version_dir


def install_version(source: Path, repository: Path, name: str, version: int) -> Optional[Path]:
    """Copy a version (and config.pbtxt) from `source` into `repository` unless it is there.

    Returns the installed directory, or None when it was already present and identical.
    Raises RepositoryConflict when the repository holds other weights under that version.
    """
    source_dir, target_dir = source / name / str(version), repository / name / str(version)
    if target_dir.exists():
        if (target_dir / "fingerprint").read_text() != (source_dir / "fingerprint").read_text():
            raise RepositoryConflict(
                f"Version {version} of Triton model '{name}' in {repository} holds other weights than this "
                f"Rasa model's. Remove {target_dir} or retrain so that a new version is written."
            )
        return None
    target_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = target_dir.with_name(f".{version}.partial")  # Triton must never see a half-copied version
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(source_dir, staging)
    shutil.copyfile(source / name / "config.pbtxt", repository / name / "config.pbtxt")
    staging.rename(target_dir)
    return target_dir


def _weights_digest(directory: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(directory.glob("*.safetensors")):
        digest.update(path.read_bytes())
    return digest.hexdigest()

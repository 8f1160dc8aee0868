"""Joint fine-tuning is reproducible, learns both tasks, splits are stratified, and a bad base
model is a clear error."""

from __future__ import annotations

import dataclasses
import random

import pytest
import torch

from nlu.decoding import decode
from nlu.encoding import EncodingSettings
from nlu.training import base_model, fine_tuning, loop
from nlu.training.hyperparameters import FineTuneConfig
from nlu.training.out_of_scope import calibrate
from tests.checkpoints import make_checkpoint

TEXTS = [
    "where is my order 12345",
    "track 55555 please",
    "cancel order 77777",
    "please cancel 31313",
    "hello",
    "hi there",
] * 3
INTENTS = ["status", "status", "cancel", "cancel", "greet", "greet"] * 3


def order_ids(text: str):
    return [
        {"entity": "order_id", "start": text.index(word), "end": text.index(word) + len(word), "value": word}
        for word in text.split()
        if word.isdigit()
    ]


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    return str(make_checkpoint("bert", tmp_path_factory.mktemp("tiny-bert"), TEXTS))


def fine_tune(
    base: str, seed: int, epochs: int = 2, texts=TEXTS, intents=INTENTS, **overrides
) -> fine_tuning.FineTuned:
    config = FineTuneConfig(epochs=epochs, batch_size=4, seed=seed, validation_fraction=0.2, **overrides)
    encoder = base_model.load_encoder(base, EncodingSettings())
    return fine_tuning.fine_tune(base, encoder, texts, intents, [order_ids(t) for t in texts], config)


def test_same_seed_gives_the_same_model(tiny_bert):
    first, second, other = (fine_tune(tiny_bert, seed).model.state_dict() for seed in (7, 7, 8))
    assert all(torch.equal(first[name], second[name]) for name in first)
    assert not all(torch.equal(first[name], other[name]) for name in first)


@pytest.mark.parametrize("mixed_precision", [True, False], ids=["bf16-where-native", "float32"])
def test_one_model_has_both_heads_and_learns_both_tasks(tiny_bert, mixed_precision):
    tuned = fine_tune(tiny_bert, 1, epochs=30, learning_rate=1e-3, patience=30, mixed_precision=mixed_precision)
    assert tuned.labels.intents == ["cancel", "greet", "status"]
    assert tuned.labels.tags == ["O", "B-order_id||", "I-order_id||"]
    encoder = base_model.load_encoder(tiny_bert, EncodingSettings())
    texts = ["cancel order 424242", "hello"]
    windows = encoder.windows(texts)
    ids, mask = encoder.pad(windows.input_ids)
    with torch.no_grad():
        intents, tags, scores = tuned.model(torch.from_numpy(ids), torch.from_numpy(mask))
    # The learned ranking, before the out-of-scope threshold (calibrated on 3 texts here) may decline it.
    undeclined = dataclasses.replace(tuned.labels, out_of_scope_threshold=None)
    parses = decode(texts, windows, intents.numpy(), tags.numpy(), scores.numpy()[:, 0], undeclined, ranking_length=3)
    assert [p.intent_ranking[0]["name"] for p in parses] == ["cancel", "greet"]
    assert [(e["entity"], e["value"]) for e in parses[0].entities] == [("order_id", "424242")]
    assert parses[1].entities == []
    assert tuned.labels.out_of_scope_threshold is not None
    assert [row["epoch"] for row in tuned.history] == list(range(1, 31))
    assert tuned.history[-1]["validation_intent_accuracy"] == 1.0 and tuned.history[-1]["validation_entity_f1"] == 1.0


@pytest.mark.skipif(not loop.bf16_is_native(torch.device("cpu")), reason="this CPU has no native bfloat16")
def test_mixed_precision_trains_the_encoder_in_bfloat16_and_keeps_float32_weights(tiny_bert, monkeypatch):
    """Training steps run the encoder's matrix products in bfloat16; validation (as served) and the
    weights stay float32."""
    seen = []  # (training step?, dtype of the encoder's first linear layer's output) per loss
    original = loop._loss

    def spy(model, batch, bf16=False):
        first_linear = next(m for m in model.encoder.modules() if isinstance(m, torch.nn.Linear))
        handle = first_linear.register_forward_hook(lambda _m, _i, out: seen.append((bf16, out.dtype)))
        try:
            return original(model, batch, bf16)
        finally:
            handle.remove()

    monkeypatch.setattr(loop, "_loss", spy)
    tuned = fine_tune(tiny_bert, 1, epochs=1, mixed_precision=True)
    assert {dtype for step, dtype in seen if step} == {torch.bfloat16}
    assert {dtype for step, dtype in seen if not step} == {torch.float32}
    assert {p.dtype for p in tuned.model.parameters()} == {torch.float32}
    seen.clear()
    fine_tune(tiny_bert, 1, epochs=1)
    assert {dtype for _, dtype in seen} == {torch.float32}, "float32 by default"


def test_epochs_are_capped_by_the_examples_budget():
    config = FineTuneConfig(epochs=30, max_training_examples=25000)
    assert loop.epochs_to_run(config, 441) == 30
    assert loop.epochs_to_run(config, 7237) == 3
    assert loop.epochs_to_run(config, 13590) == 2
    assert loop.epochs_to_run(config, 90000) == 1


def test_out_of_scope_threshold_keeps_the_chosen_share_of_in_scope_texts():
    scores = [float(s) for s in range(100)]
    threshold = calibrate(scores, 0.9)
    assert sum(s <= threshold for s in scores) == 90
    assert calibrate([], 0.99) is None
    with pytest.raises(ValueError, match="in_scope_coverage"):
        calibrate(scores, 0.0)


def test_early_stopping_ends_before_the_epoch_limit(tiny_bert, caplog):
    """Intents drawn at random: held-out accuracy stops improving once the model memorises the training slice."""
    rng = random.Random(0)
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa".split()
    texts = [" ".join(rng.choices(words, k=4)) for _ in range(40)]
    intents = [rng.choice(["a", "b"]) for _ in texts]
    caplog.set_level("INFO", logger="nlu.training")
    fine_tune(tiny_bert, 1, epochs=40, texts=texts, intents=intents, learning_rate=2e-3, patience=2)
    assert any("Early stop after epoch" in r.getMessage() for r in caplog.records)


def test_holdout_is_stratified_and_seeded():
    keys = ["a"] * 10 + ["b"] * 20 + ["c"]
    train, validation = fine_tuning.holdout(keys, 0.1, seed=3)
    assert sorted(train + validation) == list(range(len(keys)))
    assert [keys[i] for i in validation].count("a") == 1 and [keys[i] for i in validation].count("b") == 2
    assert 30 in train, "a key seen once stays in training"
    assert fine_tuning.holdout(keys, 0.1, seed=3) == (train, validation)


def test_unknown_base_model_is_a_clear_error(tmp_path):
    with pytest.raises(base_model.BaseModelError, match="no-such-model"):
        base_model.load_encoder(str(tmp_path / "no-such-model"), EncodingSettings())

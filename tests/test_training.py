"""Fine-tuning is reproducible, splits are stratified, and a bad base model is a clear error."""

from __future__ import annotations

import pytest
import torch

from nlu import training
from tests.checkpoints import make_checkpoint

TEXTS = ["where is my order 12345", "track 55555 please", "cancel order 77777", "please cancel 31313", "hello", "hi there"] * 3
INTENTS = ["status", "status", "cancel", "cancel", "greet", "greet"] * 3


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    return str(make_checkpoint("bert", tmp_path_factory.mktemp("tiny-bert"), TEXTS))


def fine_tune(base: str, seed: int):
    config = training.FineTuneConfig(epochs=2, batch_size=4, seed=seed, validation_fraction=0.2)
    model, _ = training.fine_tune_intents(base, training.load_tokenizer(base), TEXTS, INTENTS, config)
    return model.state_dict()


def test_same_seed_gives_the_same_model(tiny_bert):
    first, second, other = fine_tune(tiny_bert, 7), fine_tune(tiny_bert, 7), fine_tune(tiny_bert, 8)
    assert all(torch.equal(first[name], second[name]) for name in first)
    assert not all(torch.equal(first[name], other[name]) for name in first)


def test_holdout_is_stratified_and_seeded():
    keys = ["a"] * 10 + ["b"] * 20 + ["c"]
    train, validation = training.holdout(keys, 0.1, seed=3)
    assert sorted(train + validation) == list(range(len(keys)))
    assert [keys[i] for i in validation].count("a") == 1 and [keys[i] for i in validation].count("b") == 2
    assert 30 in train, "a key seen once stays in training"
    assert training.holdout(keys, 0.1, seed=3) == (train, validation)


def test_unknown_base_model_is_a_clear_error(tmp_path):
    with pytest.raises(training.BaseModelError, match="no-such-model"):
        training.load_tokenizer(str(tmp_path / "no-such-model"))

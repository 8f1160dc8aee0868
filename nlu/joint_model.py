"""One BERT-family encoder with two heads: intent classification and BIO entity tagging.

One forward pass serves both tasks. `forward` returns probabilities, which is what the ONNX
export and Triton serve; training uses `logits`.
"""

from __future__ import annotations

from typing import Tuple

import torch
from torch import nn
from transformers import AutoModel, PreTrainedModel


class JointIntentTagger(nn.Module):
    """Intent from the first piece's hidden state ([CLS] or <s>), a tag for every piece."""

    def __init__(self, encoder: PreTrainedModel, intents: int, tags: int) -> None:
        super().__init__()
        self.encoder = encoder
        config = encoder.config
        hidden = config.hidden_size
        # DistilBERT names it `dropout`.
        self.dropout = nn.Dropout(getattr(config, "hidden_dropout_prob", getattr(config, "dropout", 0.1)))
        self.intent_head = nn.Linear(hidden, intents)
        self.tag_head = nn.Linear(hidden, tags)

    @classmethod
    def from_base(cls, base: str, intents: int, tags: int) -> "JointIntentTagger":
        # Eager attention traces into plain ONNX ops for every family (SDPA and flash kernels may not).
        return cls(AutoModel.from_pretrained(base, attn_implementation="eager"), intents, tags)

    def logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        hidden = self.dropout(self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state)
        return self.intent_head(hidden[:, 0]), self.tag_head(hidden)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        intent_logits, tag_logits = self.logits(input_ids, attention_mask)
        return torch.softmax(intent_logits.float(), -1), torch.softmax(tag_logits.float(), -1)

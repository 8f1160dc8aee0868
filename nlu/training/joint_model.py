"""One BERT-family encoder with two heads: intent classification and BIO entity tagging.

One forward pass serves both tasks. `forward` returns probabilities and an out-of-scope score,
which is what the ONNX export and Triton serve; training uses `logits`.
"""

from __future__ import annotations

from typing import Sequence, Tuple

import torch
from torch import nn
from transformers import AutoModel, PreTrainedModel

from nlu.decoding import OUT_OF_SCOPE


class JointIntentTagger(nn.Module):
    """Intent from the first piece's hidden state ([CLS] or <s>), a tag for every piece.

    The out-of-scope score is the energy of the in-scope intent logits, -logsumexp (Liu et al.
    2020, "Energy-based out-of-distribution detection"): unlike the top softmax probability it keeps
    how strongly any intent fired at all. An `out_of_scope` intent is trained as a class like
    any other, and left out of the energy.
    """

    def __init__(self, encoder: PreTrainedModel, intents: int, tags: int, in_scope: Sequence[bool] = ()) -> None:
        super().__init__()
        self.encoder = encoder
        config = encoder.config
        hidden = config.hidden_size
        # DistilBERT names it `dropout`.
        self.dropout = nn.Dropout(getattr(config, "hidden_dropout_prob", getattr(config, "dropout", 0.1)))
        self.intent_head = nn.Linear(hidden, intents)
        self.tag_head = nn.Linear(hidden, tags)
        mask = torch.tensor(list(in_scope) or [True] * intents, dtype=torch.bool)
        self.in_scope: torch.Tensor
        self.register_buffer("in_scope", mask, persistent=False)

    @classmethod
    def from_base(cls, base: str, intents: Sequence[str], tags: int) -> "JointIntentTagger":
        # Eager attention traces into plain ONNX ops for every family (SDPA and flash kernels may not).
        in_scope = [name != OUT_OF_SCOPE for name in intents]
        return cls(AutoModel.from_pretrained(base, attn_implementation="eager"), len(intents), tags, in_scope)

    def logits(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, bf16: bool = False
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Intent and tag logits; with `bf16` the encoder runs under bfloat16 autocast, the heads in float32."""
        with torch.autocast(input_ids.device.type, dtype=torch.bfloat16, enabled=bf16):
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        hidden = self.dropout(hidden.float())
        return self.intent_head(hidden[:, 0]), self.tag_head(hidden)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        intent_logits, tag_logits = self.logits(input_ids, attention_mask)
        intent_logits = intent_logits.float()
        energy = -torch.logsumexp(intent_logits.masked_fill(~self.in_scope, float("-inf")), -1, keepdim=True)
        return torch.softmax(intent_logits, -1), torch.softmax(tag_logits.float(), -1), energy

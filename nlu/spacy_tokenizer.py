"""Rasa tokenizer over spaCy's blank English pipeline: spaCy's rules, no downloaded model.

Rasa scores entities (`rasa test nlu`) token by token, so its tokens must split text the way
users' entity values are delimited ("#12345" -> "#", "12345"; "a@b.com" stays whole).
"""

from __future__ import annotations

from typing import Any, Dict, List, Text

from rasa.engine.graph import ExecutionContext
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.tokenizers.tokenizer import Token, Tokenizer
from rasa.shared.nlu.training_data.message import Message

from nlu.spacy_blank import spacy


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_TOKENIZER, is_trainable=False)
class BlankSpacyTokenizer(Tokenizer):
    """Tokens from `spacy.blank(language)`."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {
            "language": "en",
            "intent_tokenization_flag": False,
            "intent_split_symbol": "_",
            "token_pattern": None,
            "prefix_separator_symbol": None,
        }

    def __init__(self, config: Dict[Text, Any]) -> None:
        super().__init__(config)
        self._nlp = spacy.blank(config["language"])

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "BlankSpacyTokenizer":
        return cls(config)

    def tokenize(self, message: Message, attribute: Text) -> List[Token]:
        doc = self._nlp.make_doc(message.get(attribute))
        tokens = [Token(t.text, t.idx) for t in doc if not t.is_space]
        return self._apply_token_pattern(tokens)

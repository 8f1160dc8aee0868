"""Rasa NLU component: one fine-tuned BERT-family model for intents and entities, served by Triton.

A thin adapter over Rasa's GraphComponent contract:
- train: one call, nlu.training.pipeline.train: fine-tunes the joint model, exports it to ONNX
  (and INT8 when the quality gate allows) and stores it (nlu.stored_model) in the Rasa model and
  as a version of the live Triton repository;
- load: one call, nlu.serving.load: installs this Rasa model's version into the live repository
  and connects to Triton;
- process: nlu.parser asks Triton once per batch of messages; a text whose out-of-scope score
  passes the threshold calibrated in training is declined (`nlu_fallback` heads its ranking);
  when Triton fails, the messages get `nlu_fallback`, as blank messages always do.
Training code (torch, transformers) is imported only inside `train`: the Rasa server never loads it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from typing import Any, Dict, List, Optional, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.graph_components.validators import default_recipe_validator
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.nlu.extractors.extractor import EntityExtractorMixin
from rasa.nlu.tokenizers.tokenizer import Tokenizer
from rasa.shared.constants import DEFAULT_NLU_FALLBACK_INTENT_NAME as FALLBACK_INTENT  # answered by the fallback rule
from rasa.shared.nlu.constants import ENTITIES, INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from nlu import serving
from nlu.encoding import EncodingSettings
from nlu.parser import Parser
from nlu.stored_model import StoredModelError
from nlu.training.hyperparameters import DEFAULT_BASE_MODEL, FineTuneConfig
from nlu.triton.client import TritonUnavailable

logger = logging.getLogger(__name__)

MODEL_VERSIONS = "nlu_model_versions"  # parse-result key: the Triton model version that answered
OUT_OF_SCOPE_SCORE = "out_of_scope_score"  # parse-result key: above labels' threshold, the text is declined
_WARN_EVERY_S = 30.0
# What each numeric setting must be: (keys, test, what the test means).
_RULES: List[tuple] = [
    (
        ("epochs", "batch_size", "max_length", "max_windows", "ranking_length", "max_training_examples"),
        lambda v: v >= 1,
        "a whole number of at least 1",
    ),
    (("patience", "seed"), lambda v: v >= 0, "a whole number of at least 0"),
    (("learning_rate",), lambda v: v > 0, "above 0"),
    (("weight_decay",), lambda v: v >= 0, "0 or more"),
    (("validation_fraction",), lambda v: 0 <= v < 1, "at least 0 and below 1"),
    (("warmup_ratio",), lambda v: 0 <= v <= 1, "between 0 and 1"),
    (("in_scope_coverage",), lambda v: 0 < v <= 1, "above 0 and at most 1"),
]


@DefaultV1Recipe.register(
    [DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR],
    is_trainable=True,
)
class BertTritonNLU(GraphComponent, IntentClassifier, EntityExtractorMixin):
    """Intent classifier and entity extractor backed by fine-tuned transformers on Triton."""

    @classmethod
    def required_components(cls) -> List[type]:
        return [Tokenizer]

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {
            "model_name_or_path": DEFAULT_BASE_MODEL,  # a BERT-family checkpoint: local directory or hub id
            "triton_model_name": "support_nlu",  # served as <triton model_repository>/<name>/<version>
            "ranking_length": 10,  # intents in each message's intent_ranking
            **asdict(EncodingSettings()),  # max_length, stride, max_windows: commented in nlu/encoding.py
            **asdict(FineTuneConfig()),  # epochs ... mixed_precision: nlu/training/hyperparameters.py
        }

    def __init__(
        self,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        parser: Optional[Parser] = None,
    ) -> None:
        _check_config(self.name, config, self.get_default_config())
        self.component_config = config
        self._model_storage = model_storage
        self._resource = resource
        self._parser = parser
        self._last_warning = 0.0

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "BertTritonNLU":
        return cls(config, model_storage, resource)

    def train(self, training_data: TrainingData) -> Resource:
        """Fine-tune, export and store a new Triton version, tracked as one MLflow run."""
        from nlu.training import pipeline  # torch, transformers and ONNX: only where training happens

        examples = [m for m in training_data.intent_examples if m.get(TEXT)]
        if len({m.get(INTENT) for m in examples}) < 2:
            raise ValueError(f"{self.name} needs NLU examples of at least two intents to train.")
        with self._model_storage.write_to(self._resource) as directory:
            pipeline.train(
                self.component_config,
                [m.get(TEXT) for m in examples],
                [m.get(INTENT) for m in examples],
                [m.get(ENTITIES) or [] for m in examples],
                directory,
            )
        return self._resource

    @classmethod
    def load(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> "BertTritonNLU":
        """The stored model's parser; without a stored model (`rasa train core`), a component that parses nothing."""
        try:
            with model_storage.read_from(resource) as directory:
                try:
                    parser = serving.load(directory, config["ranking_length"])
                except (StoredModelError, OSError, ValueError, KeyError) as error:
                    raise RuntimeError(f"{cls.__name__} could not load its stored models: {error}") from error
        except ValueError:  # no resource: the component was never trained (e.g. `rasa train core`)
            logger.debug("%s has no trained models in this Rasa model", cls.__name__)
            return cls(config, model_storage, resource)
        return cls(config, model_storage, resource, parser)

    def process(self, messages: List[Message]) -> List[Message]:
        """Fill intent, ranking and entities of all messages with one request to Triton.

        A blank message (empty or whitespace) has nothing to understand: it gets `nlu_fallback`
        without asking Triton, so the fallback rule answers it and every later component finds an
        intent.
        """
        if self._parser is None:
            return messages
        to_parse = []
        for message in messages:
            if (message.get(TEXT) or "").strip():
                to_parse.append(message)
            else:
                self._set(message, [{"name": FALLBACK_INTENT, "confidence": 1.0}], [])
        if not to_parse:
            return messages
        try:
            parses = self._parser.parse([m.get(TEXT) for m in to_parse])
        except TritonUnavailable as error:
            self._warn(f"{error}; answering with {FALLBACK_INTENT}")
            for message in to_parse:
                self._set(message, [{"name": FALLBACK_INTENT, "confidence": 1.0}], [])
            return messages
        for message, parse in zip(to_parse, parses):
            self._set(message, parse.intent_ranking, parse.entities)
            message.set(OUT_OF_SCOPE_SCORE, parse.out_of_scope_score, add_to_output=True)
            message.set(MODEL_VERSIONS, self._parser.versions, add_to_output=True)
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data

    def _set(self, message: Message, ranking: List[Dict[str, Any]], entities: List[Dict[str, Any]]) -> None:
        message.set(INTENT, ranking[0], add_to_output=True)
        message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)
        entities = self.add_extractor_name(entities)
        message.set(ENTITIES, message.get(ENTITIES, []) + entities, add_to_output=True)

    def _warn(self, text: str) -> None:
        """Log Triton failures at most every 30 s: an outage must not flood the log."""
        now = time.monotonic()
        if now - self._last_warning >= _WARN_EVERY_S:
            self._last_warning = now
            logger.error(text)


# Rasa's recipe validator knows its own trainable extractors by type and would warn that
# entity annotations go unused; ours uses them.
if BertTritonNLU not in default_recipe_validator.TRAINABLE_EXTRACTORS:
    default_recipe_validator.TRAINABLE_EXTRACTORS.append(BertTritonNLU)


def _check_config(component: str, config: Dict[Text, Any], defaults: Dict[Text, Any]) -> None:
    """Name the setting of config.yml that is wrong before minutes of training find out."""
    unknown = sorted(set(config) - set(defaults))
    if unknown:
        raise ValueError(
            f"{component} in config.yml: unknown setting(s) {', '.join(unknown)}; it knows {', '.join(sorted(defaults))}"
        )
    for key, default in defaults.items():
        value = config.get(key, default)
        expected = (int, float) if isinstance(default, float) else type(default)
        if isinstance(value, bool) != isinstance(default, bool) or not isinstance(value, expected):
            raise ValueError(f"{component} in config.yml: {key} must be a {type(default).__name__}, not {value!r}")
    for keys, valid, meaning in _RULES:
        for key in keys:
            if not valid(config.get(key, defaults[key])):
                raise ValueError(f"{component} in config.yml: {key} must be {meaning}, not {config[key]!r}")
    if not config.get("stride", defaults["stride"]) < config.get("max_length", defaults["max_length"]):
        raise ValueError(f"{component} in config.yml: stride must be below max_length (windows must advance)")

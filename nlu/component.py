"""Rasa NLU component: fine-tuned BERT intents and entities, served by Triton.

A thin adapter over Rasa's GraphComponent contract:
- train: nlu.training fine-tunes both models; nlu.repository writes them as Triton versions
  into the Rasa model and into the live Triton repository;
- load: puts this Rasa model's versions into the live repository and checks Triton serves them;
- process: nlu.parser asks Triton; when Triton fails, the message gets `nlu_fallback`.
"""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
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

from nlu import repository, training
from nlu.parser import Parser, ServedModel
from nlu.settings import TritonSettings
from nlu.triton_client import TritonNLUClient, TritonUnavailable

logger = logging.getLogger(__name__)

META_FILE = "meta.json"
MODEL_VERSIONS = "nlu_model_versions"  # parse-result key: the Triton model versions that answered
_WARN_EVERY_S = 30.0


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
            "model_name_or_path": training.DEFAULT_BASE_MODEL,
            "triton_model_name": "support_nlu",
            "ranking_length": 10,
            **training.FineTuneConfig().__dict__,
        }

    def __init__(
        self,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        parser: Optional[Parser] = None,
    ) -> None:
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
        examples = [m for m in training_data.intent_examples if m.get(TEXT)]
        if len({m.get(INTENT) for m in examples}) < 2:
            raise ValueError(f"{self.name} needs NLU examples of at least two intents to train.")
        texts = [m.get(TEXT) for m in examples]
        intents = [m.get(INTENT) for m in examples]
        annotations = [m.get(ENTITIES) or [] for m in examples]
        config = training.FineTuneConfig.from_component_config(self.component_config)
        base = self.component_config["model_name_or_path"]
        tokenizer = training.load_tokenizer(base)

        models = {"intent": training.fine_tune_intents(base, tokenizer, texts, intents, config)}
        if any(annotations):
            models["entities"] = training.fine_tune_entities(base, tokenizer, texts, annotations, intents, config)

        prefix = self.component_config["triton_model_name"]
        names = {task: repository.triton_model_name(prefix, task) for task in models}
        live = TritonSettings.load().model_repository
        version = repository.next_version(live, *names.values())
        with self._model_storage.write_to(self._resource) as directory:
            tokenizer.save_pretrained(directory / "tokenizer")
            for task, (model, _) in models.items():
                repository.write_version(directory / "triton", names[task], task, version, model)
            meta = {task: {"name": names[task], "version": version, "labels": labels} for task, (_, labels) in models.items()}
            (directory / META_FILE).write_text(json.dumps(meta, indent=2))
            for name in names.values():
                repository.install_version(directory / "triton", live, name, version)
        logger.info("Fine-tuned %s as Triton version %d in %s", ", ".join(names.values()), version, live)
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
        try:
            with model_storage.read_from(resource) as directory:
                try:
                    return cls._from_directory(config, model_storage, resource, directory)
                except (ValueError, OSError, KeyError) as error:
                    raise RuntimeError(f"{cls.__name__} could not load its stored models: {error}") from error
        except ValueError:  # no resource: the component was never trained (e.g. `rasa train core`)
            logger.debug("%s has no trained models in this Rasa model", cls.__name__)
            return cls(config, model_storage, resource)

    @classmethod
    def _from_directory(
        cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource, directory: Path
    ) -> "BertTritonNLU":
        """Install the stored versions into the live repository and connect to Triton."""
        meta = json.loads((directory / META_FILE).read_text())
        tokenizer = training.load_tokenizer(str(directory / "tokenizer"))
        settings = TritonSettings.load()
        for served in meta.values():
            repository.install_version(directory / "triton", settings.model_repository, served["name"], served["version"])
        client = TritonNLUClient(settings.url, settings.timeout_s)
        models = {task: ServedModel(**served) for task, served in meta.items()}
        with ThreadPoolExecutor(max_workers=len(models)) as pool:  # each model's stub starts in parallel
            list(pool.map(lambda model: _make_ready(client, model), models.values()))
        parser = Parser(
            tokenizer,
            client,
            models["intent"],
            models.get("entities"),
            max_length=config["max_length"],
            stride=config["stride"],
            ranking_length=config["ranking_length"],
        )
        return cls(config, model_storage, resource, parser)

    def process(self, messages: List[Message]) -> List[Message]:
        """Fill intent, ranking and entities of all messages with one request per model."""
        to_parse = [m for m in messages if m.get(TEXT)]
        if not to_parse or self._parser is None:
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


def _make_ready(client: TritonNLUClient, model: ServedModel) -> None:
    """Have Triton load a version it lacks; log a clear error (not a crash) if it cannot."""
    if client.problem(model.name, model.version) is None:
        return
    try:
        client.load(model.name)
    except TritonUnavailable as error:
        logger.debug("%s", error)
    problem = client.problem(model.name, model.version)
    if problem:
        logger.error(
            "Triton model '%s' version %d cannot serve: %s. Messages get '%s' until it can: start Triton "
            "with `python -m bot triton` (serving %s) or set triton.url in endpoints.yml.",
            model.name,
            model.version,
            problem,
            FALLBACK_INTENT,
            TritonSettings.load().model_repository,
        )

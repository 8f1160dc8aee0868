"""Rasa NLU component: one fine-tuned BERT-family model for intents and entities, served by Triton.

A thin adapter over Rasa's GraphComponent contract:
- train: nlu.training fine-tunes the joint model; nlu.export writes it as ONNX (and INT8 when
  the quality gate allows); nlu.triton.repository stores it as a Triton version in the Rasa
  model and in the live Triton repository;
- load: puts this Rasa model's version into the live repository and checks Triton serves it;
- process: nlu.parser asks Triton once per batch of messages; a text whose out-of-scope score
  passes the threshold calibrated in training is declined (`nlu_fallback` heads its ranking);
  when Triton fails, the messages get `nlu_fallback`, as blank messages always do.
Loading and serving import no training code (no torch in the Rasa server's NLU path).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Text

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

from nlu.encoding import EncodingSettings, TextEncoder
from nlu.hyperparameters import DEFAULT_BASE_MODEL, FineTuneConfig
from nlu.parser import Parser, ServedModel
from nlu.settings import TritonSettings
from nlu.triton import repository
from nlu.triton.client import TritonNLUClient, TritonUnavailable

if TYPE_CHECKING:
    from nlu import tracking

logger = logging.getLogger(__name__)

META_FILE = "meta.json"
ENCODER_DIR = "encoder"
MODEL_FORMAT = 2  # 2: the graph also answers an out-of-scope score (older models must be retrained)
MODEL_VERSIONS = "nlu_model_versions"  # parse-result key: the Triton model version that answered
OUT_OF_SCOPE_SCORE = "out_of_scope_score"  # parse-result key: above labels' threshold, the text is declined
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
            "model_name_or_path": DEFAULT_BASE_MODEL,
            "triton_model_name": "support_nlu",
            "ranking_length": 10,
            **EncodingSettings().__dict__,
            **FineTuneConfig().__dict__,
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
        """Fine-tune, export and install a new Triton version, tracked as one MLflow run."""
        from nlu import tracking

        examples = [m for m in training_data.intent_examples if m.get(TEXT)]
        if len({m.get(INTENT) for m in examples}) < 2:
            raise ValueError(f"{self.name} needs NLU examples of at least two intents to train.")
        texts = [m.get(TEXT) for m in examples]
        intents = [m.get(INTENT) for m in examples]
        annotations = [m.get(ENTITIES) or [] for m in examples]
        name = self.component_config["triton_model_name"]
        with tracking.track("nlu-fine-tuning", name) as run:
            run.log_params({key: self.component_config[key] for key in self.get_default_config()})
            run.set_tags(
                {
                    tracking.TAG_BASE_MODEL: self.component_config["model_name_or_path"],
                    tracking.TAG_DATA_FINGERPRINT: tracking.data_fingerprint(texts, intents, annotations),
                    tracking.TAG_TRITON_MODEL: name,
                }
            )
            self._fine_tune_and_install(texts, intents, annotations, run)
        return self._resource

    def _fine_tune_and_install(
        self,
        texts: List[str],
        intents: List[str],
        annotations: List[List[Dict[str, Any]]],
        run: "tracking.TrackedRun",
    ) -> None:
        from nlu import export, tracking, training  # torch, transformers and ONNX: only where training happens

        base = self.component_config["model_name_or_path"]
        encoder = training.load_encoder(base, EncodingSettings.from_component_config(self.component_config))
        config = FineTuneConfig.from_component_config(self.component_config)
        tuned = training.fine_tune(base, encoder, texts, intents, annotations, config)
        for figures in tuned.history:
            run.log_metrics(
                {key: value for key, value in figures.items() if key != "epoch"}, step=int(figures["epoch"])
            )

        name = self.component_config["triton_model_name"]
        live = TritonSettings.load().model_repository
        version = repository.next_version(live, name)
        gate_texts, data = export.gate_data(tuned.validation, len(texts))
        with self._model_storage.write_to(self._resource) as directory:
            encoder.save(directory / ENCODER_DIR)
            gate = export.export_version(
                tuned.model,
                encoder,
                tuned.labels,
                repository.version_dir(directory / "triton", name, version),
                [texts[i] for i in gate_texts],
                [intents[i] for i in gate_texts],
                [annotations[i] for i in gate_texts],
                data,
            )
            repository.finish_version(directory / "triton", name, version, tuned.labels)
            meta = {"name": name, "version": version, "format": MODEL_FORMAT}
            (directory / META_FILE).write_text(json.dumps(meta, indent=2))
            repository.install_version(directory / "triton", live, name, version)
            run.write_reference(directory)
        run.set_tags({tracking.TAG_TRITON_VERSION: str(version)})
        run.log_metrics(
            {f"gate_{graph}_{key}": value for graph in ("fp32", "int8") for key, value in getattr(gate, graph).items()}
        )
        if tuned.labels.out_of_scope_threshold is not None:
            run.log_metrics({"out_of_scope_threshold": tuned.labels.out_of_scope_threshold})
        logger.info("Fine-tuned %s as Triton version %d in %s", name, version, live)

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
        """Install the stored version into the live repository and connect to Triton."""
        meta = json.loads((directory / META_FILE).read_text())
        if meta.get("format") != MODEL_FORMAT:  # two Triton models, or a graph without the out-of-scope score
            raise ValueError("it was trained by an older version of this component; retrain it with `rasa train`")
        name, version = meta["name"], meta["version"]
        encoder = TextEncoder.load(directory / ENCODER_DIR)
        settings = TritonSettings.load()
        repository.install_version(directory / "triton", settings.model_repository, name, version)
        client = TritonNLUClient(settings.url, settings.timeout_s, settings.api_key)
        model = ServedModel(name, version, repository.read_labels(directory / "triton", name, version))
        _make_ready(client, model)
        return cls(config, model_storage, resource, Parser(encoder, client, model, config["ranking_length"]))

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

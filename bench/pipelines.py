"""The two pipelines compared, as Rasa configs, and their timed NLU-only training.

- ours: the repo's config.yml pipeline (BlankSpacyTokenizer + BertTritonNLU) without
  FallbackClassifier, its hyper-parameters as in config.yml (epochs overridable);
- diet: the pipeline `rasa init` trains with (rasa's default_config.yml) without
  ResponseSelector (no responses here) and FallbackClassifier, DIET epochs overridable;
- keyword: a whitespace tokenizer and Rasa's KeywordIntentClassifier, next to no NLU at all:
  its /model/parse latency is Rasa's own overhead.
Neither has a fallback, so intent accuracy is raw.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

import yaml

OURS, DIET, KEYWORD = "ours", "diet", "keyword"
PIPELINES = (OURS, DIET, KEYWORD)
# DIET's epochs in the bench: half of the 100 that `rasa init`'s config gives it, so that the whole run
# fits 60 minutes on 2 cores (at 100 it took 39 of the 78 minutes); the report says so.
DIET_EPOCHS = 50
OUR_COMPONENT = "nlu.component.BertTritonNLU"
_DROPPED = {"FallbackClassifier", "ResponseSelector"}


@dataclass(frozen=True)
class TrainedModel:
    """A Rasa model archive and the wall time `train_nlu` took to make it."""

    path: Path
    train_time_s: float


def ours_config(repo_config: Path, triton_model_name: str, epochs: Optional[int]) -> Dict[str, Any]:
    """config.yml's NLU pipeline, minus the fallback, serving under `triton_model_name`."""
    config = yaml.safe_load(repo_config.read_text())
    pipeline: List[Dict[str, Any]] = [dict(c) for c in config["pipeline"] if _short(c["name"]) not in _DROPPED]
    ours = [c for c in pipeline if c["name"] == OUR_COMPONENT]
    if not ours:
        raise ValueError(f"{repo_config} has no {OUR_COMPONENT} in its pipeline")
    for component in ours:
        component["triton_model_name"] = triton_model_name  # one Triton model per dataset
        if epochs is not None:
            component["epochs"] = epochs
    return _config(config.get("language", "en"), pipeline)


def diet_config(epochs: int, seed: int) -> Dict[str, Any]:
    """Rasa 3.6's default NLU pipeline, as `rasa init` trains it, without fallback and responses."""
    return _config(
        "en",
        [
            {"name": "WhitespaceTokenizer"},
            {"name": "RegexFeaturizer"},
            {"name": "LexicalSyntacticFeaturizer"},
            {"name": "CountVectorsFeaturizer"},
            {"name": "CountVectorsFeaturizer", "analyzer": "char_wb", "min_ngram": 1, "max_ngram": 4},
            {"name": "DIETClassifier", "epochs": epochs, "constrain_similarities": True, "random_seed": seed},
            {"name": "EntitySynonymMapper"},
        ],
    )


def keyword_config() -> Dict[str, Any]:
    """The cheapest pipeline Rasa runs: what /model/parse costs before any real NLU."""
    return _config("en", [{"name": "WhitespaceTokenizer"}, {"name": "KeywordIntentClassifier"}])


def train(config: Dict[str, Any], train_file: Path, work_dir: Path, name: str) -> TrainedModel:
    """Train an NLU-only Rasa model from `config` on `train_file`; time the whole of it."""
    from rasa.model_training import train_nlu  # imports TensorFlow: only when training

    config_file = work_dir / f"{name}-config.yml"
    config_file.write_text(yaml.safe_dump(config, sort_keys=False))
    start = time.perf_counter()
    model = train_nlu(str(config_file), str(train_file), str(work_dir / "models"), fixed_model_name=name)
    elapsed = time.perf_counter() - start
    if not model:
        raise RuntimeError(f"rasa train_nlu made no model for {name} (see the log above)")
    return TrainedModel(Path(model), elapsed)


def _config(language: str, pipeline: List[Dict[str, Any]]) -> Dict[str, Any]:
    return {"recipe": "default.v1", "assistant_id": "bench", "language": language, "pipeline": pipeline, "policies": []}


def _short(name: str) -> str:
    return name.rsplit(".", 1)[-1]

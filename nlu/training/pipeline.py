"""The component's one training call: examples and config.yml's settings in, a stored model out.

Fine-tunes (nlu.training.fine_tuning), exports the graphs behind the INT8 quality gate
(nlu.training.export), writes the stored model (nlu.stored_model) as the next Triton version and
installs it into the live repository, all tracked as one MLflow run (nlu.training.tracking).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, List, Sequence

from nlu import stored_model
from nlu.encoding import EncodingSettings
from nlu.settings import TritonSettings
from nlu.stored_model import StoredModel
from nlu.training import export, tracking
from nlu.training.base_model import load_encoder
from nlu.training.fine_tuning import fine_tune
from nlu.training.hyperparameters import FineTuneConfig
from nlu.triton import repository

logger = logging.getLogger(__name__)


def train(
    config: Dict[str, Any],
    texts: Sequence[str],
    intents: Sequence[str],
    annotations: Sequence[List[Dict[str, Any]]],
    directory: Path,
) -> StoredModel:
    """Fine-tune on the examples with the component's `config`; store the result in `directory`.

    `config` holds the component's settings (its get_default_config merged with config.yml): the
    base model, the Triton model's name, and the encoding and fine-tuning settings.
    """
    base, name = config["model_name_or_path"], config["triton_model_name"]
    encoding, hyperparameters = (
        EncodingSettings.from_component_config(config),
        FineTuneConfig.from_component_config(config),
    )
    with tracking.track("nlu-fine-tuning", name) as run:
        run.log_params(config)
        run.set_tags(
            {
                tracking.TAG_BASE_MODEL: base,
                tracking.TAG_DATA_FINGERPRINT: tracking.data_fingerprint(texts, intents, annotations),
                tracking.TAG_TRITON_MODEL: name,
            }
        )
        encoder = load_encoder(base, encoding)
        tuned = fine_tune(base, encoder, texts, intents, annotations, hyperparameters)
        for figures in tuned.history:
            run.log_metrics({k: v for k, v in figures.items() if k != "epoch"}, step=int(figures["epoch"]))

        live = TritonSettings.load().model_repository
        stored = StoredModel(directory, name, repository.next_version(live, name))
        gate = export.export_version(tuned, encoder, stored.version_dir, texts, intents, annotations)
        stored_model.write(stored, encoder, tuned.labels)
        repository.install_version(stored.triton_dir, live, name, stored.version)
        run.write_reference(directory)

        run.set_tags({tracking.TAG_TRITON_VERSION: str(stored.version)})
        run.log_metrics({f"gate_{graph}_{k}": v for graph in ("fp32", "int8") for k, v in getattr(gate, graph).items()})
        if tuned.labels.out_of_scope_threshold is not None:
            run.log_metrics({"out_of_scope_threshold": tuned.labels.out_of_scope_threshold})
    logger.info("Fine-tuned %s as Triton version %d in %s", name, stored.version, live)
    return stored

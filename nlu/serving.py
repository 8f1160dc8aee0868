"""The component's one loading call: a stored model in, a Parser that Triton answers out.

Installs the stored version into the live model repository (Triton serves it from there), connects
to Triton and has it load the version. Triton being down is no error here: the parser's requests
fail until it is up, and the component answers those messages with `nlu_fallback`.
"""

from __future__ import annotations

import logging
from pathlib import Path

from rasa.shared.constants import DEFAULT_NLU_FALLBACK_INTENT_NAME as FALLBACK_INTENT

from nlu import stored_model
from nlu.parser import Parser, ServedModel
from nlu.settings import TritonSettings
from nlu.triton import repository
from nlu.triton.client import TritonNLUClient, TritonUnavailable

logger = logging.getLogger(__name__)


def load(directory: Path, ranking_length: int) -> Parser:
    """The parser of the stored model in `directory`, its version installed where Triton serves it."""
    stored = stored_model.read(directory)
    settings = TritonSettings.load()
    repository.install_version(stored.triton_dir, settings.model_repository, stored.name, stored.version)
    client = TritonNLUClient(settings.url, settings.timeout_s, settings.api_key)
    model = ServedModel(stored.name, stored.version, stored.labels())
    _make_ready(client, model, settings)
    return Parser(stored.encoder(), client, model, ranking_length)


def _make_ready(client: TritonNLUClient, model: ServedModel, settings: TritonSettings) -> None:
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
            settings.model_repository,
        )

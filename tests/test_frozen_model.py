"""The loaded model kept out of the garbage collector (bot/rasa_patches/frozen_model.py), on the suite's
trained bot: its objects are frozen once loaded, and a model that a new one replaces is freed."""

from __future__ import annotations

import json
import textwrap

import pytest

from tests.conftest import run_with_trained_bot

pytestmark = pytest.mark.slow

# Its own process, as in `rasa run`: pytest's heap stays as it is.
LOAD_TWICE = textwrap.dedent(
    """
    import gc, json, sys
    import bot.channels  # what `rasa run` imports for credentials.yml's channels
    from rasa.core.agent import Agent

    agent, counts = Agent(), []
    for _ in range(2):
        agent.load_model(sys.argv[1])
        counts.append({"frozen": gc.get_freeze_count(), "young": sum(gc.get_count())})
    print(json.dumps(counts))
    """
)


def test_a_loaded_model_is_frozen_and_the_model_it_replaces_is_freed(trained_bot, triton) -> None:
    first, second = json.loads(run_with_trained_bot(trained_bot, triton, LOAD_TWICE))
    assert first["frozen"] > 100_000  # TensorFlow, the policies, the domain: out of the collector's walks
    assert first["young"] < 1_000 and second["young"] < 1_000  # nothing left for a full collection to walk
    # The first model's objects were unfrozen and collected, not kept beside the second's: on the
    # suite's bot 1.05 times the first count, and 1.13 times when the first model stays frozen.
    assert second["frozen"] < 1.09 * first["frozen"]

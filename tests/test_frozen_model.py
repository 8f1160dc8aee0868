"""The loaded model kept out of the garbage collector (bot/channels/frozen_model.py), on the suite's
trained bot: its objects are frozen once loaded, and a model that a new one replaces is freed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

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
    result = subprocess.run(
        [sys.executable, "-c", LOAD_TWICE, str(trained_bot.model)],
        cwd=trained_bot.project,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "TRITON_URL": triton.url},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    first, second = json.loads(result.stdout.strip().splitlines()[-1])
    assert first["frozen"] > 100_000  # TensorFlow, the policies, the domain: out of the collector's walks
    assert first["young"] < 1_000 and second["young"] < 1_000  # nothing left for a full collection to walk
    # The first model's objects were unfrozen and collected, not kept beside the second's: on the
    # suite's bot 1.05 times the first count, and 1.13 times when the first model stays frozen.
    assert second["frozen"] < 1.09 * first["frozen"]

"""The prediction graph run without dask and without the policies a certain rule overrules
(bot/rasa_patches/graph_runner.py) predicts what Rasa predicts: the suite's trained bot parses the load
test's conversation and predicts its actions, once in a process that imports the channels (as
`rasa run` does) and once in a process of plain Rasa, and every prediction is compared."""

from __future__ import annotations

import json
import textwrap
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from loadtest.script import script
from tests.conftest import run_with_trained_bot

pytestmark = pytest.mark.slow

# Its own process, as in `rasa run`: with ours, bot.channels is imported before the model is loaded.
PREDICT = textwrap.dedent(
    """
    import asyncio, json, sys
    if sys.argv[2] == "ours":
        import bot.channels
    from rasa.core.agent import Agent
    from rasa.core.policies.ted_policy import TEDPolicy
    from rasa.shared.core.events import ActionExecuted, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    ted_runs = 0
    ted_predict = TEDPolicy.predict_action_probabilities

    def counted(*args, **kwargs):
        global ted_runs
        ted_runs += 1
        return ted_predict(*args, **kwargs)

    TEDPolicy.predict_action_probabilities = counted

    async def main():
        agent = Agent.load(sys.argv[1])
        tracker = DialogueStateTracker("compare", agent.domain.slots)
        tracker.update(ActionExecuted("action_listen"))
        turns = []
        for text in json.loads(sys.argv[3]):
            parse = await agent.parse_message(text)
            tracker.update(UserUttered(text, parse["intent"], parse["entities"], parse))
            for _ in range(4):  # the actions up to the next action_listen, none of them run
                prediction = agent.processor._predict_next_with_tracker(tracker)  # what `rasa run` calls
                action = agent.domain.action_names_or_texts[prediction.max_confidence_index]
                turns.append({
                    "parse": parse,
                    "action": action,
                    "policy": prediction.policy_name,
                    "probabilities": prediction.probabilities,
                    "flags": [prediction.is_end_to_end_prediction, prediction.is_no_user_prediction],
                    "events": [{k: v for k, v in e.as_dict().items() if k != "timestamp"} for e in prediction.events],
                })
                tracker.update(ActionExecuted(action, prediction.policy_name, prediction.max_confidence))
                if action == "action_listen":
                    break
        print(json.dumps({"runner": type(agent.processor.graph_runner).__name__, "ted_runs": ted_runs, "turns": turns}))

    asyncio.run(main())
    """
)


def predict(trained_bot, triton, mode: str) -> dict:
    return json.loads(run_with_trained_bot(trained_bot, triton, PREDICT, mode, json.dumps(script(20))))


def test_the_prediction_graph_without_dask_and_overruled_policies_gives_rasas_predictions(trained_bot, triton):
    with ThreadPoolExecutor(2) as pool:  # two processes: most of each is loading, which overlaps
        rasa, ours = pool.map(lambda mode: predict(trained_bot, triton, mode), ("rasa", "ours"))
    assert (rasa["runner"], ours["runner"]) == ("DaskGraphRunner", "SequentialGraphRunner")
    assert len(ours["turns"]) == len(rasa["turns"]) >= 20
    for theirs, mine in zip(rasa["turns"], ours["turns"]):
        assert mine["parse"] == theirs["parse"]
        assert (mine["action"], mine["policy"], mine["flags"], mine["events"]) == (
            theirs["action"],
            theirs["policy"],
            theirs["flags"],
            theirs["events"],
        )
        np.testing.assert_allclose(mine["probabilities"], theirs["probabilities"], rtol=1e-5, atol=1e-6)
    # Both ways of deciding were compared: turns a rule decided (TED not run for most of them) and
    # turns TED decided.
    winners = [turn["policy"] for turn in ours["turns"]]
    assert any("RulePolicy" in winner for winner in winners) and any("TEDPolicy" in winner for winner in winners)
    assert rasa["ted_runs"] == len(rasa["turns"])
    assert ours["ted_runs"] < rasa["ted_runs"] / 2

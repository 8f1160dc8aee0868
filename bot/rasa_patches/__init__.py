"""The bot's changes to Rasa's behaviour, each replacing one Rasa function, all installed by `install()`.

Rasa offers no hook for these, so each module here replaces a function of Rasa 3.6.21 in the
process, and says in its docstring why. `install()` is called from one place: `bot/channels`, which
Rasa imports in every `rasa run` of the bot (credentials.yml names its channels) before it loads the
model. `PATCHES` records what each one replaces and the SHA-256 of that Rasa source as it was read
when the patch was written: tests/test_rasa_patches.py fails when a Rasa upgrade changes one, so
that the patch is read again against the new code instead of being silently dropped or misapplied.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Dict, Tuple

from bot.rasa_patches import action_failures, action_results, event_classes, frozen_model, graph_runner

RASA_VERSION = "3.6.21"


@dataclass(frozen=True)
class Patch:
    """A module whose `install()` replaces Rasa code; `replaces` maps each Rasa function it replaces or
    relies on ("module:Qualified.name") to the first 16 hex digits of its source's SHA-256."""

    module: ModuleType
    replaces: Dict[str, str]


PATCHES: Tuple[Patch, ...] = (
    # An apology instead of silence when a custom action fails.
    Patch(action_failures, {"rasa.core.actions.action:RemoteAction.run": "b530fc5a6789c82f"}),
    # The action server's answers checked against a schema compiled once.
    Patch(action_results, {"rasa.core.actions.action:RemoteAction._validate_action_result": "24da0f6bdeb2d44f"}),
    # An event's class found by a table.
    Patch(event_classes, {"rasa.shared.core.events:Event.resolve_by_type": "ffabe9999fc8f7f3"}),
    # The loaded model frozen out of the garbage collector's full walks.
    Patch(frozen_model, {"rasa.core.agent:Agent.load_model": "dc0e0244f8546a6d"}),
    # The prediction graph without dask: _load_model takes the runner class from the processor's module.
    Patch(
        graph_runner,
        {
            "rasa.core.processor:MessageProcessor._load_model": "dc5cda8c01f32977",
            "rasa.engine.runner.dask:DaskGraphRunner": "baadaf6063fe4d22",
        },
    ),
)


def install() -> None:
    """Every patch, in this process (again: no change)."""
    for patch in PATCHES:
        patch.module.install()

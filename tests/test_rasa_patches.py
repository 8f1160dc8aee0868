"""The bot's patches of Rasa (bot/rasa_patches): each is installed by the one call in bot/channels,
and each still patches the Rasa code it was written against. A Rasa upgrade that changes a replaced
function fails here, naming the patch to read again, rather than dropping or misapplying it silently."""

from __future__ import annotations

import ast
import hashlib
import importlib
import inspect
from typing import List, Tuple

import pytest
import rasa

import bot.channels  # noqa: F401 - installs the patches, as credentials.yml's channels do in `rasa run`
from bot import rasa_patches

REPLACED: List[Tuple[str, str, str]] = [
    (patch.module.__name__, target, digest)
    for patch in rasa_patches.PATCHES
    for target, digest in patch.replaces.items()
]


def rasa_source(target: str) -> str:
    """The source of "module:Qualified.name" as the installed Rasa's file has it (patched or not)."""
    module_name, qualified = target.split(":")
    path = inspect.getsourcefile(importlib.import_module(module_name))
    assert path, f"{module_name} has no source file"
    with open(path) as file:
        text = file.read()
    node: ast.AST = ast.parse(text)
    for name in qualified.split("."):
        node = next(
            child
            for child in ast.iter_child_nodes(node)
            if isinstance(child, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and child.name == name
        )
    return ast.get_source_segment(text, node) or ""


def test_the_patches_were_written_for_the_installed_rasa() -> None:
    assert rasa.__version__ == rasa_patches.RASA_VERSION, (
        f"Rasa {rasa.__version__} is installed, the patches were written for {rasa_patches.RASA_VERSION}: "
        "read each module of bot/rasa_patches against the new Rasa, then update RASA_VERSION"
    )


@pytest.mark.parametrize("patch, target, digest", REPLACED, ids=[target for _, target, _ in REPLACED])
def test_each_replaced_rasa_function_is_the_one_the_patch_was_written_for(patch: str, target: str, digest: str) -> None:
    found = hashlib.sha256(rasa_source(target).encode()).hexdigest()[:16]
    assert found == digest, (
        f"Rasa's {target} changed: read {patch} against the new code, then record its digest {found} "
        "in bot/rasa_patches/__init__.py"
    )


def test_the_channels_install_every_patch_once() -> None:
    from rasa.core import processor
    from rasa.core.actions.action import RemoteAction
    from rasa.core.agent import Agent
    from rasa.shared.core.events import Event

    from bot.rasa_patches import action_failures, action_results, event_classes, frozen_model, graph_runner

    assert getattr(RemoteAction.run, "answers_failures", False), action_failures.__name__
    assert RemoteAction._validate_action_result is action_results.validate_action_result
    assert Event.resolve_by_type is event_classes.resolve_by_type
    assert Agent.load_model is frozen_model.load_model
    assert processor.DaskGraphRunner is graph_runner.SequentialGraphRunner
    run = RemoteAction.run
    rasa_patches.install()  # again: nothing changes (no wrapper around the wrapper)
    assert RemoteAction.run is run

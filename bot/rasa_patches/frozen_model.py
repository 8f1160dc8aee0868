"""The loaded model kept out of Python's garbage collector, so that a Rasa process never stalls for it.

Once its model is loaded, a Rasa process holds about a million objects (TensorFlow's graph, the
policies, the domain). Python's full collection walks every one of them: 0.6 s on two cores, during
which the process answers nobody. Those objects live as long as the model, so after each load (at
start, and each model the model server or remote storage brings) they are collected once and
frozen: later collections walk only what came after. The model a new one replaces is unfrozen
first, so its garbage is still freed.
"""

from __future__ import annotations

import functools
import gc
from typing import Any

from rasa.core.agent import Agent

_load_model = Agent.load_model  # Rasa's own


@functools.wraps(_load_model)
def load_model(self: Agent, *args: Any, **kwargs: Any) -> None:
    """Agent.load_model, then the heap collected once and frozen."""
    gc.unfreeze()  # the model being replaced becomes collectable again
    _load_model(self, *args, **kwargs)
    gc.collect()
    gc.freeze()


def install() -> None:
    """Replace Agent.load_model (once per process)."""
    Agent.load_model = load_model

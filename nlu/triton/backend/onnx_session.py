"""ONNX Runtime sessions of the joint graph, set up one way wherever it runs on a CPU: Triton's
backend (installed beside its model.py), the export's quality gate, `python -m nlu.explain` and the
bench. Imports nothing but onnxruntime (and that only when a session is made: the serving contract
takes the file names from here), because inside Triton the `nlu` package is not installed.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Callable, List, Sequence

if TYPE_CHECKING:
    import onnxruntime as ort

FP32_FILE = "model.onnx"  # the serving contract's graph files (nlu/triton/contract.py takes them from here)
INT8_FILE = "model.int8.onnx"


def served_graph(version_dir: str) -> str:
    """The graph a CPU serves from a version directory: the INT8 copy when training kept one
    (it passed the quality gate), else the fp32 graph."""
    int8 = os.path.join(version_dir, INT8_FILE)
    return int8 if os.path.exists(int8) else os.path.join(version_dir, FP32_FILE)


def options(threads: int) -> ort.SessionOptions:
    """All graph optimisations, operators one after the other, `threads` threads inside each, and no
    spinning between runs (a spinning thread steals the core Rasa needs)."""
    import onnxruntime as ort

    settings = ort.SessionOptions()
    settings.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    settings.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    settings.inter_op_num_threads = 1
    settings.intra_op_num_threads = threads
    settings.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return settings


def session(graph: Any, threads: int, providers: Sequence[Any] = ("CPUExecutionProvider",)) -> ort.InferenceSession:
    """A session of `graph` (a path, or a serialised model) with `threads` CPU threads, on the CPU
    unless `providers` says otherwise (Triton's GPU instances)."""
    import onnxruntime as ort

    return ort.InferenceSession(graph, options(threads), providers=list(providers))


def runner(session: ort.InferenceSession, inputs: Sequence[str], outputs: Sequence[str]) -> Callable[..., List[Any]]:
    """`run(ids, mask)`: the session's outputs, in `outputs`' order, for the two inputs."""
    names = list(outputs)
    return lambda ids, mask: session.run(names, {inputs[0]: ids, inputs[1]: mask})

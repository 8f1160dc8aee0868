"""The fine-tuned joint model as ONNX: an fp32 export, and an INT8 copy behind a quality gate.

The fp32 graph is what a GPU serves (converted to fp16 there) and what TensorRT can build from;
the INT8 copy (per-channel dynamic quantization of the encoder's weight MatMuls; the two small
heads stay fp32) is what the CPU serves, but only when it loses at most MAX_DROP points of intent
accuracy and of entity F1 on held-out data.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

import onnx
import onnxruntime as ort
import torch
from onnxruntime.quantization import QuantType, quantize_dynamic

from nlu.encoding import TextEncoder
from nlu.stored_model import Labels
from nlu.training.fine_tuning import FineTuned
from nlu.training.joint_model import JointIntentTagger
from nlu.training.quality import parse_quality
from nlu.triton.backend import onnx_session
from nlu.triton.backend.onnx_session import runner
from nlu.triton.contract import FP32_FILE, INPUTS, INT8_FILE, OUTPUTS

logger = logging.getLogger(__name__)

OPSET = 17
MAX_DROP = 0.005  # 0.5 points of intent accuracy and of entity F1
# Below this many held-out texts one flipped answer outweighs MAX_DROP: the gate then judges
# on every labelled text instead (see gate_data).
MIN_GATE_TEXTS = 200
HEADS = ("/intent_head/", "/tag_head/")  # node-name prefixes of the heads in the exported graph


@dataclass(frozen=True)
class GateResult:
    """Quality of the fp32 and INT8 graphs on the same texts, and whether INT8 may serve."""

    texts: int
    data: str  # which texts: see gate_data
    fp32: Dict[str, float]
    int8: Dict[str, float]

    @property
    def passed(self) -> bool:
        return all(self.fp32[key] - self.int8[key] <= MAX_DROP + 1e-9 for key in self.fp32)

    def describe(self) -> str:
        return ", ".join(f"{key} {self.fp32[key]:.3f} (fp32) vs {self.int8[key]:.3f} (int8)" for key in self.fp32) + (
            f" on {self.texts} {self.data}"
        )


def export_onnx(model: JointIntentTagger, path: Path) -> Path:
    """The model as an ONNX graph with dynamic batch and sequence axes (legacy TorchScript exporter)."""
    vocabulary = model.encoder.config.vocab_size
    ids = torch.randint(5, min(vocabulary, 1000), (2, 16))
    dynamic = {
        INPUTS[0]: {0: "batch", 1: "pieces"},
        INPUTS[1]: {0: "batch", 1: "pieces"},
        OUTPUTS[0]: {0: "batch"},
        OUTPUTS[1]: {0: "batch", 1: "pieces"},
        OUTPUTS[2]: {0: "batch"},
    }
    with torch.no_grad():
        torch.onnx.export(
            model.eval(),
            (ids, torch.ones_like(ids)),
            str(path),
            input_names=list(INPUTS),
            output_names=list(OUTPUTS),
            dynamic_axes=dynamic,
            opset_version=OPSET,
            dynamo=False,
        )
    return path


def quantize_int8(source: Path, target: Path) -> Path:
    nodes = onnx.load(str(source), load_external_data=False).graph.node
    heads = [node.name for node in nodes if node.name.startswith(HEADS)]
    heads += [
        f"{name}_MatMul" for name in heads if name.endswith("Gemm")
    ]  # the quantizer splits a Gemm into this MatMul
    with _quiet_root_logger():
        quantize_dynamic(
            str(source),
            str(target),
            per_channel=True,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul"],
            nodes_to_exclude=heads,
        )
    return target


def gate_data(validation: Sequence[int], examples: int) -> Tuple[List[int], str]:
    """Indices of the texts the gate judges on, and what they are."""
    if len(validation) >= MIN_GATE_TEXTS:
        return list(validation), "validation slice"
    return list(range(examples)), f"labelled texts (the validation slice has {len(validation)} < {MIN_GATE_TEXTS})"


def quality(
    session: ort.InferenceSession, encoder: TextEncoder, labels: Labels, texts, intents, annotations
) -> Dict[str, float]:
    """Intent accuracy and exact-span entity F1 of an ONNX Runtime session, parsed as Triton's answers are."""
    return parse_quality(runner(session, INPUTS, OUTPUTS), encoder, labels, texts, intents, annotations)


def session(path: Path) -> ort.InferenceSession:
    """A CPU session on as many threads as torch trains with, for judging a graph offline."""
    return onnx_session.session(str(path), torch.get_num_threads())


def quality_gate(
    fp32: Path, int8: Path, encoder: TextEncoder, labels: Labels, texts, intents, annotations, data: str
) -> GateResult:
    scores = {
        name: quality(session(path), encoder, labels, texts, intents, annotations)
        for name, path in (("fp32", fp32), ("int8", int8))
    }
    return GateResult(len(texts), data, scores["fp32"], scores["int8"])


def export_version(
    tuned: FineTuned,
    encoder: TextEncoder,
    directory: Path,
    texts: Sequence[str],
    intents: Sequence[str],
    annotations: Sequence[Sequence[Dict[str, Any]]],
) -> GateResult:
    """model.onnx in `directory`, and model.int8.onnx beside it when the gate lets INT8 serve;
    the gate judges on the texts gate_data picks from these labelled ones."""
    directory.mkdir(parents=True, exist_ok=True)
    fp32 = export_onnx(tuned.model, directory / FP32_FILE)
    int8 = quantize_int8(fp32, directory / INT8_FILE)
    chosen, data = gate_data(tuned.validation, len(texts))
    gate = quality_gate(
        fp32,
        int8,
        encoder,
        tuned.labels,
        [texts[i] for i in chosen],
        [intents[i] for i in chosen],
        [annotations[i] for i in chosen],
        data,
    )
    if gate.passed:
        logger.info("INT8 passed the quality gate (%s): the CPU serves INT8", gate.describe())
    else:
        int8.unlink()
        logger.warning("INT8 lost more than %.1f points (%s): the CPU serves fp32", MAX_DROP * 100, gate.describe())
    return gate


@contextlib.contextmanager
def _quiet_root_logger():
    """ONNX Runtime's quantizer logs every node to the root logger, which Rasa sets to INFO."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)

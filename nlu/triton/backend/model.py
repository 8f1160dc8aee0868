"""Triton Python-based backend `nlu_onnx`: the joint intent and entity graph under ONNX Runtime.

Installed once as <backend directory>/nlu_onnx/model.py and shared by every version of every
model whose config.pbtxt says `backend: "nlu_onnx"`; a version directory holds only the graphs
and labels. Imports nothing but numpy, onnxruntime (and onnx on a GPU) and Triton's utilities.

- CPU instance: model.int8.onnx when training left one (it passed the quality gate), else
  model.onnx; `cpu_threads` intra-op threads, no spinning (it steals the core Rasa needs).
- GPU instance with onnxruntime-gpu: model.onnx converted to fp16 at load time (inputs and
  outputs stay int64 and fp32) unless `gpu_precision` is "fp32".
"""

import json
import os
import sys

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # onnx_session.py is installed beside this file
from onnx_session import FP32_FILE, served_graph, session  # noqa: E402


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        parameters = {key: value["string_value"] for key, value in config.get("parameters", {}).items()}
        self.input_names = [tensor["name"] for tensor in config["input"]]
        self.output_names = [tensor["name"] for tensor in config["output"]]
        version = os.path.join(args["model_repository"], args["model_version"])
        on_gpu = args["model_instance_kind"] == "GPU"
        if on_gpu and "CUDAExecutionProvider" not in ort.get_available_providers():
            raise pb_utils.TritonModelException(
                "A GPU instance needs onnxruntime-gpu (CUDAExecutionProvider); install it, or set "
                "instance_group [{ kind: KIND_CPU }] in config.pbtxt"
            )
        if on_gpu:
            model = _gpu_graph(os.path.join(version, FP32_FILE), parameters.get("gpu_precision", "fp16"))
            cuda = ("CUDAExecutionProvider", {"device_id": int(args["model_instance_device_id"])})
            self.session = session(model, 1, providers=[cuda])
        else:
            model = served_graph(version)
            self.session = session(model, int(parameters.get("cpu_threads", "1")))
        if on_gpu and self.session.get_providers()[0] != "CUDAExecutionProvider":  # ORT falls back silently
            raise pb_utils.TritonModelException(
                f"ONNX Runtime could not use CUDA for {args['model_name']} (check the CUDA and cuDNN libraries "
                "onnxruntime-gpu needs); set instance_group [{ kind: KIND_CPU }] in config.pbtxt to serve on the CPU"
            )
        pb_utils.Logger.log_info(
            f"{args['model_name']} version {args['model_version']}: "
            f"{os.path.basename(model) if isinstance(model, str) else 'model.onnx as fp16'} on {self.session.get_providers()[0]}"
        )

    def execute(self, requests):
        """One run for all queued requests, padded to the longest among them."""
        ids = [pb_utils.get_input_tensor_by_name(r, self.input_names[0]).as_numpy() for r in requests]
        masks = [pb_utils.get_input_tensor_by_name(r, self.input_names[1]).as_numpy() for r in requests]
        length = max(batch.shape[1] for batch in ids)
        widen = lambda batch: np.pad(batch, ((0, 0), (0, length - batch.shape[1])))  # pad id only under mask 0
        feed = {
            self.input_names[0]: np.concatenate([widen(b) for b in ids]),
            self.input_names[1]: np.concatenate([widen(m) for m in masks]),
        }
        results = self.session.run(self.output_names, feed)
        responses, row = [], 0
        for batch in ids:
            rows = slice(row, row + batch.shape[0])
            # Per-piece outputs ([batch, pieces, ...]) go back at the request's own length.
            outputs = [
                pb_utils.Tensor(name, np.ascontiguousarray(out[rows, : batch.shape[1]] if out.ndim == 3 else out[rows]))
                for name, out in zip(self.output_names, results)
            ]
            responses.append(pb_utils.InferenceResponse(outputs))
            row += batch.shape[0]
        return responses


def _gpu_graph(path, precision):
    """The fp32 graph, or its fp16 conversion (serialized) with fp32 inputs and outputs kept."""
    if precision == "fp32":
        return path
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    return convert_float_to_float16(onnx.load(path), keep_io_types=True).SerializeToString()

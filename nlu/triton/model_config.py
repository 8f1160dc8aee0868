"""config.pbtxt of our models, built as Triton's `ModelConfig` protobuf rather than a template.

A config that someone edited in the live repository (more instances, other threads, the
response cache) is theirs: it is replaced only while it is still exactly what we last wrote,
which `config.pbtxt.sha256` beside it records.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as pb

from nlu.triton.contract import BACKEND, INPUTS, MAX_BATCH_SIZE, OUTPUTS

logger = logging.getLogger(__name__)

CONFIG_FILE = "config.pbtxt"
DIGEST_FILE = "config.pbtxt.sha256"
CPU_THREADS = 2  # measured on 2 cores at the Triton boundary: faster at concurrency 1, 4 and 8 (docs/benchmarks.md)


def model_config(name: str) -> pb.ModelConfig:
    """Every version served, batches of up to MAX_BATCH_SIZE windows, no queueing delay, answers cached.

    Support chats repeat themselves ("hi", "yes", "thanks"): Triton's response cache answers a
    repeated message without running the model (measured in docs/benchmarks.md).
    """
    config = pb.ModelConfig(
        name=name,
        backend=BACKEND,
        max_batch_size=MAX_BATCH_SIZE,
        version_policy=pb.ModelVersionPolicy(all=pb.ModelVersionPolicy.All()),
        input=[pb.ModelInput(name=n, data_type=pb.TYPE_INT64, dims=[-1]) for n in INPUTS],
        output=[
            pb.ModelOutput(name=OUTPUTS[0], data_type=pb.TYPE_FP32, dims=[-1]),
            pb.ModelOutput(name=OUTPUTS[1], data_type=pb.TYPE_FP32, dims=[-1, -1]),
            pb.ModelOutput(name=OUTPUTS[2], data_type=pb.TYPE_FP32, dims=[1]),
        ],
        # Requests that arrive while the instance is busy run together; none waits for company.
        dynamic_batching=pb.ModelDynamicBatching(max_queue_delay_microseconds=0),
        response_cache=pb.ModelResponseCache(enable=True),
    )
    config.parameters["cpu_threads"].string_value = str(CPU_THREADS)
    config.parameters["gpu_precision"].string_value = "fp16"
    return config


def config_text(config: pb.ModelConfig) -> str:
    return text_format.MessageToString(config)


def read_config(path: Path) -> pb.ModelConfig:
    """A config.pbtxt parsed; raises ValueError naming the file when it is not valid."""
    try:
        return text_format.Parse(path.read_text(), pb.ModelConfig())
    except text_format.ParseError as error:
        raise ValueError(f"{path} is not a valid Triton model config: {error}") from error


def write_config(model_dir: Path, config: pb.ModelConfig) -> bool:
    """Write config.pbtxt unless the one there was edited by hand; True when written."""
    path, digest_path = model_dir / CONFIG_FILE, model_dir / DIGEST_FILE
    text = config_text(config)
    if path.exists():
        current = path.read_text()
        if current == text:
            return False
        ours = digest_path.exists() and digest_path.read_text().strip() == _digest(current)
        if not ours:
            logger.warning("Kept %s: it was edited after it was written (delete it to get the default back)", path)
            return False
    model_dir.mkdir(parents=True, exist_ok=True)
    descriptor, staging = tempfile.mkstemp(prefix=f".{CONFIG_FILE}.", suffix=".partial", dir=model_dir)
    with os.fdopen(descriptor, "w") as file:  # each replica its own staging file; the last replace wins
        file.write(text)
    os.chmod(staging, 0o644)
    os.replace(staging, path)
    digest_path.write_text(_digest(text) + "\n")
    return True


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()

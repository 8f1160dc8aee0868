"""A small gRPC client for our Triton model: one persistent channel, bounded timeouts.

Every failure (server down, deadline passed, model or version missing) surfaces as
TritonUnavailable with a message that names the URL, the model and the version, so the
component can fall back politely and the log says what to fix.

Rasa parses one message at a time, so a Triton that hangs would make every waiting conversation
pay the full timeout in turn. After a failure the client first asks Triton whether it is live,
with a short deadline: a hung server then costs the next messages PROBE_TIMEOUT_S each, and the
first answer puts it back on the normal path.
"""

from __future__ import annotations

import logging
from typing import Optional, Tuple

import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from nlu.triton.contract import API_KEY_HEADER, INPUTS, OUTPUTS

logger = logging.getLogger(__name__)

# Reconnect quickly once Triton is back instead of gRPC's default backoff of up to two minutes.
_CHANNEL_ARGS = [
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 1000),
]


LOAD_TIMEOUT_S = 300.0
PROBE_TIMEOUT_S = 0.25  # a live Triton answers in about a millisecond
GRPC_API_KEY_HEADER = f"triton-grpc-protocol-{API_KEY_HEADER}"  # how Triton's gRPC server expects the restricted key


class TritonUnavailable(RuntimeError):
    """Triton could not answer for a model version."""


class TritonNLUClient:
    """Inference on the joint intent and entity model of one Rasa model."""

    def __init__(self, url: str, timeout_s: float, api_key: str = "") -> None:
        self.url = url
        self.timeout_s = timeout_s
        self._api_key = api_key
        self._failed = False  # the last request failed: probe before the next one
        self._client = grpcclient.InferenceServerClient(url=url, channel_args=_CHANNEL_ARGS)

    def problem(self, name: str, version: int) -> Optional[str]:
        """Why `name` version `version` cannot serve now, or None when it can."""
        try:
            if not self._client.is_server_live(client_timeout=self.timeout_s):
                return f"Triton at {self.url} is not live"
            if self._client.is_model_ready(name, str(version), client_timeout=self.timeout_s):
                return None
            return f"Triton at {self.url} has no ready version {version} of model '{name}'"
        except InferenceServerException as error:
            return f"Triton at {self.url} is unreachable ({_reason(error)})"

    def load(self, name: str) -> None:
        """Ask Triton (explicit model control) to (re)load a model with all its versions."""
        try:
            # Each version starts a Python stub and an ONNX Runtime session: loading takes far longer than inference.
            self._client.load_model(
                name, headers={GRPC_API_KEY_HEADER: self._api_key}, client_timeout=max(self.timeout_s, LOAD_TIMEOUT_S)
            )
        except InferenceServerException as error:
            hint = "" if self._api_key else " (TRITON_API_KEY is unset: set it to the key Triton was started with)"
            raise TritonUnavailable(
                f"Triton at {self.url} could not load model '{name}': {_reason(error)}{hint}"
            ) from error

    def infer(
        self, name: str, version: int, input_ids: np.ndarray, attention_mask: np.ndarray
    ) -> Tuple[np.ndarray, ...]:
        """Intent probabilities [windows, intents], tag probabilities [windows, pieces, tags] and
        out-of-scope scores [windows, 1], one request."""
        if self._failed and not self._live_within(PROBE_TIMEOUT_S):
            raise TritonUnavailable(
                f"Triton at {self.url} is still not answering (no health answer within "
                f"{PROBE_TIMEOUT_S} s after a failed request)"
            )
        inputs = []
        for input_name, array in zip(INPUTS, (input_ids, attention_mask)):
            tensor = grpcclient.InferInput(input_name, list(array.shape), "INT64")
            tensor.set_data_from_numpy(array)
            inputs.append(tensor)
        try:
            result = self._client.infer(
                name,
                inputs,
                model_version=str(version),
                outputs=[grpcclient.InferRequestedOutput(output) for output in OUTPUTS],
                client_timeout=self.timeout_s,
            )
        except InferenceServerException as error:
            self._failed = True
            raise TritonUnavailable(
                f"Triton at {self.url} did not answer for model '{name}' version {version}: {_reason(error)}"
            ) from error
        self._failed = False
        return tuple(result.as_numpy(output) for output in OUTPUTS)

    def _live_within(self, timeout_s: float) -> bool:
        try:
            return self._client.is_server_live(client_timeout=timeout_s)
        except InferenceServerException:
            return False

    def close(self) -> None:
        self._client.close()


def _reason(error: InferenceServerException) -> str:
    return error.message() or str(error.status())

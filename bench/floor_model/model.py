"""Triton Python-backend model that does nothing: the floor under our model's serving latency.

It takes the same inputs as our model and answers zeros of the same shapes, so the time a
client sees for it is what Triton, gRPC and a Python backend's stub cost with no inference.
Reads `intents` and `tags` (the output widths) from its config's parameters; imports only
numpy and Triton's utilities, as it runs in the backend's stub.
"""

import json

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        parameters = {key: value["string_value"] for key, value in config.get("parameters", {}).items()}
        self.input_name = config["input"][0]["name"]
        self.output_names = [tensor["name"] for tensor in config["output"]]
        self.intents, self.tags = int(parameters["intents"]), int(parameters["tags"])

    def execute(self, requests):
        responses = []
        for request in requests:
            batch, pieces = pb_utils.get_input_tensor_by_name(request, self.input_name).as_numpy().shape
            outputs = [
                pb_utils.Tensor(self.output_names[0], np.zeros((batch, self.intents), dtype=np.float32)),
                pb_utils.Tensor(self.output_names[1], np.zeros((batch, pieces, self.tags), dtype=np.float32)),
            ]
            responses.append(pb_utils.InferenceResponse(outputs))
        return responses

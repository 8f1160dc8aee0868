"""Triton Python-backend model: one fine-tuned transformers model, copied as each version's model.py.

Inputs are token ids and attention mask (tokenization stays in the client, which needs the
offsets for exact entity spans); the output is class probabilities, per text or per piece.
On a GPU instance the model runs in half precision unless the config's parameters say no.
"""

import json
import os

import numpy as np
import torch
import transformers
import triton_python_backend_utils as pb_utils
from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification

transformers.logging.disable_progress_bar()

MODEL_CLASSES = {"intent": AutoModelForSequenceClassification, "entities": AutoModelForTokenClassification}


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        parameters = {key: value["string_value"] for key, value in config.get("parameters", {}).items()}
        on_gpu = args["model_instance_kind"] == "GPU" and torch.cuda.is_available()
        self.device = torch.device(f"cuda:{args['model_instance_device_id']}" if on_gpu else "cpu")
        directory = os.path.join(args["model_repository"], args["model_version"], "hf")
        model = MODEL_CLASSES[parameters["task"]].from_pretrained(directory)
        if on_gpu and parameters.get("half_precision_on_gpu", "true") == "true":
            model = model.half()
        self.model = model.to(self.device).eval()
        self.pad_id = model.config.pad_token_id or 0

    def execute(self, requests):
        """One forward pass for all queued requests, padded to the longest among them."""
        ids = [pb_utils.get_input_tensor_by_name(r, "INPUT_IDS").as_numpy() for r in requests]
        masks = [pb_utils.get_input_tensor_by_name(r, "ATTENTION_MASK").as_numpy() for r in requests]
        length = max(batch.shape[1] for batch in ids)
        widen = lambda batch, fill: np.pad(batch, ((0, 0), (0, length - batch.shape[1])), constant_values=fill)
        input_ids = torch.from_numpy(np.concatenate([widen(b, self.pad_id) for b in ids])).to(self.device)
        attention = torch.from_numpy(np.concatenate([widen(b, 0) for b in masks])).to(self.device)
        with torch.inference_mode():
            probabilities = torch.softmax(self.model(input_ids=input_ids, attention_mask=attention).logits.float(), -1)
        probabilities = probabilities.cpu().numpy()
        responses, row = [], 0
        for batch in ids:
            part = probabilities[row : row + batch.shape[0]]
            if part.ndim == 3:
                part = part[:, : batch.shape[1]]
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("PROBABILITIES", np.ascontiguousarray(part))]))
            row += batch.shape[0]
        return responses

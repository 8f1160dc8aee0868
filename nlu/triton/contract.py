"""The serving contract between training, the model repository and the Triton backend.

A version directory holds the fp32 ONNX graph, the INT8 copy when it passed the quality gate,
and the labels of both heads. Every version of every model runs the one shared Python-based
backend `BACKEND` (nlu/triton/backend/model.py), so no model carries code.
"""

from nlu.triton.backend import onnx_session

BACKEND = "nlu_onnx"
INPUTS = ("INPUT_IDS", "ATTENTION_MASK")  # int64 [batch, pieces]
# fp32 [batch, intents], [batch, pieces, tags], [batch, 1] (the energy of the in-scope intent logits)
OUTPUTS = ("INTENT_PROBABILITIES", "TAG_PROBABILITIES", "OUT_OF_SCOPE_SCORE")
FP32_FILE, INT8_FILE = onnx_session.FP32_FILE, onnx_session.INT8_FILE  # the backend's, which cannot import this
LABELS_FILE = "labels.json"
FINGERPRINT_FILE = "fingerprint"
MAX_BATCH_SIZE = 64  # windows per request: the parser never sends more
API_KEY_HEADER = "triton-api-key"  # Triton's restricted APIs (load, unload) require it; only the component sends it
RESTRICTED_APIS = (
    "model-repository,model-config,shared-memory,statistics,trace,logging"  # all but health, metadata, inference
)

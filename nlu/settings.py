"""Where Triton is: the `triton:` section of endpoints.yml, overridable by environment variables.

Rasa hands no endpoints to NLU components, so the component reads the same file `rasa run`
reads: $RASA_ENDPOINTS, else ./endpoints.yml.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional

import yaml

DEFAULT_ENDPOINTS = "endpoints.yml"


@dataclass(frozen=True)
class TritonSettings:
    """Triton's gRPC address, the model repository it serves, and the per-request timeout."""

    url: str = "localhost:8001"
    model_repository: Path = Path("models/triton")
    timeout_s: float = 2.0
    http_port: int = 8000
    grpc_port: int = 8001
    metrics_port: int = 8002

    @classmethod
    def load(cls, endpoints: Optional[str] = None) -> "TritonSettings":
        """Settings from endpoints.yml, then TRITON_URL / TRITON_MODEL_REPOSITORY / TRITON_TIMEOUT."""
        path = Path(endpoints or os.environ.get("RASA_ENDPOINTS", DEFAULT_ENDPOINTS))
        section: Dict[str, Any] = {}
        if path.is_file():
            section = (yaml.safe_load(path.read_text()) or {}).get("triton") or {}
        url = os.environ.get("TRITON_URL", section.get("url", cls.url))
        return cls(
            url=url,
            model_repository=Path(os.environ.get("TRITON_MODEL_REPOSITORY", section.get("model_repository", cls.model_repository))),
            timeout_s=float(os.environ.get("TRITON_TIMEOUT", section.get("timeout", cls.timeout_s))),
            http_port=int(section.get("http_port", cls.http_port)),
            grpc_port=int(section.get("grpc_port", url.rsplit(":", 1)[-1])),
            metrics_port=int(section.get("metrics_port", cls.metrics_port)),
        )

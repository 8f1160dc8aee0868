"""Where Triton is: the `triton:` section of endpoints.yml, overridable by environment variables.

Rasa hands no endpoints to NLU components, so the component finds the file the Rasa command was
started with (`rasa run|train|shell|test ... --endpoints F`) by parsing the command line with
Rasa's own parser; outside the Rasa CLI it reads $RASA_ENDPOINTS, else ./endpoints.yml.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

import yaml
from rasa.shared.utils.io import read_yaml

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
    api_key: str = field(default="", repr=False)  # $TRITON_API_KEY: unlocks Triton's model-repository API

    @classmethod
    def load(cls, endpoints: Optional[str] = None) -> "TritonSettings":
        """Settings from endpoints.yml (${VARIABLES} substituted), then TRITON_URL / TRITON_MODEL_REPOSITORY / TRITON_TIMEOUT; the API
        key only from TRITON_API_KEY (a secret: never in a file Rasa users commit)."""
        path = Path(endpoints or endpoints_path())
        section = endpoints_section(path, "triton")
        url = os.environ.get("TRITON_URL", section.get("url", cls.url))
        return cls(
            url=url,
            model_repository=Path(
                os.environ.get("TRITON_MODEL_REPOSITORY", section.get("model_repository", cls.model_repository))
            ),
            timeout_s=float(os.environ.get("TRITON_TIMEOUT", section.get("timeout", cls.timeout_s))),
            http_port=int(section.get("http_port", cls.http_port)),
            grpc_port=int(section.get("grpc_port", url.rsplit(":", 1)[-1])),
            metrics_port=int(section.get("metrics_port", cls.metrics_port)),
            api_key=os.environ.get("TRITON_API_KEY", ""),
        )


def endpoints_section(path: Path, name: str) -> Dict[str, Any]:
    """Section `name` of an endpoints file ({} when there is no file or section), its ${VARIABLES}
    substituted by Rasa's YAML reader. That section alone: `rasa train` or `python -m bot report`
    must not need the secrets of the others (the action server's token)."""
    section = (yaml.safe_load(path.read_text()) or {}).get(name) if path.is_file() else None
    return read_yaml(yaml.safe_dump(section)) if section else {}


def endpoints_path(argv: Optional[List[str]] = None) -> str:
    """The endpoints file of this process: the one the Rasa CLI was given (or its default, the one
    Rasa itself reads then), else $RASA_ENDPOINTS, else ./endpoints.yml."""
    argv = sys.argv if argv is None else argv
    if argv and _is_rasa_cli(argv[0]):
        from rasa.__main__ import create_argument_parser

        # Rasa validated this command line before it loaded us, so parsing it again cannot fail.
        known, _ = create_argument_parser().parse_known_args(argv[1:])
        if getattr(known, "endpoints", None):
            return known.endpoints
    return os.environ.get("RASA_ENDPOINTS") or DEFAULT_ENDPOINTS


def _is_rasa_cli(program: str) -> bool:
    path = Path(program)
    return path.name == "rasa" or path.parts[-2:] == ("rasa", "__main__.py")

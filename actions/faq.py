"""The FAQ answers in actions/faq.yml, which a non-developer edits; read at every question."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional

import yaml

FAQ_FILE = Path(__file__).with_name("faq.yml")


def answers(path: Path = FAQ_FILE) -> Dict[str, str]:
    """Intent -> answer. A broken file is an error that names the file and what is wrong."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        raise ValueError(f"Cannot read the FAQ answers in {path}: {error}") from error
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ValueError(f"{path} must map each question kind (e.g. faq_shipping) to an answer text.")
    return {key: " ".join(value.split()) for key, value in data.items()}


def answer(intent: str, path: Path = FAQ_FILE) -> Optional[str]:
    return answers(path).get(intent)

"""Latency of POST /model/parse as a client sees it: sequential requests over one connection."""

from __future__ import annotations

import itertools
import time
from typing import List, Sequence

import httpx


def http_parse_latencies(
    base_url: str, texts: Sequence[str], requests: int, token: str, timeout_s: float = 30.0
) -> List[float]:
    """Milliseconds per request for `requests` parses cycling through `texts` (one untimed first);
    `token` is the server's RASA_AUTH_TOKEN."""
    timings: List[float] = []
    with httpx.Client(base_url=base_url, params={"token": token}, timeout=timeout_s) as client:
        client.post("/model/parse", json={"text": texts[0]}).raise_for_status()
        for text in itertools.islice(itertools.cycle(texts), requests):
            start = time.perf_counter()
            response = client.post("/model/parse", json={"text": text})
            timings.append((time.perf_counter() - start) * 1000.0)
            response.raise_for_status()
    return timings

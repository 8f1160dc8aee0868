"""Child processes of a bench run, via bot.supervisor: one Triton, one `rasa run` per model."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, Iterator

import httpx

from bot import secrets, services
from bot.supervisor import Service, ServiceFailed, Supervisor
from nlu.triton.contract import API_KEY_HEADER


@dataclass(frozen=True)
class TritonEndpoint:
    """Where the bench's Triton listens and which repository it serves."""

    grpc_url: str
    http_port: int
    repository: Path


@contextmanager
def triton_server(
    repository: Path, log_dir: Path, env: Dict[str, str], timeout_s: float = 300.0
) -> Iterator[TritonEndpoint]:
    """`python -m bot triton` on free ports serving `repository`; stopped on exit. `env` holds the
    secrets (bench_environment)."""
    http_port, grpc_port, metrics_port = services.free_ports(3)
    service = services.triton(http_port, grpc_port, metrics_port, repository=repository, env=env)
    with _running(service, log_dir, timeout_s):
        yield TritonEndpoint(f"localhost:{grpc_port}", http_port, repository)


@contextmanager
def rasa_server(model: Path, log_dir: Path, env: Dict[str, str], timeout_s: float = 600.0) -> Iterator[str]:
    """`rasa run --enable-api -m MODEL` on a free port; yields its base URL, stopped on exit."""
    (port,) = services.free_ports(1)
    service = services.rasa(
        port,
        env[secrets.RASA_AUTH_TOKEN],
        env["RASA_ENDPOINTS"],
        model=model,
        env=env,
        name=f"rasa-{model.stem.split('.')[0]}",
    )
    with _running(service, log_dir, timeout_s):
        yield f"http://localhost:{port}"


def unload_models(endpoint: TritonEndpoint, names: Iterable[str], api_key: str) -> None:
    """Ask Triton to unload models no longer benchmarked (frees their backend processes)."""
    for name in names:
        try:
            httpx.post(
                f"http://localhost:{endpoint.http_port}/v2/repository/models/{name}/unload",
                headers={API_KEY_HEADER: api_key},
                timeout=60.0,
            )
        except httpx.HTTPError:
            pass


@contextmanager
def _running(service: Service, log_dir: Path, timeout_s: float) -> Iterator[None]:
    supervisor = Supervisor(log_dir)
    try:
        try:
            supervisor.start(service, timeout_s=timeout_s)
        except ServiceFailed as error:
            raise ServiceFailed(
                f"{error}. Last lines of {service.log_path}:\n{supervisor.tail(service.name)}"
            ) from error
        yield
    finally:
        supervisor.stop()

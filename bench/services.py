"""Child processes of a bench run, via bot.supervisor: one Triton, one `rasa run` per model."""

from __future__ import annotations

import time
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


@dataclass(frozen=True)
class RasaServer:
    """A started `rasa run`: where it answers, and what starting it cost."""

    url: str
    start_s: float  # from the process's start until it answered: Python, Rasa, the model loaded
    rss_mb: float  # its resident memory then (MiB)


@contextmanager
def rasa_server(model: Path, log_dir: Path, env: Dict[str, str], timeout_s: float = 600.0) -> Iterator[RasaServer]:
    """`rasa run --enable-api -m MODEL` on a free port, stopped on exit."""
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
        yield RasaServer(f"http://localhost:{port}", time.monotonic() - service.started_at, _rss_mb(service))


def _rss_mb(service: Service) -> float:
    """VmRSS of the service's process (the `rasa` script runs Rasa in that very process)."""
    assert service.process is not None
    status = Path(f"/proc/{service.process.pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))) / 1024


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

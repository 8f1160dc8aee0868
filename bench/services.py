"""Child processes of a bench run, via bot.supervisor: one Triton, one `rasa run` per model."""

from __future__ import annotations

import socket
import sys
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, Iterator, List

import httpx

from bot.supervisor import Service, ServiceFailed, Supervisor


@dataclass(frozen=True)
class TritonEndpoint:
    """Where the bench's Triton listens and which repository it serves."""

    grpc_url: str
    http_port: int
    repository: Path


def free_ports(count: int) -> List[int]:
    """`count` distinct ports free right now (all held open together while choosing)."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for s in sockets:
            s.bind(("localhost", 0))
        return [s.getsockname()[1] for s in sockets]


@contextmanager
def triton_server(repository: Path, log_dir: Path, env: Dict[str, str], timeout_s: float = 300.0) -> Iterator[TritonEndpoint]:
    """`python -m bot triton` on free ports serving `repository`; stopped on exit."""
    http_port, grpc_port, metrics_port = free_ports(3)
    command = [
        sys.executable, "-m", "bot", "triton", "--model-repository", str(repository),
        "--http-port", str(http_port), "--grpc-port", str(grpc_port), "--metrics-port", str(metrics_port),
    ]
    service = Service("triton", command, f"http://localhost:{http_port}/v2/health/ready", env=env)
    with _running(service, log_dir, timeout_s):
        yield TritonEndpoint(f"localhost:{grpc_port}", http_port, repository)


@contextmanager
def rasa_server(model: Path, log_dir: Path, env: Dict[str, str], timeout_s: float = 600.0) -> Iterator[str]:
    """`rasa run --enable-api -m MODEL` on a free port; yields its base URL, stopped on exit."""
    (port,) = free_ports(1)
    rasa = str(Path(sys.executable).with_name("rasa"))
    command = [rasa, "run", "--enable-api", "-m", str(model), "--port", str(port), "--endpoints", env["RASA_ENDPOINTS"]]
    service = Service(f"rasa-{model.stem.split('.')[0]}", command, f"http://localhost:{port}/status", env=env)
    with _running(service, log_dir, timeout_s):
        yield f"http://localhost:{port}"


def unload_models(endpoint: TritonEndpoint, names: Iterable[str]) -> None:
    """Ask Triton to unload models no longer benchmarked (frees their backend processes)."""
    for name in names:
        try:
            httpx.post(f"http://localhost:{endpoint.http_port}/v2/repository/models/{name}/unload", timeout=60.0)
        except httpx.HTTPError:
            pass


@contextmanager
def _running(service: Service, log_dir: Path, timeout_s: float) -> Iterator[None]:
    supervisor = Supervisor(log_dir)
    try:
        try:
            supervisor.start(service, timeout_s=timeout_s)
        except ServiceFailed as error:
            raise ServiceFailed(f"{error}. Last lines of {service.log_path}:\n{supervisor.tail(service.name)}") from error
        yield
    finally:
        supervisor.stop()

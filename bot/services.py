"""How each of the bot's services starts: the one place `python -m bot run`, the bench and the
tests build their command lines, so that all of them run the same, locked-down services.

Every service binds to 127.0.0.1 unless given another host; Rasa's HTTP API takes the auth token,
its CORS allows only the widget's origin, and Triton restricts its model-repository API to the
key the NLU component sends (bot/secrets.py names them all).
"""

from __future__ import annotations

import socket
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from bot.supervisor import Service

LOCALHOST = "127.0.0.1"
PYTHON = sys.executable
RASA = str(Path(sys.executable).with_name("rasa"))
# The files of the bot's Rasa project: what a copy of it needs to train and run (the tests' copies, the load test's).
PROJECT_FILES = ("domain.yml", "config.yml", "credentials.yml", "endpoints.yml", "data", "actions")


def reachable(host: str) -> str:
    """The address a local client uses for a service bound to `host` (0.0.0.0 and :: mean all)."""
    return LOCALHOST if host in ("0.0.0.0", "::", "") else host


def free_ports(count: int) -> List[int]:
    """`count` distinct loopback ports free right now (held open together while choosing), for
    services started on ports nobody configured: the bench's and the tests'."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for s in sockets:
            s.bind((LOCALHOST, 0))
        return [s.getsockname()[1] for s in sockets]


def triton(
    http_port: int,
    grpc_port: int,
    metrics_port: int,
    repository: Optional[Path] = None,
    endpoints: Optional[str] = None,
    host: str = LOCALHOST,
    env: Optional[Dict[str, str]] = None,
    cwd: Optional[Path] = None,
    name: str = "triton",
) -> Service:
    """`python -m bot triton` (TRITON_API_KEY in `env` guards its model-repository API)."""
    command = (
        [PYTHON, "-m", "bot"]
        + (["--endpoints", endpoints] if endpoints else [])
        + [
            "triton",
            "--host",
            host,
            "--http-port",
            str(http_port),
            "--grpc-port",
            str(grpc_port),
            "--metrics-port",
            str(metrics_port),
        ]
    )
    if repository is not None:
        command += ["--model-repository", str(repository)]
    return Service(name, command, f"http://{reachable(host)}:{http_port}/v2/health/ready", env=env, cwd=cwd)


def actions(
    port: int,
    host: str = LOCALHOST,
    workers: int = 1,
    env: Optional[Dict[str, str]] = None,
    cwd: Optional[Path] = None,
    name: str = "actions",
) -> Service:
    """`python -m actions`: the action server, answering only calls with ACTION_SERVER_TOKEN."""
    command = [PYTHON, "-m", "actions", "--port", str(port), "--host", host, "--workers", str(workers)]
    return Service(name, command, f"http://{reachable(host)}:{port}/health", env=env, cwd=cwd)


def rasa(
    port: int,
    auth_token: str,
    endpoints: str = "endpoints.yml",
    credentials: str = "credentials.yml",
    model: Optional[Path] = None,
    host: str = LOCALHOST,
    cors: Sequence[str] = (),
    env: Optional[Dict[str, str]] = None,
    cwd: Optional[Path] = None,
    name: str = "rasa",
) -> Service:
    """`rasa run --enable-api` with the auth token; CORS for `cors` origins only (none by default)."""
    command = [
        RASA,
        "run",
        "--enable-api",
        f"--auth-token={auth_token}",
        "--interface",
        host,
        "--port",
        str(port),
        "--endpoints",
        endpoints,
        "--credentials",
        credentials,
    ]
    if model is not None:
        command += ["--model", str(model)]
    if cors:
        command += ["--cors", *cors]
    # /version answers without the token, and only once the model is loaded (Rasa loads it before serving).
    return Service(name, command, f"http://{reachable(host)}:{port}/version", env=env, cwd=cwd)


def widget(port: int, rasa_url: str, host: str = LOCALHOST, env: Optional[Dict[str, str]] = None) -> Service:
    """The chat widget and its demo page (`python -m bot widget`)."""
    command = [PYTHON, "-m", "bot", "widget", "--host", host, "--port", str(port), "--rasa-url", rasa_url]
    return Service("widget", command, f"http://{reachable(host)}:{port}/", env=env)


def widget_origins(port: int) -> Sequence[str]:
    """The origins a browser gives the widget's page on `port`: what Rasa's CORS allows."""
    return (f"http://localhost:{port}", f"http://{LOCALHOST}:{port}")


def telegram_poller(rasa_url: str, env: Optional[Dict[str, str]] = None) -> Service:
    """`python -m bot telegram`: long-polls Telegram and posts each update to Rasa's webhook."""
    return Service(
        "telegram", [PYTHON, "-m", "bot", "telegram", "--rasa-url", rasa_url], f"{rasa_url}/webhooks/telegram/", env=env
    )

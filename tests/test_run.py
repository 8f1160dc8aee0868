"""`python -m bot run` (what `make run` starts): no retraining when nothing changed, Triton,
actions and Rasa up, the banner says where to chat, and Ctrl-C leaves nothing running."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import yaml

from loadtest.stack import stop
from tests.conftest import RASA_TOKEN, copy_project, free_port


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_bot_run_serves_the_bot_and_ctrl_c_stops_everything(trained_bot, tmp_path):
    project = copy_project(trained_bot, tmp_path / "project")
    ports = {name: free_port() for name in ("rasa", "actions", "http", "grpc", "metrics", "widget")}
    endpoints = yaml.safe_load((project / "endpoints.yml").read_text())
    # A fresh, empty model repository: loading the Rasa model must install its own Triton versions.
    endpoints["triton"] = {
        "url": f"localhost:{ports['grpc']}",
        "model_repository": "models/triton",
        "http_port": ports["http"],
        "grpc_port": ports["grpc"],
        "metrics_port": ports["metrics"],
    }
    endpoints["action_endpoint"]["url"] = f"http://localhost:{ports['actions']}/webhook"
    # The settings come from the file named by --endpoints; ./endpoints.yml names a Triton where
    # nothing listens and another repository, so a service that read it instead would fail.
    (project / "production.yml").write_text(yaml.safe_dump(endpoints))
    endpoints["triton"] = {"url": f"localhost:{free_port()}", "model_repository": "elsewhere/triton"}
    (project / "endpoints.yml").write_text(yaml.safe_dump(endpoints))

    log = open(tmp_path / "run.log", "w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bot",
            "run",
            "--endpoints",
            "production.yml",
            "--port",
            str(ports["rasa"]),
            "--actions-port",
            str(ports["actions"]),
            "--widget-port",
            str(ports["widget"]),
        ],
        cwd=project,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, "RASA_TELEMETRY_ENABLED": "false"},
    )
    try:
        deadline = time.monotonic() + 600
        while "Press Ctrl-C" not in (tmp_path / "run.log").read_text() and process.poll() is None:
            assert time.monotonic() < deadline, (tmp_path / "run.log").read_text()[-3000:]
            time.sleep(1)
        output = (tmp_path / "run.log").read_text()
        assert process.poll() is None, output[-3000:]
        assert "Starting to train component" not in output
        assert f"http://localhost:{ports['rasa']}/webhooks/rest/webhook" in output
        assert f"Chat in a browser: http://localhost:{ports['widget']}" in output
        assert {log.name for log in (project / ".run").iterdir()} >= {
            "triton.log",
            "actions.log",
            "rasa.log",
            "widget.log",
        }
        assert "widget.js" in httpx.get(f"http://localhost:{ports['widget']}/", timeout=10).text

        result = httpx.post(
            f"http://localhost:{ports['rasa']}/model/parse",
            params={"token": RASA_TOKEN},
            json={"text": "where is my order 12345?"},
            timeout=30,
        ).json()
        assert result["intent"]["name"] == "order_status"
        assert [(e["value"], e["start"], e["end"]) for e in result["entities"] if e["entity"] == "order_id"] == [
            ("12345", 18, 23)
        ]
        assert (project / "models" / "triton" / "support_nlu" / "config.pbtxt").is_file()
        assert not (project / "elsewhere").exists()
        metrics = httpx.get(f"http://localhost:{ports['metrics']}/metrics", timeout=10).text
        assert "nv_inference_request_success" in metrics

        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in the terminal sends
        assert process.wait(timeout=60) == 0
    finally:  # a failed assertion must not leave the services running: Ctrl-C, SIGTERM, then SIGKILL
        stop(process)
        log.close()
    time.sleep(1)
    assert not [name for name, port in ports.items() if listening(port)]

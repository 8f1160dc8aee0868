"""Which endpoints file the component reads: the one the Rasa command was started with, and the
TRITON_* environment variables over its `triton:` section. The servers' half of this claim runs in
tests/test_bot.py and tests/test_run.py (a decoy ./endpoints.yml beside the file they are given)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from nlu.settings import TritonSettings, endpoints_path

RASA = "/env/bin/rasa"


@pytest.mark.parametrize(
    "argv, expected",
    [
        ([RASA, "run", "--enable-api", "--endpoints", "production.yml", "-m", "models"], "production.yml"),
        ([RASA, "train", "--endpoints=staging.yml"], "staging.yml"),
        ([RASA, "shell", "--endpoints", "production.yml", "--port", "5006"], "production.yml"),
        (["/lib/python3.10/site-packages/rasa/__main__.py", "run", "--endpoints", "production.yml"], "production.yml"),
        ([RASA, "run", "--enable-api"], "endpoints.yml"),  # Rasa's own default: the file Rasa reads too
    ],
)
def test_the_rasa_command_lines_endpoints_file_is_followed(argv, expected, monkeypatch):
    monkeypatch.setenv("RASA_ENDPOINTS", "ignored-under-the-rasa-cli.yml")
    assert endpoints_path(argv) == expected


def test_outside_the_rasa_cli_the_environment_names_the_file(monkeypatch):
    monkeypatch.delenv("RASA_ENDPOINTS", raising=False)
    assert endpoints_path(["/env/bin/python", "-m", "bench", "--endpoints", "not-rasa.yml"]) == "endpoints.yml"
    monkeypatch.setenv("RASA_ENDPOINTS", "production.yml")
    assert endpoints_path(["/env/bin/python", "-m", "bench"]) == "production.yml"


def test_environment_variables_override_the_triton_section(tmp_path, monkeypatch):
    endpoints = tmp_path / "production.yml"
    endpoints.write_text(
        yaml.safe_dump(
            {
                "triton": {
                    "url": "triton.internal:9001",
                    "timeout": 1.0,
                    "model_repository": "/srv/triton",
                    "metrics_port": 9002,
                }
            }
        )
    )
    for name in ("TRITON_URL", "TRITON_TIMEOUT", "TRITON_MODEL_REPOSITORY"):
        monkeypatch.delenv(name, raising=False)
    settings = TritonSettings.load(str(endpoints))
    assert (
        settings.url,
        settings.grpc_port,
        settings.timeout_s,
        str(settings.model_repository),
        settings.metrics_port,
    ) == ("triton.internal:9001", 9001, 1.0, "/srv/triton", 9002)
    monkeypatch.setenv("TRITON_URL", "localhost:8101")
    monkeypatch.setenv("TRITON_TIMEOUT", "4.5")
    settings = TritonSettings.load(str(endpoints))
    assert (settings.url, settings.timeout_s) == ("localhost:8101", 4.5)


def test_variables_in_the_triton_section_are_substituted_as_rasa_does(tmp_path, monkeypatch):
    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text("triton:\n  url: ${TRITON_HOST}:9001\n  model_repository: ${MODELS_DIR}/triton\n")
    monkeypatch.setenv("TRITON_HOST", "triton.internal")
    monkeypatch.setenv("MODELS_DIR", "/srv/models")
    for name in ("TRITON_URL", "TRITON_MODEL_REPOSITORY"):
        monkeypatch.delenv(name, raising=False)
    settings = TritonSettings.load(str(endpoints))
    assert (settings.url, settings.model_repository) == ("triton.internal:9001", Path("/srv/models/triton"))

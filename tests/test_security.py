"""The doors that must stay shut: Rasa's HTTP API without its token, Triton's model-repository API
without its key, services on other interfaces than loopback, and code inside a Rasa model archive."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import tarfile
from pathlib import Path

import httpx
import pytest

from bot import secrets
from nlu.triton import repository
from nlu.triton.client import TritonNLUClient, TritonUnavailable
from nlu.triton.contract import API_KEY_HEADER, FINGERPRINT_FILE, FP32_FILE, LABELS_FILE
from nlu.triton.model_config import CONFIG_FILE, read_config
from tests.conftest import copy_project, rasa_test_nlu
from tests.listeners import LOOPBACK, listening_addresses


def test_generated_secrets_are_kept_private_and_the_environment_wins(tmp_path, monkeypatch):
    for name in secrets.NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(secrets.RASA_AUTH_TOKEN, "from-the-environment")
    first = secrets.load(tmp_path)
    assert first[secrets.RASA_AUTH_TOKEN] == "from-the-environment"
    assert all(len(first[name]) >= 32 for name in (secrets.ACTION_SERVER_TOKEN, secrets.TRITON_API_KEY))
    kept = tmp_path / secrets.SECRETS_FILE
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert "from-the-environment" not in kept.read_text()  # a secret given is never written down
    assert secrets.load(tmp_path) == first  # a restart (or `make shell`) uses the same ones


def test_triton_listens_on_loopback_and_its_repository_api_needs_the_key(triton):
    for port in (triton.http_port, triton.grpc_port, triton.metrics_port):
        assert listening_addresses(port) and listening_addresses(port) <= LOOPBACK, port
    base = f"http://127.0.0.1:{triton.http_port}/v2"
    refused = httpx.post(f"{base}/repository/index", timeout=10)
    assert refused.status_code != 200 and API_KEY_HEADER in refused.text
    wrong = httpx.post(f"{base}/repository/models/anything/load", headers={API_KEY_HEADER: "guess"}, timeout=10)
    assert wrong.status_code != 200 and "restricted" in wrong.text
    assert (
        httpx.post(
            f"{base}/repository/index", headers={API_KEY_HEADER: os.environ[secrets.TRITON_API_KEY]}, timeout=10
        ).status_code
        == 200
    )
    assert httpx.get(f"{base}/health/ready", timeout=10).status_code == 200  # health and inference stay open
    # Over gRPC, as the component loads: refused without the key, past the check with it.
    with pytest.raises(TritonUnavailable, match="restricted"):
        TritonNLUClient(triton.url, 5.0).load("no_such_model")
    with pytest.raises(TritonUnavailable) as error:
        TritonNLUClient(triton.url, 5.0, os.environ[secrets.TRITON_API_KEY]).load("no_such_model")
    assert "restricted" not in str(error.value) and "no_such_model" in str(error.value)


def _version(tmp_path, extra: str = "") -> tuple:
    source = tmp_path / "archive"
    version = repository.version_dir(source, "support_nlu", 3)
    version.mkdir(parents=True)
    for name in (FP32_FILE, LABELS_FILE, FINGERPRINT_FILE):
        (version / name).write_text(name)
    (source / "support_nlu" / CONFIG_FILE).write_text('backend: "python"\nmax_batch_size: 8\n')
    if extra:
        (version / extra).write_text("import os; os.system('touch /tmp/pwned')\n")
    return source, tmp_path / "live"


def test_a_model_archive_installs_data_files_and_our_config_never_its_own(tmp_path):
    source, live = _version(tmp_path)
    installed = repository.install_version(source, live, "support_nlu", 3)
    assert sorted(p.name for p in installed.iterdir()) == sorted([FP32_FILE, LABELS_FILE, FINGERPRINT_FILE])
    config = read_config(live / "support_nlu" / CONFIG_FILE)
    assert config.backend == "nlu_onnx" and config.max_batch_size == 64  # the archive's "python" is ignored


@pytest.mark.parametrize("extra", ["model.py", "triton_python_backend_stub", "env.tar.gz"])
def test_a_model_archive_that_carries_code_is_refused(tmp_path, extra):
    source, live = _version(tmp_path, extra)
    with pytest.raises(repository.UnsafeModel, match=extra):
        repository.install_version(source, live, "support_nlu", 3)
    assert not (live / "support_nlu" / "3").exists()


def test_a_model_name_cannot_leave_the_repository(tmp_path):
    for name, version in (("../outside", 1), ("support_nlu/../../x", 1), ("support_nlu", "1/../../x"), ("ok", 0)):
        with pytest.raises(repository.UnsafeModel):
            repository.version_dir(tmp_path, name, version)


API_CALLS = [
    ("GET", "/status", None),
    ("GET", "/conversations/anyone/tracker", None),
    ("POST", "/conversations/anyone/tracker/events", {"event": "slot", "name": "email", "value": "x@example.com"}),
    ("POST", "/conversations/anyone/execute", {"name": "utter_greet"}),
    ("POST", "/model/parse", {"text": "hello"}),
    ("PUT", "/model", {"model_file": "/tmp/evil.tar.gz"}),
    ("POST", "/model/train", {}),
]


@pytest.mark.parametrize("method,path,body", API_CALLS, ids=[f"{m} {p}" for m, p, _ in API_CALLS])
def test_rasa_http_api_refuses_calls_without_the_token(bot_servers, method, path, body):
    for params in ({}, {"token": "guess"}):
        response = httpx.request(method, f"{bot_servers.rasa_url}{path}", params=params, json=body, timeout=30)
        assert response.status_code == 401, (params, response.text)


def test_rasa_http_api_answers_with_the_token_and_channels_stay_open(bot_servers):
    token = {"token": bot_servers.token}
    assert httpx.get(f"{bot_servers.rasa_url}/status", params=token, timeout=30).status_code == 200
    assert (
        httpx.post(f"{bot_servers.rasa_url}/model/parse", params=token, json={"text": "hi"}, timeout=30).status_code
        == 200
    )
    # People chat through the channels, which need no token.
    reply = httpx.post(
        f"{bot_servers.rasa_url}/webhooks/rest/webhook", json={"sender": "s", "message": "hi"}, timeout=60
    )
    assert reply.status_code == 200 and reply.json()
    rasa_port = int(bot_servers.rasa_url.rsplit(":", 1)[1])
    for port in (rasa_port, bot_servers.actions_port):
        assert listening_addresses(port) and listening_addresses(port) <= LOOPBACK, port


def test_the_action_server_refuses_anyone_but_rasa(bot_servers):
    url = f"http://127.0.0.1:{bot_servers.actions_port}"
    call = {"next_action": "action_human_handoff", "sender_id": "x", "tracker": {"sender_id": "x"}, "domain": {}}
    assert httpx.post(f"{url}/webhook", json=call, timeout=30).status_code == 401
    assert httpx.get(f"{url}/actions", timeout=30).status_code == 401
    assert httpx.get(f"{url}/health", timeout=30).status_code == 200


def test_a_crafted_model_archive_does_not_reach_triton(trained_bot, triton, tmp_path):
    """A Rasa model whose stored version carries a model.py: loading it fails with a clear error,
    and nothing of it enters the live repository."""
    project = copy_project(trained_bot, tmp_path / "project")
    unpacked = tmp_path / "unpacked"
    with tarfile.open(trained_bot.model) as archive:
        archive.extractall(unpacked)
    versions = [p for p in unpacked.rglob(FINGERPRINT_FILE)]
    assert len(versions) == 1
    version_dir = versions[0].parent
    meta = json.loads((version_dir.parent.parent.parent / "meta.json").read_text())
    meta["version"] = 999  # a version the live repository lacks, so the component would install it
    (version_dir.parent.parent.parent / "meta.json").write_text(json.dumps(meta))
    version_dir.rename(version_dir.with_name("999"))
    (version_dir.with_name("999") / "model.py").write_text("raise SystemExit('code from an archive ran')\n")
    crafted = project / "models" / "crafted.tar.gz"
    with tarfile.open(crafted, "w:gz") as archive:
        for path in sorted(unpacked.iterdir()):
            archive.add(path, arcname=path.name)
    sample = tmp_path / "sample.yml"
    sample.write_text('version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    - hello\n')
    with pytest.raises(AssertionError, match="may hold only"):
        rasa_test_nlu(sample, crafted, tmp_path / "results", cwd=project, timeout=300)
    assert not (triton.repository / meta["name"] / "999").exists()


def test_logs_hold_no_secret_and_no_sql_parameter(bot_servers, shop, fake_telegram):
    """Telegram traffic (the bot token is part of every Bot API URL), then an order question while the
    shop database is locked (the action's query fails with the customer's email as a bound parameter):
    the Rasa and action server logs show the failure, but no secret and no parameter."""
    from tests.fake_telegram_api import message_update
    from tests.test_telegram import post, replies

    chat = 424242
    assert post(bot_servers, message_update(fake_telegram.next_update_id(), chat, "hi")).status_code == 200
    assert replies(fake_telegram, chat)
    email = "jane.doe@example.com"  # order 12345's customer (actions/seed.yml)
    locked = sqlite3.connect(shop.removeprefix("sqlite:///"), timeout=30)
    try:
        locked.execute("BEGIN EXCLUSIVE")
        answers = []
        for text in ("where is my order 12345?", email):
            reply = httpx.post(
                f"{bot_servers.rasa_url}/webhooks/rest/webhook",
                json={"sender": "locked-shop", "message": text},
                timeout=120,
            )
            answers += [message.get("text", "") for message in reply.json()]
    finally:
        locked.rollback()
        locked.close()
    assert any("try again" in answer.lower() for answer in answers), answers
    logs = "\n".join(path.read_text(errors="replace") for path in Path(bot_servers.supervisor.log_dir).glob("*.log"))
    assert "locked" in logs  # the failure itself is logged
    for name, secret in [*((name, os.environ[name]) for name in secrets.NAMES), ("telegram", fake_telegram.token)]:
        assert secret not in logs, f"the {name} secret is in a log"
    assert email not in logs

"""The engines of the multi-replica stack (bot/engines/), each a real server from Debian's packages:
on loopback, and only with its password."""

from __future__ import annotations

import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest
import redis as redis_client
import sqlalchemy as sa

from bot.engines import haproxy, redis
from bot.engines.postgres import Postgres
from bot.supervisor import Supervisor
from tests.conftest import free_port


@pytest.fixture
def supervisor(tmp_path):
    started = Supervisor(tmp_path / "logs")
    yield started
    started.stop()


def test_haproxy_accepts_the_config_it_is_given(tmp_path):
    config = tmp_path / "haproxy.cfg"
    config.write_text(haproxy.config_text("127.0.0.1", free_port(), [free_port(), free_port()], tmp_path / "s.sock"))
    checked = subprocess.run([haproxy.executable(), "-c", "-f", str(config)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_redis_answers_only_with_its_password(tmp_path, supervisor):
    port = free_port()
    supervisor.start(redis.service(port, "s3cret-for-the-test", tmp_path / "redis"), timeout_s=30)
    config = tmp_path / "redis" / "redis.conf"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert "s3cret-for-the-test" not in " ".join(supervisor.services[0].command)
    with pytest.raises(redis_client.AuthenticationError):
        redis_client.Redis(host="127.0.0.1", port=port).ping()
    assert redis_client.Redis(host="127.0.0.1", port=port, password="s3cret-for-the-test").ping()


def test_postgres_keeps_its_data_and_wants_its_password(supervisor):
    port, base = free_port(), Path(tempfile.mkdtemp(prefix="postgres-"))  # pytest's tmp is closed to `postgres`
    server = Postgres(port, base, password="an0ther-secret", durable=False).init()
    supervisor.start(server.service(), timeout_s=60)
    url = server.database("conversations")
    assert server.database("conversations") == url, "creating it again is a no-op"
    with sa.create_engine(url).connect() as connection:
        assert connection.execute(sa.text("SELECT 1")).scalar() == 1
    with pytest.raises(sa.exc.OperationalError, match="password"):
        sa.create_engine(url.replace(":an0ther-secret", ":wrong")).connect()
    supervisor.stop()
    again = Postgres(port, base, password="an0ther-secret", durable=False).init()
    supervisor.start(again.service(), timeout_s=60)
    with sa.create_engine(url).connect() as connection:
        assert connection.execute(sa.text("SELECT 1")).scalar() == 1
    supervisor.stop()
    shutil.rmtree(base)


def test_the_replicas_log_store_is_the_projects_redacting_store():
    from bot import replicas
    from bot.conversation_log.store import RedactingSQLTrackerStore

    assert replicas.LOG_STORE_TYPE == f"{RedactingSQLTrackerStore.__module__}.{RedactingSQLTrackerStore.__name__}"

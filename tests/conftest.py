"""Shared fixtures: a real Triton server, real `rasa train` runs, real Rasa and action servers.

Everything runs in temporary copies of the project so the suite never touches models/ or the
live model repository, and every server it starts is stopped when the session ends.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import pytest
import yaml
from playwright.sync_api import Browser, sync_playwright

from bot import secrets, services
from bot.engines.postgres import Postgres
from bot.supervisor import Supervisor
from tests import test_fresh_machine as fresh_machine
from tests.fake_telegram_api import FakeTelegramApi

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# The secrets `make run` would generate (RASA_AUTH_TOKEN, ACTION_SERVER_TOKEN, TRITON_API_KEY), shared
# by every server the suite starts through this process's environment.
for _name, _value in secrets.generate().items():
    os.environ.setdefault(_name, _value)
RASA_TOKEN = os.environ[secrets.RASA_AUTH_TOKEN]
ACTION_HEADERS = {"Authorization": "Bearer ${ACTION_SERVER_TOKEN}"}  # as in endpoints.yml

# The bot's own NLU, trained quicker: the suite checks behaviour, `make bench` checks accuracy.
# ~800 examples x 4 epochs is about the work of the old 240 x 12; the higher learning rate makes
# the intents confident enough (FallbackClassifier's threshold) in so few epochs. The dialogue
# policies are config.yml's as they are: tests/test_dialogue_policy.py scores the suite's bot.
FAST_NLU = {"epochs": 4, "learning_rate": 4e-4, "validation_fraction": 0, "max_length": 32}


# The fixtures that make a test `slow`: Triton (every trained model and Rasa server needs it),
# PostgreSQL, the browser and the shipped bot (`make run`, tests/shipped.py). `make test-fast`
# (-m "not slow") runs the rest in a few minutes.
SLOW_FIXTURES = {"triton", "postgres", "browser", "shipped_project"}


def pytest_collection_modifyitems(items) -> None:
    for item in items:
        if SLOW_FIXTURES.intersection(item.fixturenames):
            item.add_marker(pytest.mark.slow)
    # The fresh machine's test waits for the script started once collection ends (its minutes of
    # downloads run beside the other tests): it goes last, after pytest-randomly's order, so that it
    # never waits for the script while other tests could run.
    items.sort(key=lambda item: item.module.__name__ == fresh_machine.__name__)


def pytest_collection_finish(session) -> None:
    if any(item.module.__name__ == fresh_machine.__name__ for item in session.items) and os.geteuid() == 0:
        fresh_machine.start_in_background()


def pytest_sessionfinish(session) -> None:
    fresh_machine.stop_in_background()


def free_port() -> int:
    return services.free_ports(1)[0]


@dataclass
class Triton:
    """A bundled Triton server on free ports, which tests may stop and start again."""

    repository: Path
    log_dir: Path
    http_port: int
    grpc_port: int
    metrics_port: int
    supervisor: Optional[Supervisor] = None

    @property
    def url(self) -> str:
        return f"localhost:{self.grpc_port}"

    def start(self) -> None:
        self.supervisor = Supervisor(self.log_dir)
        self.supervisor.start(
            services.triton(self.http_port, self.grpc_port, self.metrics_port, repository=self.repository),
            timeout_s=120,
        )

    @contextmanager
    def stalled(self) -> Iterator[None]:
        """Triton alive but not answering (its processes stopped with SIGSTOP), like a server
        stuck on a long request; it goes on when the block ends."""
        assert self.supervisor and self.supervisor.services[0].process, "Triton is not running"
        group = self.supervisor.services[0].process.pid
        os.killpg(group, signal.SIGSTOP)
        try:
            yield
        finally:
            os.killpg(group, signal.SIGCONT)

    def stop(self) -> None:
        if self.supervisor:
            self.supervisor.stop(grace_s=5)  # a test server need not drain; its group is killed after
            self.supervisor = None


@pytest.fixture(scope="session")
def triton(tmp_path_factory) -> Iterator[Triton]:
    base = tmp_path_factory.mktemp("triton")
    server = Triton(base / "repository", base, free_port(), free_port(), free_port())
    server.start()
    yield server
    server.stop()


def write_project(
    directory: Path, triton: Triton, nlu_overrides: Dict, policies: Optional[List[Dict]] = None, **ports
) -> Path:
    """A copy of the bot's project files whose endpoints point at the test servers (and, given
    `policies`, with those instead of config.yml's)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in services.PROJECT_FILES:
        source = ROOT / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, directory / name)
    config = yaml.safe_load((ROOT / "config.yml").read_text())
    for component in config["pipeline"]:
        if component["name"].endswith("BertTritonNLU"):
            component.update(nlu_overrides)
    if policies is not None:
        config["policies"] = policies
    (directory / "config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    endpoints = {
        "triton": {
            "url": triton.url,
            "model_repository": str(triton.repository),
            "timeout": 2.0,
            "http_port": triton.http_port,
            "grpc_port": triton.grpc_port,
            "metrics_port": triton.metrics_port,
        },
        "action_endpoint": {
            "url": f"http://localhost:{ports.get('actions_port', 5055)}/webhook",
            "headers": ACTION_HEADERS,
        },
    }
    (directory / "endpoints.yml").write_text(yaml.safe_dump(endpoints, sort_keys=False))
    return directory


def rasa(
    *args: str, cwd: Path, env: Optional[Dict[str, str]] = None, timeout: float = 900
) -> subprocess.CompletedProcess:
    """Run the `rasa` CLI of this environment in `cwd`; fail with its output on error."""
    environment = {**os.environ, "RASA_TELEMETRY_ENABLED": "false", **(env or {})}
    result = subprocess.run(
        [str(BIN / "rasa"), *args], cwd=cwd, env=environment, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, f"rasa {' '.join(args)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result


def rasa_test_nlu(sample: Path, model: Path, out: Path, cwd: Path, timeout: float = 900) -> None:
    """`rasa test nlu` of `model` on the examples in `sample`; its reports go to `out` (no plots)."""
    rasa(
        "test",
        "nlu",
        "--nlu",
        str(sample),
        "--model",
        str(model),
        "--out",
        str(out),
        "--no-plot",
        cwd=cwd,
        timeout=timeout,
    )


@dataclass
class TrainedBot:
    project: Path
    model: Path
    train_output: str


@pytest.fixture(scope="session")
def trained_bot(tmp_path_factory, triton) -> TrainedBot:
    """The support bot trained with `rasa train` on its own data and the default MiniLM."""
    project = write_project(tmp_path_factory.mktemp("bot"), triton, FAST_NLU)
    result = rasa("train", "--fixed-model-name", "bot", cwd=project)
    return TrainedBot(project, project / "models" / "bot.tar.gz", result.stdout + result.stderr)


def run_with_trained_bot(bot: TrainedBot, triton: Triton, code: str, *args: str) -> str:
    """The last line `code` prints, run in a Python process of its own (as `rasa run` is, with a heap
    of its own) in the trained bot's project, given the model's path and `args`."""
    result = subprocess.run(
        [sys.executable, "-c", code, str(bot.model), *args],
        cwd=bot.project,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "TRITON_URL": triton.url},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    """A real PostgreSQL (Debian's packages) of the test module's own."""
    server = Postgres(free_port(), durable=False).start()
    yield server
    server.stop()


# Debian's Chromium, driven by Playwright (the widget's tests).
CHROMIUM = "/usr/bin/chromium"
# Root in a container: no sandbox. The rest keeps Chromium from calling home or updating itself.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: `make system-deps` installs Debian's chromium"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def shipped_project() -> Iterator[Path]:
    """A copy of the checkout as shipped, for `make run` (tests/shipped.py); trained by its first run.
    Not under pytest's root-only folder: `make run REPLICAS=3`'s PostgreSQL runs as the user postgres."""
    from tests.shipped import checkout_copy  # here: tests.shipped imports this module

    directory = Path(tempfile.mkdtemp(prefix="shipped-"))
    directory.chmod(0o755)
    yield checkout_copy(directory)
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def fake_telegram() -> Iterator[FakeTelegramApi]:
    """A local fake of Telegram's Bot API; bot_servers' Telegram channel talks to it."""
    api = FakeTelegramApi().start()
    yield api
    api.stop()


def copy_project(bot: TrainedBot, directory: Path) -> Path:
    """A test's own copy of a trained project (its model and Rasa's training cache included), to
    change without touching what other tests read."""
    shutil.copytree(bot.project, directory, ignore=shutil.ignore_patterns("results", "logs"))
    return directory


# The endpoints file bot_servers' Rasa is started with (`--endpoints`); the project's endpoints.yml
# beside it names a Triton where nothing listens, so a component that read ./endpoints.yml fails.
SERVED_ENDPOINTS = "served-endpoints.yml"


@dataclass
class Servers:
    """The running bot; `token` opens Rasa's HTTP API (`params={"token": servers.token}`)."""

    rasa_url: str
    actions_port: int
    supervisor: Supervisor
    env: Dict[str, str]
    project: Path
    shop_url: str
    token: str = RASA_TOKEN


@pytest.fixture(scope="session")
def bot_servers(tmp_path_factory, trained_bot, triton, fake_telegram) -> Iterator[Servers]:
    """`rasa run --enable-api --endpoints served-endpoints.yml` and the action server on their own
    copy of the trained bot, with the project's credentials.yml (REST, socket.io, Telegram against
    the fake Bot API), the conversation log as endpoints.yml configures it (project/logs/) and a shop
    database of their own."""
    project = copy_project(trained_bot, tmp_path_factory.mktemp("servers") / "project")
    rasa_port, actions_port = free_port(), free_port()
    served = yaml.safe_load((project / "endpoints.yml").read_text())
    served["action_endpoint"]["url"] = f"http://localhost:{actions_port}/webhook"
    # The conversation log as shipped (SQLite, redacting), in the project copy's logs/.
    served["tracker_store"] = yaml.safe_load((ROOT / "endpoints.yml").read_text())["tracker_store"]
    (project / SERVED_ENDPOINTS).write_text(yaml.safe_dump(served))
    decoy = {
        **served,
        "triton": {
            **served["triton"],
            "url": f"localhost:{free_port()}",
            "model_repository": str(project / "not-the-served-repository"),
        },
    }
    (project / "endpoints.yml").write_text(yaml.safe_dump(decoy))
    shop_url = f"sqlite:///{project / 'shop.db'}"
    supervisor = Supervisor(tmp_path_factory.mktemp("logs"))
    own = {key: value for key, value in os.environ.items() if key != "LOG_STORE_URL"}  # a developer's log database
    env = {
        **own,
        "RASA_TELEMETRY_ENABLED": "false",
        "SHOP_DATABASE_URL": shop_url,
        "TELEGRAM_BOT_TOKEN": fake_telegram.token,
        "TELEGRAM_API_URL": fake_telegram.base_url,
    }
    supervisor.start(services.actions(actions_port, env=env, cwd=project))
    supervisor.start(
        services.rasa(
            rasa_port,
            RASA_TOKEN,
            SERVED_ENDPOINTS,
            model=project / "models" / trained_bot.model.name,
            env=env,
            cwd=project,
        ),
        timeout_s=300,
    )
    yield Servers(f"http://localhost:{rasa_port}", actions_port, supervisor, env, project, shop_url)
    supervisor.stop()


@pytest.fixture
def shop(bot_servers) -> str:
    """The action server's shop database back at the demo data, for a test that reads or writes
    orders through the bot; returns its URL."""
    from sqlalchemy import create_engine

    from actions import db
    from actions.models import Base

    engine = create_engine(bot_servers.shop_url, future=True)
    Base.metadata.drop_all(engine)
    engine.dispose()
    db.make_engine(bot_servers.shop_url).dispose()
    return bot_servers.shop_url

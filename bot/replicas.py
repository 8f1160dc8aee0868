"""The multi-replica stack of `python -m bot run --replicas N` (`make run REPLICAS=N`), all on loopback.

Rasa handles one message at a time per process (its NLU runs on the event loop), so throughput comes
from processes. They share what one process used to keep to itself:
- PostgreSQL holds the conversation log (the tracker store) and the shop, so any replica can go on
  with any conversation and the action server's workers see the same orders;
- Redis is Rasa's lock store, so two messages of one conversation are never handled at once;
- HAProxy is the one address clients see (the `--port` of `make run`), sticky for socket.io;
- `--tritons` Triton processes, the replicas spread over them, all serving the one model repository
  (0: the Triton that already serves endpoints.yml's url).
PostgreSQL's data lives in logs/postgres/ unless told otherwise (the conversation log must outlive a
restart); the rest in .run/.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List

import yaml

from bot import secrets, services
from bot.engines import haproxy, redis
from bot.engines.postgres import Postgres
from bot.supervisor import Service
from nlu.settings import TritonSettings

POSTGRES_DIR = Path("logs") / "postgres"
LOG_DATABASE = "conversations"
SHOP_DATABASE = "shop"
# By name: importing the store would import Rasa's tracker stores (and their warnings) into every `python -m bot`.
LOG_STORE_TYPE = "bot.conversation_log.store.RedactingSQLTrackerStore"


def stack(
    replicas: int,
    tritons: int,
    action_workers: int,
    postgres_port: int,
    postgres_dir: Path,
    redis_port: int,
    port: int,
    actions_port: int,
    widget_port: int,
    host: str,
    endpoints: str,
    credentials: str,
    env: Dict[str, str],
    run_dir: Path,
) -> List[List[Service]]:
    """Every service of the stack, in stages the Supervisor starts one after the other; the services
    of a stage start together (the Rasa replicas load their model at the same time)."""
    settings = TritonSettings.load(endpoints)
    tokens = {name: env[name] for name in secrets.NAMES}
    postgres = Postgres(postgres_port, postgres_dir.resolve(), tokens[secrets.POSTGRES_PASSWORD]).init()
    free = services.free_ports(replicas + 3 * max(0, tritons - 1))
    replica_ports, triton_ports = free[:replicas], free[replicas:]
    log_url, shop_url = postgres.url(LOG_DATABASE), postgres.url(SHOP_DATABASE)

    engines = [
        _with_databases(postgres.service(), postgres),
        redis.service(redis_port, tokens[secrets.REDIS_PASSWORD], run_dir / "redis"),
    ]
    triton_urls = [settings.url]  # tritons=0: the Triton already serving endpoints.yml's url
    if tritons:
        engines.append(
            services.triton(settings.http_port, settings.grpc_port, settings.metrics_port, endpoints=endpoints, env=env)
        )
    for i in range(1, tritons):
        http, grpc_port, metrics = triton_ports[3 * (i - 1) : 3 * i]
        engines.append(services.triton(http, grpc_port, metrics, endpoints=endpoints, env=env, name=f"triton{i + 1}"))
        triton_urls.append(f"localhost:{grpc_port}")
    engines.append(services.actions(actions_port, workers=action_workers, env={**env, "SHOP_DATABASE_URL": shop_url}))
    replica_endpoints = _endpoints(endpoints, redis_port, run_dir)
    rasas = []
    for i, replica_port in enumerate(replica_ports):
        rasas.append(
            services.rasa(
                replica_port,
                tokens[secrets.RASA_AUTH_TOKEN],
                str(replica_endpoints),
                credentials,
                cors=services.widget_origins(widget_port),
                env={**env, "LOG_STORE_URL": log_url, "TRITON_URL": triton_urls[i % len(triton_urls)]},
                name=f"rasa{i + 1}",
            )
        )
    return [[engine] for engine in engines] + [rasas, [haproxy.service(host, port, replica_ports, run_dir / "haproxy")]]


def log_store_url(
    postgres_port: int, password: str = f"${secrets.POSTGRES_PASSWORD}", database: str = LOG_DATABASE
) -> str:
    """The conversation log's URL (or the shop's, given SHOP_DATABASE); by default with the password as a
    shell variable, as the banner shows it."""
    return f"postgresql://postgres:{password}@127.0.0.1:{postgres_port}/{database}"


def _endpoints(source: str, redis_port: int, run_dir: Path) -> Path:
    """The replicas' endpoints file: the project's, with the Redis lock store and the conversation log
    (the project's redaction settings kept) in PostgreSQL, where $LOG_STORE_URL points."""
    endpoints = yaml.safe_load(Path(source).read_text()) or {}
    tracker_store = endpoints.get("tracker_store") or {}
    kept = {key: tracker_store[key] for key in ("redact", "extra_patterns") if key in tracker_store}
    endpoints["tracker_store"] = {"type": LOG_STORE_TYPE, "dialect": "postgresql", **kept}
    endpoints["lock_store"] = {
        "type": "redis",
        "url": "127.0.0.1",
        "port": redis_port,
        "password": f"${{{secrets.REDIS_PASSWORD}}}",  # Rasa reads it from the environment
        "db": 0,
    }
    path = run_dir / "replicas-endpoints.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(endpoints, sort_keys=False))
    return path


def _with_databases(service: Service, postgres: Postgres) -> Service:
    """PostgreSQL is ready once it accepts connections and both databases exist."""

    def ready() -> bool:
        if not postgres.accepts_connections():
            return False
        postgres.database(LOG_DATABASE)
        postgres.database(SHOP_DATABASE)
        return True

    service.probe = ready
    return service

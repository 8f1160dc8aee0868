"""Static checks of deploy/: the manifests parse and agree with endpoints.yml, requirements.lock, the
backend contract of nlu.triton.contract and the config.pbtxt that nlu.triton.model_config writes, and
they open no doors: Triton, the action server and Redis are published nowhere, every API takes its secret
from a Secret (bot/secrets.py names most), the conversation log and the shop's database outlive their pods.
Nothing is built or started (no Docker, GPU or cluster); Triton's start script runs with a stand-in
tritonserver, and `kubectl kustomize` builds deploy/k8s when kubectl is installed. The scale-out of
deploy/k8s and its validation against Kubernetes' schemas: tests/test_k8s_manifests.py."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple
from urllib.parse import urlparse

import pytest
import yaml

from bot import secrets
from nlu.triton import contract
from nlu.triton.server import RESPONSE_CACHE_BYTES, server_command

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
COMPOSE = DEPLOY / "docker-compose.yml"
TRITON_DOCKERFILE = DEPLOY / "triton" / "Dockerfile"
TRITON_SERVE = DEPLOY / "triton" / "serve.sh"
BOT_DOCKERFILE = DEPLOY / "Dockerfile"
SECRET = "support-bot"  # the Secret kustomization.yaml generates from k8s/secrets.env
SECRET_TEMPLATE = K8S / "secrets.env.example"
SHOP_DATABASE_URL = "SHOP_DATABASE_URL"
REDIS_PASSWORD = "REDIS_PASSWORD"
LOG_STORE_URL = "LOG_STORE_URL"
K8S_MANIFESTS = {"triton.yaml", "bot.yaml", "redis.yaml", "model-server.yaml", "network-policies.yaml"}
DEPLOYMENTS = {"triton", "rasa", "actions", "redis", "model-server"}

RASA_PORT = 5005
# libyaml's loader where PyYAML has it: the whole module must stay well under 2 s.
Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


# ---------------------------------------------------------------- helpers


def _yaml_files() -> List[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file())


@lru_cache(maxsize=None)
def _documents(path: Path) -> Tuple[Any, ...]:
    """Every document of a YAML file, parsed once (the tests only read them)."""
    return tuple(doc for doc in yaml.load_all(path.read_text(), Loader=Loader) if doc is not None)


def _load(path: Path) -> Any:
    documents = _documents(path)
    assert len(documents) == 1, f"{path} should hold one YAML document"
    return documents[0]


def _endpoints() -> Dict[str, Any]:
    return _load(ROOT / "endpoints.yml")


def _triton_ports() -> Dict[str, int]:
    section = _endpoints()["triton"]
    grpc = int(section.get("grpc_port", section["url"].rsplit(":", 1)[-1]))
    return {
        "http": int(section.get("http_port", 8000)),
        "grpc": grpc,
        "metrics": int(section.get("metrics_port", 8002)),
    }


def _actions_port() -> int:
    return urlparse(_endpoints()["action_endpoint"]["url"]).port


def _compose() -> Dict[str, Any]:
    return _load(COMPOSE)


def _k8s_documents() -> List[Dict[str, Any]]:
    kustomization = _load(K8S / "kustomization.yaml")
    return [doc for name in kustomization["resources"] for doc in _documents(K8S / name)]


def _k8s(kind: str, name: str) -> Dict[str, Any]:
    found = [d for d in _k8s_documents() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name!r} in deploy/k8s, found {len(found)}"
    return found[0]


def _container(deployment: Dict[str, Any]) -> Dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def _lock_versions() -> Dict[str, str]:
    pins = re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", (ROOT / "requirements.lock").read_text(), re.M)
    return {_normalize(name): version for name, version in pins}


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _instructions(dockerfile: Path) -> List[Tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    lines = [line for line in dockerfile.read_text().splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    result = []
    for line in joined.splitlines():
        if line.strip():
            instruction, _, arguments = line.strip().partition(" ")
            result.append((instruction.upper(), arguments.strip()))
    return result


def _pip_pins(dockerfile: Path) -> Dict[str, str]:
    pins: Dict[str, str] = {}
    for instruction, arguments in _instructions(dockerfile):
        if instruction == "RUN" and "pip install" in arguments:
            for name, version in re.findall(r"(?<![\w.=-])([A-Za-z][A-Za-z0-9._-]*)==([^\s\"'&;]+)", arguments):
                pins[_normalize(name)] = version
    return pins


def _exec_form(dockerfile: Path, instruction: str) -> List[str]:
    values = [args for name, args in _instructions(dockerfile) if name == instruction]
    assert values, f"{dockerfile.relative_to(ROOT)} has no {instruction}"
    return json.loads(values[-1])


def _option(args: List[str], flag: str) -> List[str]:
    """The values that follow `flag` in a command line, up to the next option."""
    assert args.count(flag) == 1, f"{flag} should be given once in {args}"
    values = args[args.index(flag) + 1 :]
    return values[: next((i for i, value in enumerate(values) if value.startswith("--")), len(values))]


def _assert_origins(origins: List[str]) -> None:
    """CORS for named origins (scheme://host[:port]), never every origin."""
    assert origins, "--cors names no origin"
    for origin in origins:
        url = urlparse(origin)
        assert "*" not in origin and url.scheme in ("http", "https") and url.hostname and url.path == "", origin


_COMPOSE_VARIABLE = re.compile(r"\$\{(\w+)(?::([-?])([^}]*))?\}")


def _interpolate(value: Any, env: Dict[str, str]) -> str:
    """What compose makes of ${VAR}, ${VAR:-default} and ${VAR:?error}: an unset or empty VAR with :? stops it."""

    def substitute(match: "re.Match[str]") -> str:
        name, operator, argument = match.groups()
        if env.get(name):
            return env[name]
        if operator == "?":
            raise KeyError(f"{name}: {argument}")
        return argument if operator == "-" else ""

    return _COMPOSE_VARIABLE.sub(substitute, str(value))


def _is_required(value: Any, name: str) -> bool:
    """`value` is ${name:?...}: compose refuses to start without the variable, and passes it on as it is."""
    try:
        _interpolate(value, {})
    except KeyError as error:
        return str(error).strip("'").startswith(f"{name}:") and _interpolate(value, {name: "s3cret"}) == "s3cret"
    return False


def _env(container: Dict[str, Any]) -> Dict[str, Dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


def _secret_ref(container: Dict[str, Any], name: str) -> Dict[str, Any]:
    entry = _env(container).get(name)
    assert entry, f"{container['name']} has no {name}"
    assert "value" not in entry, f"{container['name']}: {name} is written into the manifest"
    return entry["valueFrom"]["secretKeyRef"]


def _template() -> Dict[str, str]:
    """KEY=value lines of k8s/secrets.env.example."""
    lines = [line for line in SECRET_TEMPLATE.read_text().splitlines() if line.strip() and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


# ---------------------------------------------------------------- every file parses


def test_deploy_has_the_expected_files():
    for path in (
        "Dockerfile",
        "triton/Dockerfile",
        "triton/serve.sh",
        "docker-compose.yml",
        "endpoints.yml",
        "README.md",
        ".gitignore",
        *(f"k8s/{name}" for name in K8S_MANIFESTS),
        "k8s/kustomization.yaml",
        "k8s/endpoints.yml",
        "k8s/secrets.env.example",
    ):
        assert (DEPLOY / path).is_file(), f"deploy/{path} is missing"


@pytest.mark.parametrize("path", _yaml_files(), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_yaml_file_parses(path: Path):
    documents = _documents(path)
    assert documents, f"{path} is empty"
    assert all(isinstance(doc, dict) for doc in documents)


def test_kustomization_lists_every_manifest():
    kustomization = _load(K8S / "kustomization.yaml")
    assert kustomization["kind"] == "Kustomization"
    manifests = {p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml"}
    assert set(kustomization["resources"]) == manifests == K8S_MANIFESTS


def test_every_k8s_document_is_a_kubernetes_object():
    for doc in _k8s_documents():
        assert doc.get("apiVersion") and doc.get("kind") and doc["metadata"].get("name"), doc


# ---------------------------------------------------------------- images


def test_triton_image_pins_onnx_numpy_as_the_lock_and_runs_onnxruntime_gpu():
    """The backend's imports only: the lock's onnx and numpy, the CUDA build of onnxruntime, no torch."""
    lock, pins = _lock_versions(), _pip_pins(TRITON_DOCKERFILE)
    for package in ("onnx", "numpy"):
        assert package in pins, f"deploy/triton/Dockerfile does not pin {package}"
        assert pins[package] == lock[package], (
            f"{package}: deploy/triton/Dockerfile installs {pins[package]}, requirements.lock pins {lock[package]}"
        )
    assert "onnxruntime-gpu" in pins, "deploy/triton/Dockerfile does not pin onnxruntime-gpu"
    assert "onnxruntime" not in pins, "the CPU onnxruntime would shadow onnxruntime-gpu"
    installs = " ".join(args for name, args in _instructions(TRITON_DOCKERFILE) if name == "RUN")
    for package in ("torch", "transformers"):
        assert not re.search(rf"(?<![\w.-]){package}(?![\w-])", installs), f"the Triton image installs {package}"


def test_triton_image_installs_our_backend():
    copies = [args.split() for name, args in _instructions(TRITON_DOCKERFILE) if name == "COPY"]
    target = f"/opt/tritonserver/backends/{contract.BACKEND}/model.py"
    assert ["nlu/triton/backend/model.py", target] in copies, (
        f"deploy/triton/Dockerfile does not copy the backend to {target}"
    )
    assert (ROOT / "nlu/triton/backend/model.py").is_file()
    ignore = (DEPLOY / "triton" / "Dockerfile.dockerignore").read_text().splitlines()
    assert "!nlu/triton/backend/model.py" in ignore, "the .dockerignore leaves the backend out of the build context"


def _serve(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    """deploy/triton/serve.sh with a stand-in tritonserver that prints the arguments it gets."""
    fake = tmp_path / "bin" / "tritonserver"
    fake.parent.mkdir(exist_ok=True)
    fake.write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n')
    fake.chmod(0o755)
    (tmp_path / "--load-model=trap").touch()  # an unquoted --load-model=* would expand to it
    return subprocess.run(
        ["sh", str(TRITON_SERVE)],
        env={"PATH": f"{fake.parent}:/usr/bin:/bin", **env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=10,
    )


def test_triton_image_is_the_official_container_serving_our_repository():
    froms = [args for name, args in _instructions(TRITON_DOCKERFILE) if name == "FROM"]
    assert froms == ["nvcr.io/nvidia/tritonserver:24.08-py3"]
    assert _exec_form(TRITON_DOCKERFILE, "CMD") == ["/opt/support-bot/serve.sh"]
    copies = [args.split() for name, args in _instructions(TRITON_DOCKERFILE) if name == "COPY"]
    assert ["--chmod=755", "deploy/triton/serve.sh", "/opt/support-bot/serve.sh"] in copies
    ignore = (DEPLOY / "triton" / "Dockerfile.dockerignore").read_text().splitlines()
    assert "!deploy/triton/serve.sh" in ignore, "the .dockerignore leaves serve.sh out of the build context"


def test_triton_image_starts_tritonserver_as_bot_triton_does_with_its_apis_behind_the_key(tmp_path: Path):
    """The flags of nlu.triton.server.server_command on every interface of the container, less the ones
    that place the bundled server's files (the official image has them where tritonserver looks)."""
    started = _serve(tmp_path, TRITON_API_KEY="the-key")
    assert started.returncode == 0, started.stderr
    ports = _triton_ports()
    expected = server_command(
        Path("/models"), tmp_path, ports["http"], ports["grpc"], ports["metrics"], "the-key", host="0.0.0.0"
    )[1:]
    local = ("--backend-directory=", "--cache-directory=", "--log-verbose=")
    assert sorted(started.stdout.splitlines()) == sorted(f for f in expected if not f.startswith(local))
    restricted = f"{contract.RESTRICTED_APIS}:{contract.API_KEY_HEADER}=the-key"
    for flag in (
        f"--http-restricted-api={restricted}",
        f"--grpc-restricted-protocol={restricted}",
        f"--cache-config=local,size={RESPONSE_CACHE_BYTES}",
        "--load-model=*",
    ):
        assert flag in started.stdout.splitlines()


@pytest.mark.parametrize("key", [None, ""], ids=["unset", "empty"])
def test_triton_image_does_not_start_without_its_key(tmp_path: Path, key):
    refused = _serve(tmp_path, **({} if key is None else {"TRITON_API_KEY": key}))
    assert refused.returncode != 0 and refused.stdout == "", "tritonserver was started without TRITON_API_KEY"
    assert "TRITON_API_KEY" in refused.stderr


def test_bot_image_installs_the_lock_without_resolving():
    instructions = _instructions(BOT_DOCKERFILE)
    assert [args for name, args in instructions if name == "FROM"] == ["python:3.10-slim"]
    runs = [args for name, args in instructions if name == "RUN"]
    assert any(re.search(r"pip install --no-deps -r requirements\.lock", run) for run in runs)
    assert any(re.search(r"pip install --no-deps \.(\s|$)", run) for run in runs)
    # The image's own command serves the channels only: no HTTP API (it would need the token), no CORS.
    assert _exec_form(BOT_DOCKERFILE, "CMD") == [
        "rasa",
        "run",
        "--interface",
        "0.0.0.0",
        "--port",
        str(RASA_PORT),
        "--endpoints",
        "endpoints.yml",
        "--credentials",
        "credentials.yml",
    ]
    copied = " ".join(args for name, args in instructions if name == "COPY")
    for path in (
        "requirements.lock",
        "pyproject.toml",
        "nlu",
        "actions",
        "config.yml",
        "domain.yml",
        "data",
        "deploy/endpoints.yml",
    ):
        assert path in copied, f"deploy/Dockerfile does not copy {path}"


def test_container_endpoints_agree_with_the_projects():
    """The project's sections with the services' names, and a lock store in Redis so that Rasa can have replicas."""
    project, container = _endpoints(), _load(DEPLOY / "endpoints.yml")
    assert set(container) == set(project) | {"lock_store"}, (
        "deploy/endpoints.yml: endpoints.yml's sections + lock_store"
    )
    assert container["lock_store"] == {
        "type": "redis",
        "url": "redis",
        "port": 6379,
        "password": f"${{{REDIS_PASSWORD}}}",
        "db": 1,
    }
    assert set(container["triton"]) == set(project["triton"])
    ports = _triton_ports()
    for key in ("http_port", "grpc_port", "metrics_port", "timeout"):
        assert container["triton"][key] == project["triton"][key], key
    assert container["triton"]["url"] == f"triton:{ports['grpc']}"
    assert container["triton"]["model_repository"] == "/models"
    action_url = urlparse(container["action_endpoint"]["url"])
    assert (action_url.hostname, action_url.port, action_url.path) == ("actions", _actions_port(), "/webhook")
    assert container["tracker_store"] == project["tracker_store"]


def test_k8s_endpoints_are_the_images_plus_the_model_server():
    """deploy/k8s/endpoints.yml (Rasa's on Kubernetes) may differ from deploy/endpoints.yml only by `models:`."""
    image, k8s = _load(DEPLOY / "endpoints.yml"), _load(K8S / "endpoints.yml")
    assert {key: value for key, value in k8s.items() if key != "models"} == image
    assert k8s["models"] == {"url": "${RASA_MODEL_URL}", "wait_time_between_pulls": 30}
    generators = {g["name"]: g for g in _load(K8S / "kustomization.yaml")["configMapGenerator"]}
    assert generators["rasa-endpoints"]["files"] == ["endpoints.yml"]


def test_compose_keeps_the_conversation_log_in_postgres():
    services = _compose()["services"]
    url = urlparse(re.sub(r"\$\{[^}]*\}", "secret", services["rasa"]["environment"]["LOG_STORE_URL"]))
    assert (url.scheme, url.hostname, url.port) == ("postgresql", "postgres", 5432)
    assert url.path.lstrip("/") == services["postgres"]["environment"]["POSTGRES_DB"]
    assert url.username == services["postgres"]["environment"]["POSTGRES_USER"]
    assert services["rasa"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert any(str(v).endswith(":/var/lib/postgresql/data") for v in services["postgres"]["volumes"])
    rasa = _container(_k8s("Deployment", "rasa"))
    assert _secret_ref(rasa, LOG_STORE_URL) == {"name": SECRET, "key": LOG_STORE_URL}, (
        "Kubernetes: from the Secret, required"
    )


def test_compose_keeps_rasas_locks_in_redis_behind_its_password():
    services = _compose()["services"]
    lock_store = _load(DEPLOY / "endpoints.yml")["lock_store"]
    redis = services[lock_store["url"]]
    assert redis["image"].startswith("redis:") and not redis.get("ports")
    assert set(redis.get("networks", ["default"])) & set(services["rasa"]["networks"]), "Rasa must reach Redis"
    assert services["rasa"]["depends_on"][lock_store["url"]]["condition"] == "service_healthy"
    assert _is_required(redis["environment"][REDIS_PASSWORD], REDIS_PASSWORD)
    script = redis["command"][-1]
    (server,) = [line for line in script.splitlines() if "redis-server" in line]
    assert server.startswith("exec redis-server - ") and "REDIS_PASSWORD" not in server, (
        "the password on a command line"
    )
    assert 'requirepass "$$REDIS_PASSWORD"' in script, (
        "compose must pass $REDIS_PASSWORD to the shell, not interpolate it"
    )


# ---------------------------------------------------------------- docker compose


def _published(service: Dict[str, Any], env: Optional[Dict[str, str]] = None) -> Dict[int, Tuple[str, int]]:
    """container port -> (host address, host port), as compose publishes it with `env` (default: nothing set)."""
    ports = {}
    for entry in service.get("ports", []):
        parts = _interpolate(entry, env or {}).split(":")
        ports[int(parts[-1])] = (parts[0] if len(parts) == 3 else "0.0.0.0", int(parts[-2]) if len(parts) > 1 else 0)
    return ports


def _volumes(service: Dict[str, Any]) -> Dict[str, Path]:
    """container path -> host path (resolved against deploy/, as compose does)."""
    mounts = {}
    for entry in service.get("volumes", []):
        source, target = str(entry).split(":")[:2]
        mounts[target] = (DEPLOY / source).resolve()
    return mounts


def test_compose_services_and_images():
    services = _compose()["services"]
    assert {"triton", "rasa", "actions"} <= set(services)
    assert services["triton"]["build"]["dockerfile"] == "deploy/triton/Dockerfile"
    for name in ("rasa", "actions"):
        assert services[name]["build"]["dockerfile"] == "deploy/Dockerfile"
        assert services[name]["image"] == services["rasa"]["image"]
    for service in services.values():
        if "build" in service:
            assert ((DEPLOY / service["build"]["context"]).resolve() / service["build"]["dockerfile"]).is_file()
    assert services["actions"]["command"] == [
        "python",
        "-m",
        "actions",
        "--host",
        "0.0.0.0",
        "--port",
        str(_actions_port()),
    ]


def test_compose_reserves_the_gpus_for_triton():
    devices = _compose()["services"]["triton"]["deploy"]["resources"]["reservations"]["devices"]
    assert any(d["driver"] == "nvidia" and d["count"] == "all" and "gpu" in d["capabilities"] for d in devices)


def test_compose_mounts_the_model_repository_of_endpoints_yml():
    services = _compose()["services"]
    repository = (ROOT / _endpoints()["triton"]["model_repository"]).resolve()
    assert _endpoints()["triton"]["model_repository"] == "models/triton"
    assert _volumes(services["triton"])["/models"] == repository
    rasa = services["rasa"]
    assert _volumes(rasa)[rasa["environment"]["TRITON_MODEL_REPOSITORY"]] == repository
    assert _volumes(rasa)["/app/models"] == (ROOT / "models").resolve()


def test_compose_publishes_rasa_alone_on_loopback_unless_bot_host_says_otherwise():
    """Triton (its model-repository API runs code), the action server and PostgreSQL publish no port."""
    services, ports = _compose()["services"], _triton_ports()
    published = {name: _published(service) for name, service in services.items() if service.get("ports")}
    assert published == {"rasa": {RASA_PORT: ("127.0.0.1", RASA_PORT)}}
    assert _published(services["rasa"], {"BOT_HOST": "0.0.0.0"}) == {RASA_PORT: ("0.0.0.0", RASA_PORT)}
    assert not any("network_mode" in service for service in services.values()), "host networking publishes every port"
    assert f"localhost:{ports['http']}/v2/health/ready" in " ".join(services["triton"]["healthcheck"]["test"])
    assert services["rasa"]["environment"]["TRITON_URL"] == f"triton:{ports['grpc']}"


def test_compose_lets_only_rasa_onto_tritons_internal_network():
    compose = _compose()
    networks = {name: set(service.get("networks", ["default"])) for name, service in compose["services"].items()}
    assert networks["triton"] == {"triton"}
    assert compose["networks"]["triton"]["internal"] is True
    assert {name for name, joined in networks.items() if joined & networks["triton"]} == {"triton", "rasa"}


def test_compose_requires_every_secret_from_the_environment():
    services = _compose()["services"]
    needs = {
        "triton": [secrets.TRITON_API_KEY],
        "actions": [secrets.ACTION_SERVER_TOKEN],
        "rasa": [secrets.ACTION_SERVER_TOKEN, secrets.TRITON_API_KEY, secrets.SOCKETIO_SESSION_KEY, REDIS_PASSWORD],
        "redis": [REDIS_PASSWORD],
    }  # RASA_AUTH_TOKEN: --auth-token; POSTGRES_PASSWORD: in LOG_STORE_URL (test_compose_keeps_the_conversation_log_in_postgres)
    for service, names in needs.items():
        for name in names:
            value = services[service]["environment"].get(name)
            assert _is_required(value, name), f"{service}: {name} must be ${{{name}:?...}}"
    command = services["rasa"]["command"]
    assert _is_required(" ".join(_option(command, "--auth-token")), secrets.RASA_AUTH_TOKEN)


def test_compose_rasa_api_needs_the_token_and_cors_allows_the_widget_alone():
    command = _compose()["services"]["rasa"]["command"]
    assert command[:2] == ["rasa", "run"] and "--enable-api" in command
    assert [_interpolate(value, {"RASA_AUTH_TOKEN": "t"}) for value in _option(command, "--auth-token")] == ["t"]
    _assert_origins([_interpolate(value, {}) for value in _option(command, "--cors")])
    configured = {"WIDGET_ORIGIN": "https://shop.test"}
    assert [_interpolate(value, configured) for value in _option(command, "--cors")] == ["https://shop.test"]
    assert _option(command, "--interface") == ["0.0.0.0"]
    assert _option(command, "--port") == [str(RASA_PORT)]


def test_compose_keeps_the_shop_in_a_volume():
    actions = _compose()["services"]["actions"]
    default = urlparse(_interpolate(actions["environment"][SHOP_DATABASE_URL], {}))
    assert default.scheme == "sqlite"
    mounts = [str(v).split(":")[1] for v in actions["volumes"] if not str(v).startswith((".", "/"))]  # named volumes
    assert any(Path(default.path[1:]).parent == Path(mount) for mount in mounts)
    postgres = {SHOP_DATABASE_URL: "postgresql://h/shop"}
    assert _interpolate(actions["environment"][SHOP_DATABASE_URL], postgres) == postgres[SHOP_DATABASE_URL]


def test_compose_rasa_waits_for_a_healthy_triton_and_the_actions():
    depends = _compose()["services"]["rasa"]["depends_on"]
    assert depends["triton"]["condition"] == "service_healthy"
    assert "actions" in depends


def test_compose_says_how_to_train_first():
    text = COMPOSE.read_text()
    assert "make train" in text and "rasa train" in text


# ---------------------------------------------------------------- kubernetes


def _deployments() -> Iterator[Dict[str, Any]]:
    return (d for d in _k8s_documents() if d["kind"] == "Deployment")


def test_every_deployment_has_probes_and_matching_labels():
    names = set()
    for deployment in _deployments():
        names.add(deployment["metadata"]["name"])
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            assert container.get("readinessProbe"), f"{container['name']} has no readiness probe"
            assert container.get("livenessProbe"), f"{container['name']} has no liveness probe"
    assert names == DEPLOYMENTS


def test_every_service_selects_a_deployment():
    pods = [d["spec"]["template"]["metadata"]["labels"] for d in _deployments()]
    services = [d for d in _k8s_documents() if d["kind"] == "Service"]
    assert {s["metadata"]["name"] for s in services} == DEPLOYMENTS
    for service in services:
        assert any(service["spec"]["selector"].items() <= labels.items() for labels in pods), service["metadata"]


def test_triton_deployment_requests_a_gpu_and_probes_health():
    container, ports = _container(_k8s("Deployment", "triton")), _triton_ports()
    assert int(container["resources"]["limits"]["nvidia.com/gpu"]) == 1
    assert container["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": ports["http"]}
    assert container["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": ports["http"]}
    assert {p["containerPort"] for p in container["ports"]} == set(ports.values())


def test_triton_and_rasa_share_no_volume():
    """No claim between them: Rasa's component writes its copy into a scratch emptyDir that nothing reads,
    each Triton pod serves its own emptyDir, filled before it starts (tests/test_k8s_manifests.py)."""
    rasa, triton = _k8s("Deployment", "rasa"), _k8s("Deployment", "triton")
    for deployment in (rasa, triton):
        pod = deployment["spec"]["template"]["spec"]
        assert not [v for v in pod["volumes"] if "persistentVolumeClaim" in v], deployment["metadata"]["name"]
        (mount,) = [m for m in _container(deployment)["volumeMounts"] if m["mountPath"] == "/models"]
        (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
        assert "emptyDir" in volume
    env = {e["name"]: e.get("value") for e in _container(rasa)["env"]}
    assert env["TRITON_MODEL_REPOSITORY"] == "/models"
    assert not [
        d
        for d in _k8s_documents()
        if d["kind"] == "PersistentVolumeClaim" and d["metadata"]["name"] != "model-archives"
    ]


def test_triton_service_is_grpc_inside_the_cluster():
    service = _k8s("Service", "triton")
    assert service["spec"]["type"] == "ClusterIP"
    assert {p["name"]: p["port"] for p in service["spec"]["ports"]} == {"grpc": _triton_ports()["grpc"]}


def test_no_service_or_pod_is_reachable_from_outside_the_cluster():
    """No NodePort, LoadBalancer, external IP, host port or host network; Rasa goes out through your Ingress."""
    for service in (d for d in _k8s_documents() if d["kind"] == "Service"):
        assert service["spec"].get("type", "ClusterIP") == "ClusterIP", service["metadata"]["name"]
        assert not service["spec"].get("externalIPs"), service["metadata"]["name"]
    for deployment in _deployments():
        pod = deployment["spec"]["template"]["spec"]
        assert not pod.get("hostNetwork"), deployment["metadata"]["name"]
        assert not any("hostPort" in port for c in pod["containers"] for port in c.get("ports", []))
    assert not [d for d in _k8s_documents() if d["kind"] in ("Ingress", "Gateway")]


SECRET_USERS = {
    "triton": {secrets.TRITON_API_KEY},
    # its own token, the keys it presents to the others, the lock store's password, the conversation log
    "rasa": {
        secrets.RASA_AUTH_TOKEN,
        secrets.ACTION_SERVER_TOKEN,
        secrets.TRITON_API_KEY,
        secrets.SOCKETIO_SESSION_KEY,
        REDIS_PASSWORD,
        LOG_STORE_URL,
    },
    "actions": {secrets.ACTION_SERVER_TOKEN, SHOP_DATABASE_URL},
    "redis": {REDIS_PASSWORD},
}


def _secret_keys() -> set:
    """The keys of the Secret that the manifests read."""
    refs = (
        e.get("valueFrom", {}).get("secretKeyRef", {})
        for d in _deployments()
        for c in d["spec"]["template"]["spec"]["containers"]
        for e in c.get("env", [])
    )
    return {ref["key"] for ref in refs if ref.get("name") == SECRET}


def test_k8s_takes_every_secret_from_the_secret():
    for deployment, names in SECRET_USERS.items():
        container = _container(_k8s("Deployment", deployment))
        for name in names:
            ref = _secret_ref(container, name)
            assert (ref["name"], ref["key"], ref.get("optional", False)) == (SECRET, name, False), ref


def test_secret_template_names_every_key_and_holds_no_secret():
    kustomization = _load(K8S / "kustomization.yaml")
    assert kustomization["secretGenerator"] == [{"name": SECRET, "envs": ["secrets.env"]}]
    template = _template()
    assert set(template) == _secret_keys() >= set().union(*SECRET_USERS.values())
    assert all(value == "" for value in template.values()), "a secret in the template"
    ignored = (DEPLOY / ".gitignore").read_text().splitlines()
    assert "/k8s/secrets.env" in ignored and "/.env" in ignored, "the files that hold the secrets must be git-ignored"
    readme = (DEPLOY / "README.md").read_text()
    assert all(name in readme for name in (*template, "POSTGRES_PASSWORD", "WIDGET_ORIGIN", "BOT_HOST"))


def test_k8s_rasa_api_needs_the_token_and_cors_allows_the_widget_alone(tmp_path: Path):
    rasa = _container(_k8s("Deployment", "rasa"))
    args, env = rasa["args"], _env(rasa)
    assert args[:2] == ["rasa", "run"] and "--enable-api" in args
    assert _option(args, "--auth-token") == [f"$({secrets.RASA_AUTH_TOKEN})"]
    cors = _option(args, "--cors")
    _assert_origins([re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)]["value"], value) for value in cors])
    assert _option(args, "--interface") == ["0.0.0.0"]
    assert _option(args, "--port") == [str(RASA_PORT)]
    # Rasa would take an empty token as the right one for ?token=, and without LOG_STORE_URL each pod would
    # keep a log of its own: the command refuses to start without either.
    given = {secrets.RASA_AUTH_TOKEN: "t", LOG_STORE_URL: "postgresql://h/conversations"}
    for missing in (None, *given):
        variables = {name: ("" if name == missing else value) for name, value in given.items()}
        started = subprocess.run(
            [*rasa["command"], "true"],
            env={"PATH": "/usr/bin:/bin", **variables},
            capture_output=True,
            text=True,
            timeout=10,
        )
        assert (started.returncode == 0) is (missing is None), started.stderr
        assert missing is None or missing in started.stderr


def test_k8s_shop_database_is_shared_by_the_action_servers():
    """Replicas of the action server share one database: SHOP_DATABASE_URL from the Secret (PostgreSQL), no
    claim, and the command refuses to start without the URL (the server would fall back to its own SQLite)."""
    deployment = _k8s("Deployment", "actions")
    container, pod = _container(deployment), deployment["spec"]["template"]["spec"]
    assert deployment["spec"]["replicas"] >= 2
    assert _secret_ref(container, SHOP_DATABASE_URL) == {"name": SECRET, "key": SHOP_DATABASE_URL}
    assert not [v for v in pod.get("volumes", []) if "persistentVolumeClaim" in v]
    assert "postgresql://" in SECRET_TEMPLATE.read_text()
    for url, starts in (("", False), ("postgresql://h/shop", True)):
        started = subprocess.run(
            [*container["command"], "true"],
            env={"PATH": "/usr/bin:/bin", SHOP_DATABASE_URL: url},
            capture_output=True,
            text=True,
            timeout=10,
        )
        assert (started.returncode == 0) is starts, started.stderr


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kustomize_builds_with_the_template_and_not_without_secrets_env(tmp_path: Path):
    copy = tmp_path / "k8s"
    shutil.copytree(K8S, copy, ignore=shutil.ignore_patterns("secrets.env"))
    missing = subprocess.run(["kubectl", "kustomize", str(copy)], capture_output=True, text=True, timeout=60)
    assert missing.returncode != 0 and "secrets.env" in missing.stderr
    shutil.copy(SECRET_TEMPLATE, copy / "secrets.env")
    built = subprocess.run(["kubectl", "kustomize", str(copy)], capture_output=True, text=True, timeout=60)
    assert built.returncode == 0, built.stderr
    documents = [d for d in yaml.load_all(built.stdout, Loader=Loader) if d]
    (secret,) = [d for d in documents if d["kind"] == "Secret"]
    assert secret["metadata"]["name"].startswith(f"{SECRET}-") and set(secret["data"]) == set(_template())
    for deployment in (d for d in documents if d["kind"] == "Deployment"):
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            for entry in container.get("env", []):
                ref = entry.get("valueFrom", {}).get("secretKeyRef")
                if ref and not ref.get("optional"):
                    assert (ref["name"], ref["key"] in secret["data"]) == (secret["metadata"]["name"], True), ref
    assert {d["metadata"]["name"] for d in documents if d["kind"] == "NetworkPolicy"} == DEPLOYMENTS
    generated = {d["metadata"]["name"] for d in documents if d["kind"] == "ConfigMap"}
    for name in ("rasa-endpoints", "rasa-model", "triton-models"):  # with a hash of their data, as the Secret
        assert any(found.startswith(f"{name}-") for found in generated), name


def test_bot_deployments_reach_triton_and_probe_their_ports():
    rasa, actions = _container(_k8s("Deployment", "rasa")), _container(_k8s("Deployment", "actions"))
    env = {e["name"]: e.get("value") for e in rasa["env"]}
    assert env["TRITON_URL"] == f"triton:{_triton_ports()['grpc']}"
    assert rasa["readinessProbe"]["httpGet"] == {"path": "/", "port": RASA_PORT}
    assert actions["readinessProbe"]["httpGet"] == {"path": "/health", "port": _actions_port()}
    assert actions["args"] == ["python", "-m", "actions", "--host", "0.0.0.0", "--port", str(_actions_port())]
    assert {p["port"] for p in _k8s("Service", "rasa")["spec"]["ports"]} == {RASA_PORT}
    assert {p["port"] for p in _k8s("Service", "actions")["spec"]["ports"]} == {_actions_port()}


# ---------------------------------------------------------------- config.pbtxt


def test_model_config_is_a_valid_triton_model_config():
    """What Triton parses from config.pbtxt is what the backend and the client expect."""
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    from nlu.triton.model_config import config_text, model_config

    config = text_format.Parse(config_text(model_config("x")), model_config_pb2.ModelConfig())
    assert config.name == "x"
    assert config.backend == contract.BACKEND
    assert config.max_batch_size == contract.MAX_BATCH_SIZE
    assert config.HasField("dynamic_batching")
    assert config.response_cache.enable, "repeated messages are answered from Triton's response cache"
    assert config.dynamic_batching.max_queue_delay_microseconds == 0
    assert config.version_policy.WhichOneof("policy_choice") == "all"
    assert not config.instance_group, "no instance_group: Triton makes one GPU instance per GPU"
    assert tuple(i.name for i in config.input) == contract.INPUTS
    assert all(i.data_type == model_config_pb2.TYPE_INT64 and list(i.dims) == [-1] for i in config.input)
    assert tuple(o.name for o in config.output) == contract.OUTPUTS
    assert all(o.data_type == model_config_pb2.TYPE_FP32 for o in config.output)
    assert [list(o.dims) for o in config.output] == [[-1], [-1, -1], [1]]  # intents, tags per piece, one score
    assert set(config.parameters) == {"cpu_threads", "gpu_precision"}
    assert config.parameters["gpu_precision"].string_value == "fp16"

"""Every YAML file we ship, read as its consumer reads it, in the environment its launcher gives it.

Why: Rasa substitutes ${VAR} only in plain YAML scalars. A quoted "Bearer ${ACTION_SERVER_TOKEN}" in
endpoints.yml was sent to the action server as written, and it refused every custom action. So here:
- Rasa's files go through Rasa's own reader with exactly the variables `make run`, docker-compose.yml or
  the rasa container of deploy/k8s/bot.yaml provide: each variable a file names is provided, no `${` is
  left in what Rasa gets, and the action server's header carries the token;
- docker-compose.yml is interpolated as compose does: what it requires is a secret deploy/README.md
  documents, and no `${` is left but the `$$`-escaped ones its containers' shells expand;
- kustomize substitutes nothing, so `${` in deploy/k8s stands only in containers' commands, whose
  shells (and Kubernetes' `$(VAR)`) expand it from the container's env, which must hold every such name.
Every tracked YAML file under deploy/ is one of these (test_every_shipped_yaml_file_is_checked).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Set, Tuple

import pytest
from rasa.core.utils import read_endpoints_from_path
from rasa.shared.utils.io import read_yaml_file

from bot import secrets
from tests.test_deploy_manifests import (
    _COMPOSE_VARIABLE,
    COMPOSE,
    DEPLOY,
    K8S,
    ROOT,
    _documents,
    _interpolate,
    _k8s_documents,
    _load,
)
from tests.test_k8s_manifests import _env

Env = Dict[str, str]
RASA_VARIABLE = re.compile(r"\$\{(\w+)")
# In a container's command: the shell's $NAME and ${NAME...}, and Kubernetes' own $(NAME) ($$(NAME) is literal).
SHELL_VARIABLE = re.compile(r"(?<!\$)\$(?:\{|\()?([A-Z_][A-Z0-9_]*)")
QUOTED = 'Authorization: "Bearer ${ACTION_SERVER_TOKEN}"'


def _strings(node: Any, where: str = "") -> Iterator[Tuple[str, str]]:
    """(where, text) for every string in a loaded YAML document, keys included."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(key, where)
            yield from _strings(value, f"{where}.{key}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _strings(item, f"{where}[{index}]")
    elif isinstance(node, str):
        yield where, node


def _dummies(names: Any) -> Env:
    return {name: f"dummy-{name.lower()}" for name in names}


# ---------------------------------------------------------------- the launchers' environments


def make_run_env() -> Env:
    """`python -m bot run`: the secrets it generates (bot/secrets.py)."""
    return _dummies(secrets.NAMES)


def compose_env() -> Env:
    """docker-compose.yml's `rasa` service: its `environment:` (each value a compose ${X:?...})."""
    return _dummies(_load(COMPOSE)["services"]["rasa"]["environment"])


def _rasa_container() -> Dict[str, Any]:
    found = [
        container
        for deployment in _documents(K8S / "bot.yaml")
        if deployment["kind"] == "Deployment"
        for container in deployment["spec"]["template"]["spec"]["containers"]
        if "rasa run" in " ".join(container.get("command", []) + container.get("args", []))
    ]
    assert len(found) == 1, f"expected one container running `rasa run` in deploy/k8s/bot.yaml, found {len(found)}"
    return found[0]


def k8s_env() -> Env:
    """The `env:` of the container in deploy/k8s/bot.yaml that runs `rasa run`."""
    return _dummies(_env(_rasa_container()))


# ---------------------------------------------------------------- Rasa's files


def check_rasa_file(path: Path, env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """`path` read by Rasa with exactly `env`: (b) each variable it names is in env, (a) no `${` survives."""
    named = {
        name for document in _documents(path) for _, text in _strings(document) for name in RASA_VARIABLE.findall(text)
    }
    for name in set(RASA_VARIABLE.findall(path.read_text())) - set(env):  # comments included: every name it might read
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert named <= set(env), f"{path.name} names {sorted(named - set(env))}, which its launcher does not provide"
    left = [f"{where}: {text!r}" for where, text in _strings(read_yaml_file(path)) if "${" in text]
    assert not left, f"{path.name}: Rasa gets these as written (a quoted ${{VAR}} is not substituted): {left}"
    if path.name == "endpoints.yml":
        action = read_endpoints_from_path(path).action
        assert action.headers["Authorization"] == f"Bearer {env[secrets.ACTION_SERVER_TOKEN]}"


RASA_FILES: List[Tuple[str, Callable[[], Env]]] = [
    ("endpoints.yml", make_run_env),
    ("deploy/endpoints.yml", compose_env),
    ("deploy/k8s/endpoints.yml", k8s_env),
    # In the image too (deploy/Dockerfile copies them), so under every launcher.
    *(
        (name, launcher)
        for name in ("credentials.yml", "config.yml", "domain.yml")
        for launcher in (make_run_env, compose_env, k8s_env)
    ),
]


@pytest.mark.parametrize("name, launcher", RASA_FILES, ids=[f"{n}-{f.__name__}" for n, f in RASA_FILES])
def test_rasa_reads_every_variable_substituted(name: str, launcher: Callable[[], Env], monkeypatch: pytest.MonkeyPatch):
    check_rasa_file(ROOT / name, launcher(), monkeypatch)


ENDPOINTS = [entry for entry in RASA_FILES if Path(entry[0]).name == "endpoints.yml"]
BROKEN = {
    "quoted": (QUOTED, r"as written"),
    "single-quoted": (QUOTED.replace('"', "'"), r"as written"),
    "unprovided": ("Authorization: Bearer ${ACTION_SERVER_TOKN}", r"does not provide"),
}


@pytest.mark.parametrize("name, launcher", ENDPOINTS, ids=[name for name, _ in ENDPOINTS])
@pytest.mark.parametrize("broken", sorted(BROKEN))
def test_the_check_fails_on_a_broken_copy(
    name: str, launcher: Callable[[], Env], broken: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The guard works: a copy with the header quoted (or naming a variable nobody sets) fails it."""
    line, message = BROKEN[broken]
    text = (ROOT / name).read_text()
    assert text.count("Authorization: Bearer ${ACTION_SERVER_TOKEN}") == 1
    copy = tmp_path / "endpoints.yml"
    copy.write_text(text.replace("Authorization: Bearer ${ACTION_SERVER_TOKEN}", line))
    with pytest.raises(AssertionError, match=message):
        check_rasa_file(copy, launcher(), monkeypatch)


# ---------------------------------------------------------------- docker compose


def _documented_secrets() -> Set[str]:
    """The names in deploy/README.md's secrets table (its rows start with | `NAME`)."""
    section = (DEPLOY / "README.md").read_text().split("\n## Secrets\n", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([A-Z][A-Z0-9_]*)` \|", section, re.M))


def test_compose_requires_only_documented_secrets_and_leaves_no_variable():
    documented = _documented_secrets()
    assert {secrets.ACTION_SERVER_TOKEN, "POSTGRES_PASSWORD"} <= documented
    # `$$` is compose's literal `$` (the container's shell expands what follows): split there, interpolate the parts.
    values = [(where, text.split("$$")) for where, text in _strings(_load(COMPOSE))]
    required = {
        name for _, parts in values for part in parts for name, op, _ in _COMPOSE_VARIABLE.findall(part) if op != "-"
    }
    assert required, "docker-compose.yml requires no variable: the parsing is broken"
    assert required <= documented, f"undocumented (deploy/README.md, Secrets): {sorted(required - documented)}"
    env = _dummies(documented)
    left = [
        f"{where}: {'$$'.join(parts)!r}" for where, parts in values if any("${" in _interpolate(p, env) for p in parts)
    ]
    assert not left, f"compose leaves these uninterpolated: {left}"


# ---------------------------------------------------------------- kubernetes (kustomize substitutes nothing)


def _containers(node: Any) -> Iterator[Dict[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("containers", "initContainers"):
                yield from value
            else:
                yield from _containers(value)
    elif isinstance(node, list):
        for item in node:
            yield from _containers(item)


def _commands(node: Any) -> Iterator[str]:
    """Every string of a container's command and args, its probes' and hooks' exec commands included."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("command", "args"):
                yield from (text for _, text in _strings(value))
            elif key != "env":
                yield from _commands(value)
    elif isinstance(node, list):
        for item in node:
            yield from _commands(item)


def test_k8s_container_commands_use_only_their_env():
    documents = _k8s_documents()
    containers = [container for document in documents for container in _containers(document)]
    assert any("${" in text for container in containers for text in _commands(container))
    for container in containers:
        used = {name for text in _commands(container) for name in SHELL_VARIABLE.findall(text)}
        missing = used - set(_env(container))
        assert not missing, f"container {container['name']} uses {sorted(missing)}, which its env: does not set"
    allowed = {text for container in containers for text in _commands(container)}
    for document in [_load(K8S / "kustomization.yaml"), *documents]:
        left = [f"{where}: {text!r}" for where, text in _strings(document) if "${" in text and text not in allowed]
        assert not left, f"kustomize sends these as written: {left}"


# ---------------------------------------------------------------- nothing shipped goes unchecked


@lru_cache(maxsize=None)
def _tracked_yaml() -> Set[str]:
    if not shutil.which("git") or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    listed = subprocess.run(["git", "ls-files", "--", "deploy"], cwd=ROOT, capture_output=True, text=True, check=True)
    return {path for path in listed.stdout.splitlines() if path.endswith((".yml", ".yaml"))}


def test_every_shipped_yaml_file_is_checked():
    kustomization = _load(K8S / "kustomization.yaml")
    k8s = {"kustomization.yaml", *kustomization["resources"]}
    checked = {name for name, _ in RASA_FILES} | {str(COMPOSE.relative_to(ROOT))}
    checked |= {str((K8S / name).relative_to(ROOT)) for name in k8s}
    assert _tracked_yaml() - checked == set(), "a YAML file under deploy/ that no test here reads"

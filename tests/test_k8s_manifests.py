"""deploy/k8s as Kubernetes would receive it: every document of the kustomization's output is valid for
Kubernetes 1.28 by its JSON schemas (kubernetes-validate, strict: no unknown field), and the scale-out
holds together: Rasa autoscales on a Redis lock store and pulls its model from the model server, Triton
replicas install their own model versions, every replicated Deployment has a disruption budget and no
ReadWriteOnce claim, every container asks for resources and runs unprivileged, and the NetworkPolicies
admit exactly the intended peers. Nothing is applied to a cluster.

The output is `kubectl kustomize` where kubectl is installed, else the same documents put together
here from kustomization.yaml (its resources, generators without their name hashes)."""

from __future__ import annotations

import base64
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Set, Tuple
from urllib.parse import urlparse

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "k8s"
# The newest schemas of kubernetes-validate 1.28, the newest release that works with rasa 3.6's jsonschema 4.17.
KUBERNETES_VERSION = "1.28"
NAME = "app.kubernetes.io/name"
Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

Document = Dict[str, Any]


# ---------------------------------------------------------------- the rendered kustomization


def _load_all(text: str) -> List[Document]:
    return [doc for doc in yaml.load_all(text, Loader=Loader) if doc]


def _generated(kustomization: Document) -> List[Document]:
    """The ConfigMaps and Secrets of the generators, as kustomize makes them (less the hash suffix)."""
    documents = []
    for kind, key in (("ConfigMap", "configMapGenerator"), ("Secret", "secretGenerator")):
        for generator in kustomization.get(key, []):
            data: Dict[str, str] = {}
            pairs = list(generator.get("literals", []))
            for env in generator.get("envs", []):  # the template stands in for secrets.env, as kubectl's copy does
                lines = (K8S / env.replace("secrets.env", "secrets.env.example")).read_text().splitlines()
                pairs += [line for line in lines if line.strip() and not line.startswith("#")]
            for pair in pairs:
                name, _, value = pair.partition("=")
                data[name] = value
            for file in generator.get("files", []):
                data[Path(file).name] = (K8S / file).read_text()
            if kind == "Secret":
                data = {name: base64.b64encode(value.encode()).decode() for name, value in data.items()}
            documents.append({"apiVersion": "v1", "kind": kind, "metadata": {"name": generator["name"]}, "data": data})
    return documents


def _render_here() -> List[Document]:
    kustomization = yaml.load((K8S / "kustomization.yaml").read_text(), Loader=Loader)
    resources = [doc for name in kustomization["resources"] for doc in _load_all((K8S / name).read_text())]
    return resources + _generated(kustomization)


def _render_with_kubectl(kubectl: str, scratch: Path) -> List[Document]:
    copy = scratch / "k8s"
    shutil.copytree(K8S, copy, ignore=shutil.ignore_patterns("secrets.env"))
    shutil.copy(K8S / "secrets.env.example", copy / "secrets.env")
    built = subprocess.run([kubectl, "kustomize", str(copy)], capture_output=True, text=True, timeout=60)
    assert built.returncode == 0, built.stderr
    return _load_all(built.stdout)


@pytest.fixture(scope="module")
def documents(tmp_path_factory) -> List[Document]:
    kubectl = shutil.which("kubectl")
    return _render_with_kubectl(kubectl, tmp_path_factory.mktemp("kustomize")) if kubectl else _render_here()


def _find(documents: List[Document], kind: str, name: str) -> Document:
    found = [d for d in documents if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name!r}, found {len(found)}"
    return found[0]


def _of_kind(documents: List[Document], kind: str) -> List[Document]:
    return [d for d in documents if d["kind"] == kind]


def _pod(deployment: Document) -> Document:
    return deployment["spec"]["template"]["spec"]


def _containers(pod: Document) -> Iterator[Document]:
    yield from pod.get("initContainers", [])
    yield from pod["containers"]


def _main(deployment: Document) -> Document:
    (container,) = _pod(deployment)["containers"]
    return container


def _env(container: Document) -> Dict[str, Document]:
    return {entry["name"]: entry for entry in container.get("env", [])}


def _config_value(documents: List[Document], container: Document, variable: str) -> str:
    ref = _env(container)[variable]["valueFrom"]["configMapKeyRef"]
    return _find(documents, "ConfigMap", ref["name"])["data"][ref["key"]]


def _replicas(documents: List[Document], deployment: Document) -> int:
    """The fewest pods the Deployment runs: its HorizontalPodAutoscaler's minimum where one owns it."""
    name = deployment["metadata"]["name"]
    for hpa in _of_kind(documents, "HorizontalPodAutoscaler"):
        if hpa["spec"]["scaleTargetRef"]["name"] == name:
            return hpa["spec"]["minReplicas"]
    return deployment["spec"].get("replicas", 1)


def _selects(selector: Document, labels: Dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, f"only matchLabels selectors are checked here: {selector}"
    return selector.get("matchLabels", {}).items() <= labels.items()


# ---------------------------------------------------------------- schemas


def _validator():
    """kubernetes-validate (requirements.lock): its JSON schemas for every Kubernetes release, offline."""
    return pytest.importorskip("kubernetes_validate", reason="kubernetes-validate is not installed: make setup")


def test_every_document_is_valid_kubernetes(documents):
    kubernetes_validate = _validator()
    kinds = {d["kind"] for d in documents}
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy"} <= kinds
    assert {"ConfigMap", "Secret", "PersistentVolumeClaim"} <= kinds
    for document in documents:
        try:
            kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            where = ".".join(str(part) for part in error.path)
            pytest.fail(f"{document['kind']} {document['metadata']['name']}: {where}: {error.message}")


def test_an_unknown_field_is_refused():
    """The validation is strict: a misspelt field fails instead of passing unnoticed."""
    kubernetes_validate = _validator()
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "x"},
        "spec": {"ports": [{"port": 80, "prot": 1}]},
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(service, KUBERNETES_VERSION, strict=True)


# ---------------------------------------------------------------- replicas


def test_rasa_autoscales_from_three_pods(documents):
    hpa = _find(documents, "HorizontalPodAutoscaler", "rasa")
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == ("apps/v1", "Deployment", "rasa")
    assert 3 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu" and metric["resource"]["target"]["type"] == "Utilization"
    rasa = _find(documents, "Deployment", "rasa")
    assert "replicas" not in rasa["spec"], "a replica count in the manifest resets the autoscaler's at every apply"
    assert _main(rasa)["resources"]["requests"]["cpu"], "CPU utilization is measured against the request"


@pytest.mark.parametrize("name, least", [("rasa", 3), ("triton", 2), ("actions", 2)])
def test_the_serving_deployments_run_replicas(documents, name: str, least: int):
    assert _replicas(documents, _find(documents, "Deployment", name)) >= least


def test_every_replicated_deployment_has_a_disruption_budget(documents):
    budgets = _of_kind(documents, "PodDisruptionBudget")
    for deployment in _of_kind(documents, "Deployment"):
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        mine = [b for b in budgets if _selects(b["spec"]["selector"], labels)]
        if _replicas(documents, deployment) > 1:
            assert len(mine) == 1, f"{deployment['metadata']['name']} has {len(mine)} PodDisruptionBudgets"
            assert mine[0]["spec"].get("maxUnavailable") == 1 or mine[0]["spec"].get("minAvailable", 0) >= 1
        else:
            assert not mine, f"a budget on the one pod of {deployment['metadata']['name']} would block node drains"


def test_no_replicated_deployment_mounts_a_read_write_once_claim(documents):
    for deployment in _of_kind(documents, "Deployment"):
        claims = [
            v["persistentVolumeClaim"]["claimName"]
            for v in _pod(deployment).get("volumes", [])
            if "persistentVolumeClaim" in v
        ]
        once = [
            c for c in claims if "ReadWriteOnce" in _find(documents, "PersistentVolumeClaim", c)["spec"]["accessModes"]
        ]
        if once:
            name = deployment["metadata"]["name"]
            assert _replicas(documents, deployment) == 1, f"{name} has replicas and mounts the ReadWriteOnce {once}"
            assert deployment["spec"]["strategy"]["type"] == "Recreate", (
                f"{name}: a rolling update would need the claim twice"
            )


# ---------------------------------------------------------------- every container


def test_every_container_asks_for_resources_and_bounds_its_memory(documents):
    for deployment in _of_kind(documents, "Deployment"):
        for container in _containers(_pod(deployment)):
            where = f"{deployment['metadata']['name']}/{container['name']}"
            resources = container.get("resources", {})
            assert {"cpu", "memory"} <= set(resources.get("requests", {})), f"{where} requests no cpu and memory"
            assert "memory" in resources.get("limits", {}), f"{where} has no memory limit"


def test_every_container_runs_unprivileged(documents):
    for deployment in _of_kind(documents, "Deployment"):
        pod = _pod(deployment)
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["securityContext"]["runAsUser"] > 0
        assert pod.get("automountServiceAccountToken") is False, "no pod here calls the Kubernetes API"
        for container in _containers(pod):
            context = container.get("securityContext", {})
            where = f"{deployment['metadata']['name']}/{container['name']}"
            assert context.get("allowPrivilegeEscalation") is False, where
            assert context.get("readOnlyRootFilesystem") is True, where
            assert context.get("capabilities") == {"drop": ["ALL"]}, where
            assert not context.get("privileged") and "runAsUser" not in context, where


# ---------------------------------------------------------------- triton


def test_triton_is_ready_by_its_health_endpoint_and_scraped_by_prometheus(documents):
    triton = _find(documents, "Deployment", "triton")
    container = _main(triton)
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert container["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": ports["http"]}
    annotations = triton["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(ports["metrics"]),
        "prometheus.io/path": "/metrics",
    }


def test_each_triton_pod_installs_the_model_versions_before_triton_starts(documents):
    """The init container runs `python -m nlu.install_cli` into the pod's own repository, which the
    triton container serves; it installs the archive Rasa serves."""
    triton = _find(documents, "Deployment", "triton")
    pod = _pod(triton)
    (init,) = pod["initContainers"]
    assert init["image"] == _find(documents, "Deployment", "rasa")["spec"]["template"]["spec"]["containers"][0]["image"]
    words = shlex.split(init["command"][-1])
    assert words[:5] == ["exec", "python", "-m", "nlu.install_cli", "--repository"]
    repository, archives = words[5], words[6:]
    assert archives == ["$TRITON_MODEL_ARCHIVES"]
    assert (ROOT / "nlu" / "install_cli.py").is_file()
    volumes = {v["name"]: v for v in pod["volumes"]}

    def volume_at(container: Document, path: str) -> str:
        (name,) = [m["name"] for m in container["volumeMounts"] if m["mountPath"] == path]
        return name

    served = volume_at(_main(triton), "/models")
    assert volume_at(init, repository) == served and "emptyDir" in volumes[served], "each pod has its own repository"
    installed = _config_value(documents, init, "TRITON_MODEL_ARCHIVES").split()
    assert _config_value(documents, _main(_find(documents, "Deployment", "rasa")), "RASA_MODEL_URL") in installed


# ---------------------------------------------------------------- rasa: lock store, tracker store, model server


def _rasa_endpoints(documents: List[Document]) -> Document:
    rasa = _find(documents, "Deployment", "rasa")
    args = _main(rasa)["args"]
    path = Path(args[args.index("--endpoints") + 1])
    (mount,) = [m for m in _main(rasa)["volumeMounts"] if Path(m["mountPath"]) == path.parent]
    (volume,) = [v for v in _pod(rasa)["volumes"] if v["name"] == mount["name"]]
    text = _find(documents, "ConfigMap", volume["configMap"]["name"])["data"][path.name]
    return yaml.load(text, Loader=Loader)


def test_rasa_locks_conversations_in_redis(documents):
    lock_store = _rasa_endpoints(documents)["lock_store"]
    assert lock_store["type"] == "redis" and lock_store["password"] == "${REDIS_PASSWORD}"
    service = _find(documents, "Service", lock_store["url"])
    assert lock_store["port"] in [p["port"] for p in service["spec"]["ports"]]
    redis = _find(documents, "Deployment", lock_store["url"])
    assert _selects({"matchLabels": service["spec"]["selector"]}, redis["spec"]["template"]["metadata"]["labels"])
    for container in (_main(redis), _main(_find(documents, "Deployment", "rasa"))):
        ref = _env(container)["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"]
        assert ref["name"].startswith("support-bot") and ref["key"] == "REDIS_PASSWORD" and not ref.get("optional")
    script = _main(redis)["args"][0]
    (server,) = [line for line in script.splitlines() if "redis-server" in line]
    assert "REDIS_PASSWORD" not in server, "the password on redis-server's command line"
    assert server.strip().startswith("exec redis-server - ") and 'requirepass "$REDIS_PASSWORD"' in script


def test_rasa_keeps_conversations_in_the_postgresql_of_the_secret(documents):
    tracker_store = _rasa_endpoints(documents)["tracker_store"]
    assert tracker_store["type"] == "bot.conversation_log.store.RedactingSQLTrackerStore"
    ref = _env(_main(_find(documents, "Deployment", "rasa")))["LOG_STORE_URL"]["valueFrom"]["secretKeyRef"]
    assert ref["name"].startswith("support-bot") and ref["key"] == "LOG_STORE_URL" and not ref.get("optional")


def test_rasa_pulls_its_model_from_the_model_server(documents):
    models = _rasa_endpoints(documents)["models"]
    assert models["url"] == "${RASA_MODEL_URL}" and models["wait_time_between_pulls"] > 0
    url = urlparse(_config_value(documents, _main(_find(documents, "Deployment", "rasa")), "RASA_MODEL_URL"))
    service = _find(documents, "Service", url.hostname)
    assert url.port in [p["port"] for p in service["spec"]["ports"]] and url.path.endswith(".tar.gz")
    server = _find(documents, "Deployment", url.hostname)
    config = _find(documents, "ConfigMap", "model-server")["data"]["model-server.conf"]
    location = url.path.rsplit("/", 1)[0] + "/"
    assert f"location {location} " in config and "limit_except GET" in config
    (archives,) = [m for m in _main(server)["volumeMounts"] if m["name"] == "archives"]
    assert f"alias {archives['mountPath']}/;" in config


# ---------------------------------------------------------------- network policies

ANYWHERE = "anywhere"
INGRESS = "namespace ingress-nginx"
PROMETHEUS = "prometheus pods in namespace monitoring"
DNS = {(ANYWHERE, "UDP", 53), (ANYWHERE, "TCP", 53)}

INGRESS_ALLOWED = {
    "rasa": {(INGRESS, "TCP", 5005)},
    "triton": {("rasa", "TCP", 8001), (PROMETHEUS, "TCP", 8002)},
    "actions": {("rasa", "TCP", 5055)},
    "redis": {("rasa", "TCP", 6379)},
    "model-server": {("rasa", "TCP", 8080), ("triton", "TCP", 8080)},
}
EGRESS_ALLOWED = {
    "rasa": {("triton", "TCP", 8001), ("actions", "TCP", 5055), ("redis", "TCP", 6379), ("model-server", "TCP", 8080)}
    | {(ANYWHERE, "TCP", 5432)}
    | DNS,
    "triton": {("model-server", "TCP", 8080)} | DNS,
    "actions": {(ANYWHERE, "TCP", 5432)} | DNS,
    "redis": set(),
    "model-server": set(),
}


def _peer(documents: List[Document], peer: Optional[Document]) -> str:
    """Who a `from`/`to` entry admits: one of our Deployments' pods, a named outside peer, or anywhere."""
    if peer is None:
        return ANYWHERE
    if set(peer) == {"podSelector"}:
        pods = [
            d["metadata"]["name"]
            for d in _of_kind(documents, "Deployment")
            if _selects(peer["podSelector"], d["spec"]["template"]["metadata"]["labels"])
        ]
        assert len(pods) == 1, f"{peer} selects the pods of {pods}, not exactly one Deployment's"
        return pods[0]
    namespace = peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
    if set(peer) == {"namespaceSelector"}:
        return f"namespace {namespace}"
    assert set(peer) == {"namespaceSelector", "podSelector"}, peer
    return f"{peer['podSelector']['matchLabels'][NAME]} pods in namespace {namespace}"


def _allowed(documents: List[Document], target: str, direction: str) -> Set[Tuple[str, str, int]]:
    """(peer, protocol, port) that the NetworkPolicies on the target's pods allow in one direction."""
    labels = _find(documents, "Deployment", target)["spec"]["template"]["metadata"]["labels"]
    policies = [d for d in _of_kind(documents, "NetworkPolicy") if _selects(d["spec"]["podSelector"], labels)]
    assert policies, f"no NetworkPolicy selects the {target} pods: anyone reaches them"
    peers_key = "from" if direction == "ingress" else "to"
    allowed = set()
    for policy in policies:
        assert direction.capitalize() in policy["spec"]["policyTypes"], f"{policy['metadata']['name']}: no {direction}"
        for rule in policy["spec"].get(direction, []):
            assert rule.get("ports"), f"{policy['metadata']['name']}: a rule for every port"
            for peer in rule.get(peers_key) or [None]:
                for port in rule["ports"]:
                    allowed.add((_peer(documents, peer), port.get("protocol", "TCP"), port["port"]))
    return allowed


@pytest.mark.parametrize("target", sorted(INGRESS_ALLOWED))
def test_network_policies_admit_only_the_intended_callers(documents, target: str):
    assert _allowed(documents, target, "ingress") == INGRESS_ALLOWED[target]


@pytest.mark.parametrize("source", sorted(EGRESS_ALLOWED))
def test_network_policies_let_each_pod_call_only_what_it_needs(documents, source: str):
    assert _allowed(documents, source, "egress") == EGRESS_ALLOWED[source]


def test_every_deployment_is_covered_by_the_policies(documents):
    assert (
        {d["metadata"]["name"] for d in _of_kind(documents, "Deployment")}
        == set(INGRESS_ALLOWED)
        == set(EGRESS_ALLOWED)
    )


def test_the_policies_open_each_port_that_a_pod_serves_and_a_service_offers(documents):
    """An admitted port is one the pod listens on (so a typo cannot leave a Service unreachable)."""
    for target, allowed in INGRESS_ALLOWED.items():
        container = _main(_find(documents, "Deployment", target))
        listening = {port["containerPort"] for port in container["ports"]}
        assert {port for _, _, port in allowed} <= listening, target
        service = _find(documents, "Service", target)
        assert {p["port"] for p in service["spec"]["ports"]} <= {port for _, _, port in allowed}, target

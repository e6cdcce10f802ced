"""`matcha up`: the embedded database, the signing keys and every implemented service, as one stack.

Services run as child processes (`python -m <module>`), each health-waited. On stop
they get SIGTERM (graceful drain), then the database stops. Children die with the
launcher even when it is killed (PR_SET_PDEATHSIG), and the single-launcher lock is
a kernel lock released on exit, so nothing stale survives to block the next start.
"""

import ctypes
import fcntl
import json
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from matcha.launcher.postgres import EmbeddedPostgres
from matcha.mesh import SERVICES, ServiceSpec
from matcha.runtime.auth import KeyPaths, TokenIssuer, ensure_signing_keys, ensure_workload_keys

logger = logging.getLogger(__name__)


# Torch's OpenMP threads sleep between operations instead of spinning: spinning after every forward pass
# took the cores from the other services of the stack (the gateway relaying the reply, for one).
TORCH_THREADS_WAIT = "PASSIVE"

# The tenant the local stack's service-to-service tokens are minted for (the demo's tenant).
LOCAL_TENANT = "demo"


class StackError(RuntimeError):
    pass


@dataclass
class RunningService:
    spec: ServiceSpec
    port: int
    process: subprocess.Popen
    log_path: Path

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


def _die_with_parent() -> None:
    # Linux: the child receives SIGTERM if the launcher dies, even by SIGKILL.
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Stack:
    def __init__(
        self,
        state_dir: Path,
        *,
        database_url: str | None = None,
        services: tuple[ServiceSpec, ...] = SERVICES,
        port_offset: int = 0,
        grace_period_seconds: float = 10.0,
        ready_timeout_seconds: float = 300.0,
    ) -> None:
        self.state_dir = state_dir.resolve()
        self._external_database_url = database_url
        self._specs = services
        self._port_offset = port_offset
        self._grace = grace_period_seconds
        self._ready_timeout = ready_timeout_seconds
        self._postgres: EmbeddedPostgres | None = None
        self._lock_file: TextIO | None = None
        self.database_url: str | None = None
        self._keys: KeyPaths | None = None
        self._workload_keys: KeyPaths | None = None
        self.running: list[RunningService] = []

    @property
    def keys(self) -> KeyPaths:
        """The key pair that signs callers' tokens (made or read when the stack starts)."""
        if self._keys is None:
            raise StackError("the stack has not started")
        return self._keys

    @keys.setter
    def keys(self, keys: KeyPaths) -> None:
        self._keys = keys

    @property
    def workload_keys(self) -> KeyPaths:
        if self._workload_keys is None:
            raise StackError("the stack has not started")
        return self._workload_keys

    @property
    def postgres_dir(self) -> Path:
        return self.state_dir / "postgres"

    @property
    def embedded_database(self) -> bool:
        return not self._external_database_url

    def start(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._acquire_lock()
        try:
            self.keys = ensure_signing_keys(self.state_dir / "keys")
            # Every service verifies the conductor's per-hop tokens with its public half.
            self._workload_keys = ensure_workload_keys(self.state_dir / "keys")
            if self._external_database_url:
                self.database_url = self._external_database_url
            else:
                self._postgres = EmbeddedPostgres(self.postgres_dir)
                self.database_url = self._postgres.start()
            wiring = self._wiring()
            for spec in self._specs:
                self.running.append(self._spawn(spec, wiring))
            for service in self.running:
                self._wait_until_serving(service)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for service in self.running:
            if service.process.poll() is None:
                service.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self._grace + 5
        for service in self.running:
            try:
                service.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                logger.warning("service did not stop in time; killing it", extra={"service": service.spec.name})
                service.process.kill()
                service.process.wait()
        self.running.clear()
        if self._postgres is not None:
            self._postgres.stop()
            self._postgres = None
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def exited(self) -> list[RunningService]:
        """Services whose process ended on its own."""
        return [service for service in self.running if service.process.poll() is not None]

    def _acquire_lock(self) -> None:
        lock_file = open(self.state_dir / "launcher.lock", "a+")  # noqa: SIM115 (held for the stack's life)
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock_file.close()
            raise StackError(f"another `matcha up` is already running with state dir {self.state_dir}") from None
        self._lock_file = lock_file

    def _address(self, spec: ServiceSpec) -> str:
        return f"127.0.0.1:{spec.port + self._port_offset}"

    def _wiring(self) -> dict[str, str]:
        """How the services find each other: every process gets the same map and reads what it needs."""
        addresses = {spec.grpc_service: self._address(spec) for spec in self._specs if spec.grpc_service}
        conductor = addresses.get("matcha.conductor.v1.ConductorService", "")
        embedding = addresses.get("matcha.embedding.v1.EmbeddingService", "")
        segmentation = addresses.get("matcha.segmentation.v1.SegmentationService", "")
        # The review service resumes runs and feeds outcomes to segmentation as a workload of the local tenant.
        token_dir = self.state_dir / "tokens" / "review"
        token_dir.mkdir(parents=True, exist_ok=True)
        token = TokenIssuer.from_file(self.keys.private).mint(
            subject="review-service", tenant=LOCAL_TENANT, roles=["review-service"], ttl_seconds=30 * 24 * 3600
        )
        token_path = token_dir / f"{LOCAL_TENANT}.jwt"
        token_path.write_text(token)
        token_path.chmod(0o600)
        return {
            "MATCHA_CONDUCTOR_ENDPOINTS": json.dumps({k: v for k, v in addresses.items() if v != conductor}),
            "MATCHA_GATEWAY_BACKENDS": json.dumps(addresses),
            "MATCHA_REVIEW_CONDUCTOR_ADDRESS": conductor,
            "MATCHA_REVIEW_SEGMENTATION_ADDRESS": segmentation,
            # Collections are read as the caller; an empty address leaves collection inputs UNAVAILABLE.
            "MATCHA_GENERATION_EMBEDDING_ADDRESS": embedding,
            "MATCHA_CLASSIFICATION_EMBEDDING_ADDRESS": embedding,
            "MATCHA_REVIEW_PUBLISH_DIR": str(self.state_dir / "published"),
        }

    def _spawn(self, spec: ServiceSpec, wiring: dict[str, str]) -> RunningService:
        log_dir = self.state_dir / "logs"
        log_dir.mkdir(exist_ok=True)
        log_path = log_dir / f"{spec.name}.log"
        port = spec.port + self._port_offset
        if self.database_url is None:
            raise StackError("the stack has not started")
        env = {
            **os.environ,
            **wiring,
            "MATCHA_DATABASE_URL": self.database_url,
            "MATCHA_STATE_DIR": str(self.state_dir),
            "MATCHA_LISTEN_ADDRESS": f"127.0.0.1:{port}",
            "MATCHA_AUTH_PUBLIC_KEY_FILE": str(self.keys.public),
            "MATCHA_AUTH_WORKLOAD_PUBLIC_KEY_FILE": str(self.workload_keys.public),
            "MATCHA_GRACE_PERIOD_SECONDS": str(self._grace),
        }
        env.setdefault("OMP_WAIT_POLICY", TORCH_THREADS_WAIT)
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", spec.module],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        return RunningService(spec, port, process, log_path)

    def _wait_until_serving(self, service: RunningService) -> None:
        deadline = time.monotonic() + self._ready_timeout
        is_serving = _grpc_serving if service.spec.grpc_service else _http_healthy
        while time.monotonic() < deadline:
            if service.process.poll() is not None:
                raise StackError(
                    f"{service.spec.name} exited with code {service.process.returncode}; see {service.log_path}"
                )
            if is_serving(service.address):
                return
            time.sleep(0.2)
        raise StackError(
            f"{service.spec.name} was not serving after {self._ready_timeout:.0f}s; see {service.log_path}"
        )


def _grpc_serving(address: str) -> bool:
    with grpc.insecure_channel(address) as channel:
        try:
            # The stubs' HealthStub declares no methods.
            reply = health_pb2_grpc.HealthStub(channel).Check(  # type: ignore[attr-defined]
                health_pb2.HealthCheckRequest(service=""), timeout=1.0
            )
        except grpc.RpcError:
            return False
    return reply.status == health_pb2.HealthCheckResponse.SERVING


def _http_healthy(address: str) -> bool:
    try:
        return httpx.get(f"http://{address}/healthz", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False

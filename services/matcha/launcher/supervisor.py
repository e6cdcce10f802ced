"""`matcha up`: the embedded database, the signing keys and every implemented service, as one stack.

Services run as child processes (`python -m <module>`), each health-waited. On stop
they get SIGTERM (graceful drain), then the database stops. Children die with the
launcher even when it is killed (PR_SET_PDEATHSIG), and the single-launcher lock is
a kernel lock released on exit, so nothing stale survives to block the next start.
"""

import ctypes
import fcntl
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from matcha.launcher.postgres import EmbeddedPostgres
from matcha.runtime.auth import KeyPaths, ensure_signing_keys

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    module: str
    port: int


# The implemented services, in start order. Services not built yet are not started.
SERVICES = (
    ServiceSpec("embedding", "matcha.embedding", 50052),
    ServiceSpec("conductor", "matcha.conductor", 50051),
    ServiceSpec("classification", "matcha.classification", 50053),
    ServiceSpec("generation", "matcha.generation", 50054),
    ServiceSpec("segmentation", "matcha.segmentation", 50055),
    ServiceSpec("review", "matcha.review", 50056),
)


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
        self._lock_file = None
        self.database_url: str | None = None
        self.keys: KeyPaths | None = None
        self.running: list[RunningService] = []

    def start(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._acquire_lock()
        try:
            self.keys = ensure_signing_keys(self.state_dir / "keys")
            if self._external_database_url:
                self.database_url = self._external_database_url
            else:
                self._postgres = EmbeddedPostgres(self.state_dir / "postgres")
                self.database_url = self._postgres.start()
            for spec in self._specs:
                self.running.append(self._spawn(spec))
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
        self._lock_file = open(self.state_dir / "launcher.lock", "a+")  # noqa: SIM115 (held for the stack's life)
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            self._lock_file = None
            raise StackError(f"another `matcha up` is already running with state dir {self.state_dir}") from None

    def _spawn(self, spec: ServiceSpec) -> RunningService:
        log_dir = self.state_dir / "logs"
        log_dir.mkdir(exist_ok=True)
        log_path = log_dir / f"{spec.name}.log"
        port = spec.port + self._port_offset
        env = {
            **os.environ,
            "MATCHA_DATABASE_URL": self.database_url,
            "MATCHA_STATE_DIR": str(self.state_dir),
            "MATCHA_LISTEN_ADDRESS": f"127.0.0.1:{port}",
            "MATCHA_AUTH_PUBLIC_KEY_FILE": str(self.keys.public),
            "MATCHA_GRACE_PERIOD_SECONDS": str(self._grace),
        }
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
        with grpc.insecure_channel(service.address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            while time.monotonic() < deadline:
                if service.process.poll() is not None:
                    raise StackError(
                        f"{service.spec.name} exited with code {service.process.returncode}; see {service.log_path}"
                    )
                try:
                    reply = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.RpcError:
                    pass
                time.sleep(0.2)
        raise StackError(
            f"{service.spec.name} was not serving after {self._ready_timeout:.0f}s; see {service.log_path}"
        )

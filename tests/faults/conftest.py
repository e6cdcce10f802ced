"""Fault injection: services on a PostgreSQL of their own that a test may restart, capabilities behind a
recording proxy that a test may cut, capability servers and service processes a test kills and starts again
on the same address."""

import asyncio
import collections
import os
import shutil
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry.sdk.trace import TracerProvider

from matcha.conductor.v1 import conductor_pb2, conductor_pb2_grpc
from matcha.launcher.postgres import EmbeddedPostgres
from matcha.runtime.access import configured_access_ledger
from matcha.runtime.server import MatchaServer, ServiceDefinition
from tests.classification.conftest import classification_settings  # noqa: F401 (fixtures)
from tests.conductor.conftest import conductor_settings, embedding_proxy  # noqa: F401
from tests.conductor.support import FORWARDED_HEADERS
from tests.generation.conftest import generation_settings, local_model  # noqa: F401
from tests.review.conftest import review, review_for, review_server, review_settings, start_review  # noqa: F401

IDEMPOTENCY_KEY = "x-matcha-idempotency-key"


@pytest.fixture
def restartable_postgres(state_dir) -> Iterator[EmbeddedPostgres]:
    """A server of its own, kept on disk across a restart (same socket, same URL)."""
    data_dir = state_dir / f"faults-{uuid.uuid4().hex[:8]}" / "postgres"
    postgres = EmbeddedPostgres(data_dir)
    postgres.start()
    yield postgres
    postgres.stop()
    shutil.rmtree(data_dir.parent, ignore_errors=True)


class CuttingProxy(grpc.GenericRpcHandler):
    """A byte-level gRPC proxy in front of a capability that counts what the capability answered and can lose a
    reply on purpose.

    `cut_after(method, n)`: the call after the first `n` calls of `method` is forwarded and answered by the
    capability, then its reply is held until the test takes the proxy (and the capability) down, so the caller
    sees its connection drop after the capability did the work: the worst moment for duplicates. `answered`
    counts, per idempotency key, the calls the capability answered with OK.
    """

    def __init__(self, upstream: str, port: int) -> None:
        self._upstream = upstream
        self.port = port
        self._channel: grpc.aio.Channel | None = None
        self._server: grpc.aio.Server | None = None
        self.answered: collections.Counter[tuple[str, str]] = collections.Counter()
        self._cut: tuple[str, int] | None = None
        self._seen: collections.Counter[str] = collections.Counter()
        self.cut_reached = asyncio.Event()

    def cut_after(self, method_suffix: str, calls: int) -> None:
        self._cut = (method_suffix, calls)

    def service(self, handler_call_details):
        method = handler_call_details.method

        async def forward(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            metadata = {key: value for key, value in context.invocation_metadata() if isinstance(value, str)}
            outgoing = [
                (key, value) for key, value in metadata.items() if key.startswith("x-") or key in FORWARDED_HEADERS
            ]
            cutting = False
            if self._cut is not None and method.endswith(self._cut[0]):
                self._seen[self._cut[0]] += 1
                cutting = self._seen[self._cut[0]] == self._cut[1] + 1
            try:
                call = self._channel.unary_unary(method)(request, metadata=outgoing, timeout=context.time_remaining())
                reply = await call
            except grpc.aio.AioRpcError as error:
                await context.abort(error.code(), error.details() or "", tuple(error.trailing_metadata() or ()))
            self.answered[(method.rsplit("/", 1)[-1], metadata.get(IDEMPOTENCY_KEY, ""))] += 1
            if cutting:
                self.cut_reached.set()
                await asyncio.Event().wait()  # the reply is lost with the connection, when the test cuts it
            return reply

        return grpc.unary_unary_rpc_method_handler(forward)

    async def start(self) -> None:
        self._channel = grpc.aio.insecure_channel(self._upstream)
        self._server = grpc.aio.server()
        self._server.add_generic_rpc_handlers((self,))
        self._server.add_insecure_port(f"127.0.0.1:{self.port}")
        await self._server.start()

    async def stop(self) -> None:
        """No grace: calls in progress (the held reply among them) are cut with the connections."""
        await self._server.stop(0)
        await self._channel.close()

    def answered_keys(self, method: str, run_id: str) -> collections.Counter[str]:
        return collections.Counter(
            {key: count for (name, key), count in self.answered.items() if name == method and key.startswith(run_id)}
        )


async def wait_until_serving(address: str, process: asyncio.subprocess.Process | None = None) -> None:
    async with grpc.aio.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for _ in range(600):
            assert process is None or process.returncode is None, f"the process serving {address} exited"
            try:
                reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=1.0)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"nothing served at {address}")


class RestartableServer:
    """A capability's real server, in this process (its model loaded once for the session), on a fixed port:
    `kill` stops it with no grace (calls in progress are cut, its pools closed), `start` builds it afresh."""

    def __init__(self, build: Callable[[], ServiceDefinition], settings, verifier) -> None:
        self._build, self._settings, self._verifier = build, settings, verifier
        self._server: MatchaServer | None = None

    async def start(self) -> None:
        self._server = MatchaServer(
            self._build(),
            listen_address=self._settings.listen_address,
            verifier=self._verifier,
            clearance=self._settings.service_clearance,
            tracer_provider=TracerProvider(),
            access_ledger=configured_access_ledger(self._settings),
            grace_period_seconds=0.0,
        )
        await self._server.start()

    async def kill(self) -> None:
        if self._server is not None:
            await self._server.stop()
            self._server = None


class ServiceProcess:
    """A service as its own process (`python -m <module>`), killed with SIGKILL and started again on the same
    address; its output goes to a log file, read when it fails to start."""

    def __init__(self, module: str, environment: dict[str, str], address: str, log_path: Path) -> None:
        self._module, self._environment, self.address, self._log_path = module, environment, address, log_path
        self._process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        with self._log_path.open("ab") as log:
            self._process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", self._module, env={**os.environ, **self._environment}, stdout=log, stderr=log
            )
        try:
            await wait_until_serving(self.address, self._process)
        except AssertionError as failure:
            exit_code = self._process.returncode
            await self.kill()
            raise AssertionError(f"{failure} (exit code {exit_code}): {self._log_path.read_text()[-4000:]}") from None

    async def kill(self) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.send_signal(signal.SIGKILL)
            await self._process.wait()
        self._process = None


@pytest.fixture
async def service_processes(tmp_path) -> AsyncIterator[Callable[..., ServiceProcess]]:
    """`service_processes(module, environment, address)`: a process killed at the end of the test if alive."""
    started: list[ServiceProcess] = []

    def make(module: str, environment: dict[str, str], address: str) -> ServiceProcess:
        process = ServiceProcess(module, environment, address, tmp_path / f"{module}-{len(started)}.log")
        started.append(process)
        return process

    yield make
    for process in started:
        await process.kill()


@pytest.fixture
def process_environment(isolated_database, state_dir, key_paths, workload_key_paths) -> dict[str, str]:
    """What every service process of a fault test shares: the test's database, the session's keys."""
    return {
        "MATCHA_DATABASE_URL": isolated_database,
        "MATCHA_STATE_DIR": str(state_dir),
        "MATCHA_AUTH_PUBLIC_KEY_FILE": str(key_paths.public),
        "MATCHA_AUTH_WORKLOAD_PUBLIC_KEY_FILE": str(workload_key_paths.public),
        "MATCHA_LOG_LEVEL": "WARNING",
    }


async def assert_ledgers_verify(conductor_channel: grpc.aio.Channel) -> None:
    """The conductor's hops ledger and the access ledger of the services on the same database both verify."""
    auditor = conductor_pb2_grpc.ConductorServiceStub(conductor_channel)
    for ledger in (conductor_pb2.AUDIT_LEDGER_HOPS, conductor_pb2.AUDIT_LEDGER_ACCESSES):
        verified = await auditor.VerifyAudit(conductor_pb2.VerifyAuditRequest(ledger=ledger))
        assert verified.intact and verified.records_checked > 0, (conductor_pb2.AuditLedger.Name(ledger), verified)

"""Helpers of the conductor tests: waiting for runs, decoding refusals, a recording proxy."""

import asyncio

import grpc

from matcha.conductor.v1 import conductor_pb2
from tests.support import struct

EMBEDDING_SERVICE = "matcha.embedding.v1.EmbeddingService"
TERMINAL = (conductor_pb2.RUN_STATE_SUCCEEDED, conductor_pb2.RUN_STATE_FAILED, conductor_pb2.RUN_STATE_CANCELLED)


async def wait_for_run(stub, run_id: str, states=TERMINAL, within_seconds: float = 30.0) -> conductor_pb2.Run:
    """Polls GetRun (full view) until the run reaches one of `states`."""
    deadline = asyncio.get_running_loop().time() + within_seconds
    while True:
        reply = await stub.GetRun(conductor_pb2.GetRunRequest(run_id=run_id, view=conductor_pb2.RUN_VIEW_FULL))
        if reply.run.state in states:
            return reply.run
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"run stayed {conductor_pb2.RunState.Name(reply.run.state)}")
        await asyncio.sleep(0.05)


FORWARDED_HEADERS = ("authorization", "traceparent", "tracestate")


class RecordingProxy(grpc.GenericRpcHandler):
    """A byte-level gRPC proxy in front of a real service, recording what each call carried.

    Tests read what the capability actually received (request bytes and metadata), and can
    stop and restart the proxy to cut the capability off mid-run.
    """

    def __init__(self, upstream: str) -> None:
        self._upstream = upstream
        self._channel: grpc.aio.Channel | None = None
        self._server: grpc.aio.Server | None = None
        self.port = 0
        self.calls: list[tuple[str, dict[str, str], bytes]] = []

    def service(self, handler_call_details):
        method = handler_call_details.method

        async def forward(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            metadata = {key: value for key, value in context.invocation_metadata() if isinstance(value, str)}
            self.calls.append((method, metadata, request))
            outgoing = [
                (key, value) for key, value in metadata.items() if key.startswith("x-") or key in FORWARDED_HEADERS
            ]
            try:
                return await self._channel.unary_unary(method)(
                    request, metadata=outgoing, timeout=context.time_remaining()
                )
            except grpc.aio.AioRpcError as error:
                await context.abort(error.code(), error.details() or "", error.trailing_metadata())

        return grpc.unary_unary_rpc_method_handler(forward)

    async def start(self) -> None:
        self._channel = grpc.aio.insecure_channel(self._upstream)
        self._server = grpc.aio.server()
        self._server.add_generic_rpc_handlers((self,))
        self.port = self._server.add_insecure_port(f"127.0.0.1:{self.port}")
        await self._server.start()

    async def stop(self) -> None:
        await self._server.stop(0)
        await self._channel.close()

    def received(self, method_suffix: str) -> list[tuple[dict[str, str], bytes]]:
        return [(metadata, request) for method, metadata, request in self.calls if method.endswith(method_suffix)]


async def start(stub, plan_name: str, metadata=(), **inputs) -> conductor_pb2.Run:
    reply = await stub.StartRun(
        conductor_pb2.StartRunRequest(plan_name=plan_name, inputs=struct(inputs)), metadata=metadata
    )
    return reply.run


def step(run: conductor_pb2.Run, step_id: str) -> conductor_pb2.StepRun:
    return next(item for item in run.steps if item.step_id == step_id)


async def events_of(stub, run_id: str) -> list[conductor_pb2.RunEvent]:
    return [reply.event async for reply in stub.WatchRun(conductor_pb2.WatchRunRequest(run_id=run_id))]

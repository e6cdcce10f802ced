"""Per-tenant limits: an abusive tenant is refused with retry info, the others are served, the service stays up."""

import asyncio

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from matcha.embedding.app import build_embedding_service
from matcha.embedding.v1 import embedding_pb2, embedding_pb2_grpc
from matcha.runtime.client import error_details
from matcha.runtime.errors import ResourceExhausted
from matcha.runtime.limits import TenantLimiter, TenantLimits

LIST = embedding_pb2.ListCollectionsRequest()


async def _outcome(stub) -> grpc.StatusCode | grpc.aio.AioRpcError:
    try:
        await stub.ListCollections(LIST)
    except grpc.aio.AioRpcError as error:
        return error
    return grpc.StatusCode.OK


async def test_an_abusive_tenant_is_refused_with_retry_info_while_another_is_served(
    embedding_settings, serve, local_encoder, connect
):
    settings = embedding_settings(tenant_calls_per_second=2, tenant_burst=3, max_concurrent_rpcs=64)
    async with serve(build_embedding_service(settings, encoder=local_encoder), settings) as server:
        abusive = embedding_pb2_grpc.EmbeddingServiceStub(connect(server, "tenant-abusive"))
        polite = embedding_pb2_grpc.EmbeddingServiceStub(connect(server, "tenant-polite"))
        outcomes = await asyncio.gather(*(_outcome(abusive) for _ in range(12)))
        refusals = [error_details(outcome) for outcome in outcomes if outcome != grpc.StatusCode.OK]
        assert 3 <= outcomes.count(grpc.StatusCode.OK) <= 5  # the burst, and what refilled meanwhile
        assert refusals and all(refusal.code == grpc.StatusCode.RESOURCE_EXHAUSTED for refusal in refusals)
        assert {refusal.reason for refusal in refusals} == {"TENANT_RATE_LIMIT"}
        assert all(0 < refusal.retry_after_seconds <= 0.5 for refusal in refusals)

        assert await _outcome(polite) == grpc.StatusCode.OK  # its own bucket
        await asyncio.sleep(max(refusal.retry_after_seconds for refusal in refusals) + 0.1)
        assert await _outcome(abusive) == grpc.StatusCode.OK  # served again once it waited as told

        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        assert health.status == health_pb2.HealthCheckResponse.SERVING


def test_concurrent_calls_are_counted_per_tenant_and_released():
    limiter = TenantLimiter(TenantLimits(max_concurrent_calls=2), clock=lambda: 0.0)
    first, second = limiter.admit("greedy"), limiter.admit("greedy")
    with pytest.raises(ResourceExhausted) as refused:
        limiter.admit("greedy")
    assert refused.value.reason == "TENANT_CONCURRENCY_LIMIT" and refused.value.retry_after_seconds > 0
    limiter.admit("other")()  # another tenant is not affected
    first()
    first()  # releasing twice counts once
    limiter.admit("greedy")
    with pytest.raises(ResourceExhausted):
        limiter.admit("greedy")
    second()


def test_the_rate_refills_at_its_rate_up_to_the_burst():
    now = [0.0]
    limiter = TenantLimiter(TenantLimits(calls_per_second=10, burst=2), clock=lambda: now[0])
    limiter.admit("t")(), limiter.admit("t")()
    with pytest.raises(ResourceExhausted) as refused:
        limiter.admit("t")
    assert refused.value.reason == "TENANT_RATE_LIMIT"
    assert refused.value.retry_after_seconds == pytest.approx(0.1)
    now[0] = 10.0  # a long pause refills the burst, not more
    limiter.admit("t")(), limiter.admit("t")()
    with pytest.raises(ResourceExhausted):
        limiter.admit("t")

"""An attacker with one open events stream cannot push more than its tenant's call rate: each message after the
first takes a token, the stream is slowed to the rate rather than refused half-way, and the tenant's other calls
find its bucket spent while another tenant is served."""

import asyncio
import time
from datetime import UTC, datetime

import grpc
import pytest

from matcha.runtime.client import error_details
from matcha.segmentation.app import build_segmentation_service
from matcha.segmentation.v1 import segmentation_pb2 as pb
from matcha.segmentation.v1 import segmentation_pb2_grpc

from .conftest import POLICY, timestamp

RATE, MESSAGES = 5, 16


async def test_one_stream_carries_no_more_than_the_tenants_rate(segmentation_settings, serve, connect, tenant):
    settings = segmentation_settings(tenant_calls_per_second=RATE, tenant_burst=RATE)
    async with serve(build_segmentation_service(settings), settings) as server:
        flooder = segmentation_pb2_grpc.SegmentationServiceStub(connect(server, tenant))
        neighbour = segmentation_pb2_grpc.SegmentationServiceStub(connect(server, f"{tenant}-neighbour"))
        at = timestamp(datetime.now(UTC))

        async def messages():
            for number in range(MESSAGES):
                event = pb.BehaviourEvent(id=f"e{number}", customer_id="c1", type=pb.EVENT_TYPE_VISIT, time=at)
                yield pb.IngestEventsRequest(events=[event], default_policy=POLICY)

        started = time.perf_counter()
        stream = asyncio.ensure_future(flooder.IngestEvents(messages()))
        await asyncio.sleep(0.5)
        # Mid-stream, the flooding tenant's own bucket is spent; its neighbour's is whole.
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await flooder.GetCustomer(pb.GetCustomerRequest(customer_id="c1"))
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert error_details(refused.value).reason == "TENANT_RATE_LIMIT"
        with pytest.raises(grpc.aio.AioRpcError) as unknown:
            await neighbour.GetCustomer(pb.GetCustomerRequest(customer_id="c1"))
        assert unknown.value.code() == grpc.StatusCode.NOT_FOUND  # served: another tenant's customer is unknown
        reply = await stream
        elapsed = time.perf_counter() - started

    # Every message stored, none refused: the stream was slowed, not broken.
    assert reply.accepted == MESSAGES and reply.duplicates == 0
    # The admission paid for the first message and the burst for a few more; the rest came at the rate (the
    # refused GetCustomer took no token), so the last was read no sooner than (16 - 5) / 5 s after the start.
    assert elapsed >= (MESSAGES - RATE) / RATE - 0.1, elapsed

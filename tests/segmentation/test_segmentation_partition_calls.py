"""Calls between segmentation replicas carry out a call another replica admitted: the per-tenant call rate does
not meter them (it meters the stream that brought the events), while every other method stays metered."""

from datetime import UTC, datetime

import grpc
import pytest

from matcha.runtime.client import error_details
from matcha.segmentation.app import build_segmentation_service
from matcha.segmentation.v1 import segmentation_pb2 as pb
from matcha.segmentation.v1 import segmentation_pb2_grpc

from .conftest import POLICY, timestamp


async def test_apply_events_is_not_metered_by_the_call_rate_but_other_methods_are(
    segmentation_settings, serve, connect, tenant
):
    settings = segmentation_settings(tenant_calls_per_second=1, tenant_burst=1)
    async with serve(build_segmentation_service(settings), settings) as server:
        channel = connect(server, tenant)
        peer = segmentation_pb2_grpc.SegmentationPartitionServiceStub(channel)
        stub = segmentation_pb2_grpc.SegmentationServiceStub(channel)
        at = timestamp(datetime.now(UTC))
        for number in range(5):  # one replica owns every slot: the parts are applied here
            reply = await peer.ApplyEvents(
                pb.ApplyEventsRequest(
                    events=[pb.BehaviourEvent(id=f"e{number}", customer_id="c1", type=pb.EVENT_TYPE_VISIT, time=at)],
                    default_policy=POLICY,
                )
            )
            assert reply.totals.accepted == 1
        await stub.GetCustomer(pb.GetCustomerRequest(customer_id="c1"))
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.GetCustomer(pb.GetCustomerRequest(customer_id="c1"))
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert error_details(refused.value).reason == "TENANT_RATE_LIMIT"

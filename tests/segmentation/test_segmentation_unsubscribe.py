"""Unsubscriptions over real gRPC and PostgreSQL: recorded once, kept through a CRM re-import that knows nothing
of them, honoured by audiences, refused for bad input, and not open to every role."""

import grpc
import pytest

from matcha.segmentation.v1 import segmentation_pb2 as pb
from tests.support import refused

from .conftest import POLICY


async def reachable(stub, customer_ids: list[str], channel: str) -> tuple[list[str], pb.SegmentMembersSummary]:
    members, summary = [], None
    async for message in stub.StreamSegmentMembers(
        pb.StreamSegmentMembersRequest(customer_ids=customer_ids, channel=channel)
    ):
        members += message.customer_ids
        if message.HasField("summary"):
            summary = message.summary
    return members, summary


async def test_an_unsubscription_outlives_the_next_import_and_leaves_the_audience(stub_for, tenant):
    stub = stub_for(tenant)
    crm_export = [
        pb.Customer(id="u-1", policy=POLICY, opted_out_channels=["sms"]),
        pb.Customer(id="u-2", policy=POLICY),
    ]
    await stub.IngestCustomers(pb.IngestCustomersRequest(customers=crm_export))

    first = await stub.Unsubscribe(pb.UnsubscribeRequest(customer_id="u-1", channel="email"))
    assert (list(first.unsubscribed_channels), first.changed) == (["email"], True)
    again = await stub.Unsubscribe(pb.UnsubscribeRequest(customer_id="u-1", channel="email"))
    assert (list(again.unsubscribed_channels), again.changed) == (["email"], False)

    # The CRM syncs again, its export unchanged: it has not heard of the unsubscription.
    await stub.IngestCustomers(pb.IngestCustomersRequest(customers=crm_export))
    customer = (await stub.GetCustomer(pb.GetCustomerRequest(customer_id="u-1"))).customer
    assert list(customer.unsubscribed_channels) == ["email"]
    assert list(customer.opted_out_channels) == ["sms"]

    members, summary = await reachable(stub, ["u-1", "u-2"], "email")
    assert members == ["u-2"] and summary.opted_out == 1
    members, _ = await reachable(stub, ["u-1", "u-2"], "push")
    assert members == ["u-1", "u-2"]


async def test_bad_unsubscriptions_are_refused(stub_for, tenant):
    stub = stub_for(tenant)
    await stub.IngestCustomers(pb.IngestCustomersRequest(customers=[pb.Customer(id="u-3", policy=POLICY)]))
    details = await refused(stub.Unsubscribe(pb.UnsubscribeRequest(customer_id="", channel="E-mail")))
    assert set(details.field_violations) == {"customer_id", "channel"}
    details = await refused(
        stub.Unsubscribe(pb.UnsubscribeRequest(customer_id="nobody", channel="email")), grpc.StatusCode.NOT_FOUND
    )
    assert details.reason == "CUSTOMER_NOT_FOUND"


@pytest.mark.parametrize("roles", [("analyst",), ("author",)])
async def test_a_reader_cannot_unsubscribe_customers(stub_for, tenant, roles):
    await stub_for(tenant).IngestCustomers(pb.IngestCustomersRequest(customers=[pb.Customer(id="u-4", policy=POLICY)]))
    reader = stub_for(tenant, roles=roles)
    await refused(
        reader.Unsubscribe(pb.UnsubscribeRequest(customer_id="u-4", channel="email")), grpc.StatusCode.PERMISSION_DENIED
    )
    customer = (await stub_for(tenant).GetCustomer(pb.GetCustomerRequest(customer_id="u-4"))).customer
    assert list(customer.unsubscribed_channels) == []

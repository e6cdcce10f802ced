"""Data discovery on IngestCustomers: attributes holding personal data make the customer PERSONAL."""

from matcha.common.v1 import common_pb2
from matcha.runtime.governance import DataClass
from matcha.segmentation.v1 import segmentation_pb2 as pb
from tests.support import struct


async def test_customers_with_personal_attributes_are_raised_never_lowered(stub_for, tenant):
    # An attack on the class: contact details declared INTERNAL so that INTERNAL readers get them.
    writer = stub_for(tenant)
    request = pb.IngestCustomersRequest(
        customers=[
            pb.Customer(id="c1", attributes=struct({"contact": "Nadia Cherif, nadia.cherif@example.fr"})),
            pb.Customer(id="c2", attributes=struct({"tier": "gold", "city": "Lyon"})),
            pb.Customer(id="c3", attributes=struct({"notes": {"phone": "+44 20 7946 0958"}})),
        ]
    )
    reply = await writer.IngestCustomers(request, metadata=[("x-matcha-idempotency-key", f"{tenant}/discovery")])
    assert (reply.inserted, reply.raised_to_personal) == (3, 2)
    # A retry (the same request under its key) is answered from the stored reply, count included.
    replayed = await writer.IngestCustomers(request, metadata=[("x-matcha-idempotency-key", f"{tenant}/discovery")])
    assert (replayed.inserted, replayed.raised_to_personal) == (3, 2)

    reader = stub_for(tenant, data_class=DataClass.PERSONAL)
    classes = {
        customer_id: (
            await reader.GetCustomer(pb.GetCustomerRequest(customer_id=customer_id))
        ).customer.policy.data_class
        for customer_id in ("c1", "c2", "c3")
    }
    assert classes == {
        "c1": common_pb2.DATA_CLASS_PERSONAL,
        "c2": common_pb2.DATA_CLASS_INTERNAL,
        "c3": common_pb2.DATA_CLASS_PERSONAL,
    }

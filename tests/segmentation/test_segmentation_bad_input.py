"""Every bad request is refused with field violations, writes nothing, and the service keeps serving."""

import math
from datetime import UTC, datetime

import grpc
import pytest

from matcha.common.v1 import common_pb2
from matcha.runtime.governance import DataClass
from matcha.segmentation.v1 import segmentation_pb2 as pb
from tests.support import refused

from .conftest import POLICY, ingest_cdnow, timestamp

WHEN = timestamp(datetime(1998, 1, 1, tzinfo=UTC))


@pytest.fixture
async def stub(stub_for, tenant):
    stub = stub_for(tenant)
    await ingest_cdnow(stub, 40)
    return stub


async def frequency_of(stub, customer_id="00001") -> float:
    return (await stub.GetCustomer(pb.GetCustomerRequest(customer_id=customer_id))).features["frequency"]


def transaction(tid, customer="00001", amount=10.0, **fields):
    return pb.Transaction(id=tid, customer_id=customer, time=WHEN, amount=amount, **fields)


@pytest.mark.parametrize(
    ("batch", "field"),
    [
        ([], "transactions"),
        ([transaction("a"), transaction("a")], "transactions[1].id"),
        ([transaction("a"), transaction("b", amount=-1.0)], "transactions[1].amount"),
        ([transaction("a", amount=math.nan)], "transactions[0].amount"),
        ([transaction("a", quantity=math.inf)], "transactions[0].quantity"),
        ([pb.Transaction(id="a", customer_id="00001", amount=1.0)], "transactions[0].time"),
        ([transaction("a"), transaction("b", customer="nobody")], "transactions[1].customer_id"),
    ],
)
async def test_bad_transactions_write_nothing(stub, batch, field):
    before = await frequency_of(stub)
    details = await refused(stub.IngestTransactions(pb.IngestTransactionsRequest(transactions=batch)))
    assert list(details.field_violations) == [field]
    assert await frequency_of(stub) == before


async def test_every_violation_is_reported_at_once(stub):
    details = await refused(
        stub.IngestTransactions(
            pb.IngestTransactionsRequest(transactions=[transaction("", amount=-2), pb.Transaction(id="b")])
        )
    )
    assert set(details.field_violations) == {
        "transactions[0].id",
        "transactions[0].amount",
        "transactions[1].customer_id",
        "transactions[1].time",
    }


async def test_bad_customers(stub):
    details = await refused(
        stub.IngestCustomers(
            pb.IngestCustomersRequest(
                customers=[
                    pb.Customer(id="x", features={"frequency": 1.0, "Bad Name": 2.0}),
                    pb.Customer(id="y", features={"score": math.nan}),
                    pb.Customer(id="x"),
                ]
            )
        )
    )
    assert details.field_violations == {
        "customers[0].features[frequency]": "is a built-in feature name",
        "customers[0].features[Bad Name]": "lowercase letters, digits and '_', from a letter",
        "customers[1].features[score]": "must be a finite number",
        "customers[2].id": "duplicates customers[0].id",
    }
    await refused(stub.GetCustomer(pb.GetCustomerRequest(customer_id="y")), grpc.StatusCode.NOT_FOUND)


async def test_feature_names_with_a_nul_byte_are_refused(stub):
    details = await refused(stub.BuildSegmentation(pb.BuildSegmentationRequest(name="v", features=["a\x00"])))
    assert set(details.field_violations) == {"features[0]"}


async def test_identifiers_with_a_nul_byte_are_refused(stub, stub_for, tenant):
    # PostgreSQL text cannot hold NUL: sent to the database, these were internal errors.
    admin = stub_for(tenant, roles=("admin",))
    details = await refused(admin.EraseSubject(pb.EraseSubjectRequest(subject_id="a\x00")))
    assert set(details.field_violations) == {"subject_id"}
    watch = stub.WatchSegmentChanges(pb.WatchSegmentChangesRequest(segment_ids=["s1", "b\x00"], after_sequence=0))
    details = await refused(watch.read())
    assert set(details.field_violations) == {"segment_ids[1]"}


async def test_bad_builds_store_no_version(stub):
    details = await refused(
        stub.BuildSegmentation(
            pb.BuildSegmentationRequest(
                name="Bad Name", features=["recency_days", "loyalty"], transforms={"monetary": 2}
            )
        )
    )
    assert set(details.field_violations) == {"name", "features[1]", "transforms[monetary]"}
    details = await refused(stub.BuildSegmentation(pb.BuildSegmentationRequest(name="v", kmeans=pb.KMeansConfig(k=41))))
    assert details.field_violations == {"kmeans.k": "larger than the population (40)"}
    details = await refused(
        stub.BuildSegmentation(
            pb.BuildSegmentationRequest(
                name="v",
                rules=pb.RulesConfig(
                    rules=[
                        pb.SegmentRule(id="vip", condition="monetary >"),
                        pb.SegmentRule(id="fans", condition="loyalty > 2.0"),
                        pb.SegmentRule(id="odd", condition="monetary + 1.0"),
                    ]
                ),
            )
        )
    )
    assert set(details.field_violations) == {"rules.rules[0].condition", "rules.rules[1].condition"}
    details = await refused(
        stub.BuildSegmentation(
            pb.BuildSegmentationRequest(
                name="v", rules=pb.RulesConfig(rules=[pb.SegmentRule(id="odd", condition="monetary + 1.0")])
            )
        )
    )
    assert "boolean" in details.field_violations["rules.rules[0].condition"]
    listed = await stub.ListSegmentations(pb.ListSegmentationsRequest())
    assert list(listed.segmentations) == []


async def test_empty_population_is_a_failed_precondition(stub_for, tenant):
    details = await refused(
        stub_for(tenant).BuildSegmentation(pb.BuildSegmentationRequest(name="v")), grpc.StatusCode.FAILED_PRECONDITION
    )
    assert details.reason == "POPULATION_TOO_SMALL"


async def test_unknown_segmentation_segment_and_customer(stub):
    details = await refused(stub.GetSegmentation(pb.GetSegmentationRequest(name="nope")), grpc.StatusCode.NOT_FOUND)
    assert details.reason == "SEGMENTATION_NOT_FOUND"
    await refused(stub.Assign(pb.AssignRequest(name="nope", customer_id="00001")), grpc.StatusCode.NOT_FOUND)
    await refused(
        stub.WatchSegmentChanges(pb.WatchSegmentChangesRequest(segmentation="nope")).read(), grpc.StatusCode.NOT_FOUND
    )
    await stub.BuildSegmentation(pb.BuildSegmentationRequest(name="v", kmeans=pb.KMeansConfig(k=2)))
    details = await refused(
        stub.ListSegmentMembers(pb.ListSegmentMembersRequest(name="v", segment_id="s99")), grpc.StatusCode.NOT_FOUND
    )
    assert details.reason == "SEGMENT_NOT_FOUND"
    await refused(stub.Assign(pb.AssignRequest(name="v", customer_id="ghost")), grpc.StatusCode.NOT_FOUND)
    details = await refused(
        stub.Assign(pb.AssignRequest(name="v", features=pb.FeatureValues(values={"recency_days": math.inf})))
    )
    assert details.field_violations == {
        "features.values[recency_days]": "must be a finite number",
        "features.values[frequency]": "missing: the segmentation uses it",
        "features.values[monetary]": "missing: the segmentation uses it",
    }
    details = await refused(
        stub.CompareSegmentations(pb.CompareSegmentationsRequest(name="v", baseline_version=1, target_version=1))
    )
    assert list(details.field_violations) == ["target_version"]
    details = await refused(
        stub.ListSegmentMembers(pb.ListSegmentMembersRequest(name="v", segment_id="s1", page_token="x"))
    )
    assert list(details.field_violations) == ["page_token"]


async def test_other_tenants_see_nothing(stub, stub_for):
    await stub.BuildSegmentation(pb.BuildSegmentationRequest(name="v", kmeans=pb.KMeansConfig(k=2)))
    intruder = stub_for("another-tenant")
    await refused(intruder.GetCustomer(pb.GetCustomerRequest(customer_id="00001")), grpc.StatusCode.NOT_FOUND)
    await refused(intruder.GetSegmentation(pb.GetSegmentationRequest(name="v")), grpc.StatusCode.NOT_FOUND)
    await refused(intruder.Assign(pb.AssignRequest(name="v", customer_id="00001")), grpc.StatusCode.NOT_FOUND)


async def test_purpose_must_be_consented(stub, stub_for, tenant):
    await stub.BuildSegmentation(pb.BuildSegmentationRequest(name="v", kmeans=pb.KMeansConfig(k=2)))
    listening = stub_for(tenant, purpose="listening")
    for call in (
        listening.GetCustomer(pb.GetCustomerRequest(customer_id="00001")),
        listening.Assign(pb.AssignRequest(name="v", customer_id="00001")),
        listening.IngestTransactions(pb.IngestTransactionsRequest(transactions=[transaction("late")])),
    ):
        details = await refused(call, grpc.StatusCode.PERMISSION_DENIED)
        assert details.reason == "PURPOSE_NOT_CONSENTED"
    # Nobody consented to "listening": there is no one to segment for it.
    details = await refused(
        listening.BuildSegmentation(pb.BuildSegmentationRequest(name="w")), grpc.StatusCode.FAILED_PRECONDITION
    )
    assert details.reason == "POPULATION_TOO_SMALL"


async def test_record_class_above_the_declared_class(stub_for, tenant):
    public_caller = stub_for(tenant, data_class=DataClass.PUBLIC)
    details = await refused(
        public_caller.IngestCustomers(
            pb.IngestCustomersRequest(
                customers=[
                    pb.Customer(id="p", policy=common_pb2.RecordPolicy(data_class=common_pb2.DATA_CLASS_PERSONAL))
                ]
            )
        )
    )
    assert list(details.field_violations) == ["customers[0].policy.data_class"]


async def test_an_invalid_events_message_ends_the_stream_keeping_earlier_ones(stub):
    async def messages():
        yield pb.IngestEventsRequest(
            events=[pb.BehaviourEvent(id="ok", customer_id="00001", type=pb.EVENT_TYPE_PURCHASE, time=WHEN, amount=5)],
            default_policy=POLICY,
        )
        yield pb.IngestEventsRequest(
            events=[
                pb.BehaviourEvent(id="bad", customer_id="00001", type=pb.EVENT_TYPE_CLICK, time=WHEN, amount=-5),
                pb.BehaviourEvent(id="untyped", customer_id="00001", time=WHEN),
            ]
        )

    before = await frequency_of(stub)
    details = await refused(stub.IngestEvents(messages()))
    assert set(details.field_violations) == {"events[0].amount", "events[1].type"}
    assert await frequency_of(stub) == before + 1

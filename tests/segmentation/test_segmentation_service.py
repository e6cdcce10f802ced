"""The segmentation service over real gRPC and PostgreSQL, on the real CDNOW transactions."""

import asyncio
import statistics
from datetime import timedelta

import asyncpg
import grpc
import pytest

from matcha.common.v1 import common_pb2
from matcha.runtime.client import error_details
from matcha.segmentation.v1 import segmentation_pb2 as pb

from .conftest import POLICY, ingest_cdnow, timestamp

RFM_TRANSFORMS = {
    "frequency": pb.FEATURE_TRANSFORM_LOG1P_STANDARDIZE,
    "monetary": pb.FEATURE_TRANSFORM_LOG1P_STANDARDIZE,
}


async def test_ingestion_counts_and_is_idempotent(stub_for, tenant):
    stub = stub_for(tenant)
    rows = await ingest_cdnow(stub, 150)
    again = await stub.IngestTransactions(
        pb.IngestTransactionsRequest(
            transactions=[
                pb.Transaction(id=tid, customer_id=c, time=timestamp(t), amount=a, quantity=q)
                for tid, c, t, a, q in rows
            ],
            default_policy=POLICY,
        )
    )
    assert (again.inserted, again.duplicates, again.customers_created) == (0, len(rows), 0)


async def test_features_follow_the_transactions(stub_for, tenant):
    stub = stub_for(tenant)
    rows = await ingest_cdnow(stub, 150)
    reference = max(time for _, _, time, _, _ in rows)
    counts = {}
    for _, customer, *_ in rows:
        counts[customer] = counts.get(customer, 0) + 1
    customer = max(sorted(counts), key=counts.get)
    mine = sorted((time, amount, quantity) for _, c, time, amount, quantity in rows if c == customer)
    reply = await stub.GetCustomer(pb.GetCustomerRequest(customer_id=customer))
    features = reply.features
    assert reply.reference_time.ToDatetime() == reference.replace(tzinfo=None)
    assert features["frequency"] == len(mine)
    assert features["monetary"] == pytest.approx(statistics.mean(amount for _, amount, _ in mine))
    assert features["average_basket"] == pytest.approx(statistics.mean(quantity for *_, quantity in mine))
    assert features["recency_days"] == pytest.approx((reference - mine[-1][0]).days)
    assert features["tenure_days"] == pytest.approx((reference - mine[0][0]).days)
    assert features["inter_purchase_days"] == pytest.approx((mine[-1][0] - mine[0][0]).days / (len(mine) - 1))
    assert 1 <= features["rfm_frequency_score"] <= 5 and features["rfm_frequency_score"] == 5
    assert features["rfm_score"] == sum(
        features[name] for name in ("rfm_recency_score", "rfm_frequency_score", "rfm_monetary_score")
    )
    assert reply.customer.policy.consented_purposes == ["campaign"]


async def test_kmeans_chooses_k_by_silhouette_is_deterministic_and_keeps_segment_ids(stub_for, tenant):
    stub = stub_for(tenant)
    await ingest_cdnow(stub, 400)
    request = pb.BuildSegmentationRequest(
        name="value", kmeans=pb.KMeansConfig(k_min=2, k_max=5), transforms=RFM_TRANSFORMS, seed=7
    )
    first = (await stub.BuildSegmentation(request)).segmentation
    assert first.state == pb.SEGMENTATION_STATE_READY and first.version == 1
    assert [score.k for score in first.k_scores] == [2, 3, 4, 5]
    best = max(first.k_scores, key=lambda score: score.silhouette)
    assert len(first.segments) == best.k
    assert sum(segment.size for segment in first.segments) == first.population == 400
    assert sum(segment.share for segment in first.segments) == pytest.approx(1.0)
    assert [segment.size for segment in first.segments] == sorted((s.size for s in first.segments), reverse=True)
    assert {scaling.transform for scaling in first.scaling} == {
        pb.FEATURE_TRANSFORM_STANDARDIZE,
        pb.FEATURE_TRANSFORM_LOG1P_STANDARDIZE,
    }
    for segment in first.segments:
        assert len(segment.exemplars) == 5
        distances = [exemplar.distance for exemplar in segment.exemplars]
        assert distances == sorted(distances)
        for profile in segment.features:
            assert profile.lift == pytest.approx(profile.mean / profile.base_mean)
        assert segment.top_features[0] == max(segment.features, key=lambda p: abs(p.standardized_difference)).feature

    second = (await stub.BuildSegmentation(request)).segmentation
    assert second.version == 2
    assert {s.id: s.size for s in second.segments} == {s.id: s.size for s in first.segments}
    fetched = (await stub.GetSegmentation(pb.GetSegmentationRequest(name="value", version=1))).segmentation
    assert fetched.segments == first.segments
    listed = await stub.ListSegmentations(pb.ListSegmentationsRequest(name="value", page_size=1))
    assert [s.version for s in listed.segmentations] == [2] and listed.next_page_token
    rest = await stub.ListSegmentations(
        pb.ListSegmentationsRequest(name="value", page_size=1, page_token=listed.next_page_token)
    )
    assert [s.version for s in rest.segmentations] == [1] and not rest.next_page_token


async def test_rules_members_and_assignment_agree(stub_for, tenant, postgres_url):
    stub = stub_for(tenant)
    await ingest_cdnow(stub, 300)
    built = (
        await stub.BuildSegmentation(pb.BuildSegmentationRequest(name="cells", rules=pb.RulesConfig()))
    ).segmentation
    assert built.method == pb.SEGMENTATION_METHOD_RULES
    # The version's membership partition has planner statistics as soon as it is READY.
    connection = await asyncpg.connect(postgres_url)
    try:
        analysed = await connection.fetchval(
            """SELECT count(*) FROM pg_stats s JOIN segmentation_versions v
                 ON s.tablename = 'segmentation_memberships_' || v.id
               WHERE v.tenant = $1 AND v.name = 'cells'""",
            tenant,
        )
    finally:
        await connection.close()
    assert analysed > 0
    sizes = {segment.id: segment.size for segment in built.segments}
    assert sum(sizes.values()) == 300 and sizes["champions"] > 0 and sizes["lost"] > 0
    assert {"champions", "at_risk", "hibernating", "other"} <= set(sizes)
    segment = "lost"
    seen = []
    token = ""
    while True:
        page = await stub.ListSegmentMembers(
            pb.ListSegmentMembersRequest(name="cells", segment_id=segment, page_size=20, page_token=token)
        )
        assert page.total_size == sizes[segment]
        seen += [member.customer_id for member in page.members]
        token = page.next_page_token
        if not token:
            break
    assert len(seen) == len(set(seen)) == sizes[segment]
    for customer_id in seen[:5]:
        assigned = await stub.Assign(pb.AssignRequest(name="cells", customer_id=customer_id))
        assert (assigned.segment_id, assigned.confidence, assigned.version) == (segment, 1.0, 1)
    customer = await stub.GetCustomer(pb.GetCustomerRequest(customer_id=seen[0]))
    assert [(m.segmentation, m.segment_id) for m in customer.memberships] == [("cells", segment)]


async def test_custom_features_hdbscan_outliers_and_assignment_by_values(stub_for, tenant):
    stub = stub_for(tenant)
    customers = []
    for index in range(120):
        center = (0.0, 0.0) if index % 2 else (10.0, 10.0)
        offset = (index % 7) * 0.1
        customers.append(
            pb.Customer(id=f"c{index}", features={"engagement": center[0] + offset, "sentiment": center[1] - offset})
        )
    customers.append(pb.Customer(id="stray", features={"engagement": 5.0, "sentiment": 40.0}))
    reply = await stub.IngestCustomers(pb.IngestCustomersRequest(customers=customers))
    assert reply.inserted == 121
    built = (
        await stub.BuildSegmentation(
            pb.BuildSegmentationRequest(
                name="taste",
                features=["engagement", "sentiment"],
                hdbscan=pb.HdbscanConfig(min_cluster_size=10),
            )
        )
    ).segmentation
    clusters = [segment for segment in built.segments if not segment.outliers]
    outliers = [segment for segment in built.segments if segment.outliers]
    assert len(clusters) == 2 and [s.size for s in clusters] == [60, 60]
    assert [(s.id, s.size) for s in outliers] == [("outliers", 1)]
    near = await stub.Assign(
        pb.AssignRequest(name="taste", features=pb.FeatureValues(values={"engagement": 10.2, "sentiment": 9.9}))
    )
    far = await stub.Assign(
        pb.AssignRequest(name="taste", features=pb.FeatureValues(values={"engagement": -50, "sentiment": 80}))
    )
    assert not near.outlier and near.confidence > 0 and near.segment_id in {s.id for s in clusters}
    assert far.outlier and far.segment_id == "outliers" and far.confidence == 0.0


async def test_events_move_customers_and_the_watch_streams_the_moves(stub_for, tenant):
    stub = stub_for(tenant)
    rows = await ingest_cdnow(stub, 200)
    reference = max(time for _, _, time, _, _ in rows)
    await stub.BuildSegmentation(pb.BuildSegmentationRequest(name="cells", rules=pb.RulesConfig()))
    lost = await stub.ListSegmentMembers(pb.ListSegmentMembersRequest(name="cells", segment_id="lost", page_size=1))
    customer = lost.members[0].customer_id

    # From the tenant's first change on, so the watch sees the moves whether it subscribes before or after the
    # events arrive (no race with the ingestion below on a loaded machine).
    watch = stub.WatchSegmentChanges(pb.WatchSegmentChangesRequest(segmentation="cells", after_sequence=0))
    first_change = asyncio.create_task(anext(aiter(watch)))

    def events():
        return [
            pb.BehaviourEvent(
                id=f"e{i}",
                customer_id=customer,
                type=pb.EVENT_TYPE_PURCHASE,
                time=timestamp(reference + timedelta(days=1, hours=i)),
                amount=40.0,
                item_id="cd-42",
            )
            for i in range(6)
        ] + [pb.BehaviourEvent(id="v1", customer_id=customer, type=pb.EVENT_TYPE_VISIT, time=timestamp(reference))]

    async def stream(batch):
        yield pb.IngestEventsRequest(events=batch[:3])
        yield pb.IngestEventsRequest(events=batch[3:])

    reply = await stub.IngestEvents(stream(events()))
    assert (reply.accepted, reply.duplicates, reply.reassigned) == (7, 0, 1)
    change = (await asyncio.wait_for(first_change, 10)).changes[0]
    assert (change.customer_id, change.segmentation, change.from_segment_id) == (customer, "cells", "lost")
    assert change.to_segment_id != "lost" and change.cause_id.startswith("e")
    watch.cancel()

    again = await stub.IngestEvents(stream(events()))
    assert (again.accepted, again.duplicates, again.reassigned) == (0, 7, 0)
    moved = await stub.Assign(pb.AssignRequest(name="cells", customer_id=customer))
    assert moved.segment_id == change.to_segment_id
    profile = await stub.GetCustomer(pb.GetCustomerRequest(customer_id=customer))
    assert profile.features["visits_30d"] == 1
    assert [(h.from_segment_id, h.to_segment_id) for h in profile.history] == [("lost", change.to_segment_id)]
    members = await stub.ListSegmentMembers(
        pb.ListSegmentMembersRequest(name="cells", segment_id=change.to_segment_id, page_size=1000)
    )
    assert customer in [member.customer_id for member in members.members]

    replay = stub.WatchSegmentChanges(
        pb.WatchSegmentChangesRequest(after_sequence=change.sequence - 1, segment_ids=["lost"])
    )
    replayed = await asyncio.wait_for(anext(aiter(replay)), 10)
    assert list(replayed.changes) == [change]
    replay.cancel()


async def test_compare_versions_and_current_data(stub_for, tenant):
    stub = stub_for(tenant)
    rows = await ingest_cdnow(stub, 300)
    build = pb.BuildSegmentationRequest(name="value", kmeans=pb.KMeansConfig(k=3), transforms=RFM_TRANSFORMS)
    await stub.BuildSegmentation(build)
    stable = await stub.CompareSegmentations(
        pb.CompareSegmentationsRequest(name="value", current_data=pb.CurrentData())
    )
    assert stable.overall == pb.DRIFT_LEVEL_STABLE and stable.common_customers == 300
    assert sum(sum(row.counts) for row in stable.migration.rows) == 300
    assert all(row.counts[i] == sum(row.counts) for i, row in enumerate(stable.migration.rows))

    # A year later every customer looks more lapsed: recency drifts.
    later = max(time for _, _, time, _, _ in rows) + timedelta(days=365)
    await stub.IngestTransactions(
        pb.IngestTransactionsRequest(
            transactions=[
                pb.Transaction(id=f"n{i}", customer_id=f"new{i}", time=timestamp(later), amount=20.0) for i in range(50)
            ],
            default_policy=POLICY,
        )
    )
    await stub.BuildSegmentation(build)
    drifted = await stub.CompareSegmentations(
        pb.CompareSegmentationsRequest(name="value", baseline_version=1, target_version=2)
    )
    recency = next(item for item in drifted.feature_drift if item.feature == "recency_days")
    assert recency.level == pb.DRIFT_LEVEL_SIGNIFICANT and drifted.overall == pb.DRIFT_LEVEL_SIGNIFICANT
    assert drifted.feature_drift[0].psi >= drifted.feature_drift[-1].psi
    assert (drifted.common_customers, drifted.new_customers, drifted.departed_customers) == (300, 50, 0)
    assert sum(sum(row.counts) for row in drifted.migration.rows) == 300


async def test_persona_is_attached_with_its_author(stub_for, tenant):
    stub = stub_for(tenant)
    await ingest_cdnow(stub, 100)
    await stub.BuildSegmentation(pb.BuildSegmentationRequest(name="cells", rules=pb.RulesConfig()))
    reply = await stub.AttachPersona(
        pb.AttachPersonaRequest(
            name="cells",
            segment_id="lost",
            persona=pb.Persona(
                title="Lapsed one-time buyers",
                summary="Bought once, long ago.",
                provenance=common_pb2.Provenance(run_id="run-1", model=common_pb2.ModelRef(id="smollm2")),
            ),
        )
    )
    assert reply.segment.persona.author_subject == "user-1"
    assert reply.segment.persona.provenance.model.id == "smollm2"
    fetched = (await stub.GetSegmentation(pb.GetSegmentationRequest(name="cells"))).segmentation
    lost = next(segment for segment in fetched.segments if segment.id == "lost")
    assert lost.persona.summary == "Bought once, long ago."


async def test_erasure_removes_a_customer_everywhere(stub_for, tenant):
    stub = stub_for(tenant)
    await ingest_cdnow(stub, 100)
    built = (
        await stub.BuildSegmentation(pb.BuildSegmentationRequest(name="value", kmeans=pb.KMeansConfig(k=2)))
    ).segmentation
    exemplar = built.segments[0].exemplars[0].customer_id
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.EraseSubject(pb.EraseSubjectRequest(subject_id=exemplar))
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error_details(refused.value).reason == "MISSING_ROLE"

    admin = stub_for(tenant, roles=["admin"])
    erased = await admin.EraseSubject(pb.EraseSubjectRequest(subject_id=exemplar))
    assert erased.erased_customers == 1 and erased.erased_transactions >= 1
    with pytest.raises(grpc.aio.AioRpcError) as gone:
        await stub.GetCustomer(pb.GetCustomerRequest(customer_id=exemplar))
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND
    fetched = (await stub.GetSegmentation(pb.GetSegmentationRequest(name="value"))).segmentation
    assert exemplar not in [e.customer_id for segment in fetched.segments for e in segment.exemplars]
    members = await stub.ListSegmentMembers(
        pb.ListSegmentMembersRequest(name="value", segment_id=built.segments[0].id, page_size=1000)
    )
    assert exemplar not in [member.customer_id for member in members.members]
    assert (await admin.EraseSubject(pb.EraseSubjectRequest(subject_id=exemplar))).erased_customers == 0


async def test_side_effecting_calls_deduplicate_on_the_idempotency_key(stub_for, tenant):
    stub = stub_for(tenant)
    await ingest_cdnow(stub, 60)
    key = (("x-matcha-idempotency-key", "run-1/build/0"),)
    request = pb.BuildSegmentationRequest(name="value", kmeans=pb.KMeansConfig(k=2))
    first = (await stub.BuildSegmentation(request, metadata=key)).segmentation
    retried = (await stub.BuildSegmentation(request, metadata=key)).segmentation
    assert retried.version == first.version == 1 and retried.segments == first.segments
    listed = await stub.ListSegmentations(pb.ListSegmentationsRequest(name="value"))
    assert [s.version for s in listed.segmentations] == [1]

    customers = pb.IngestCustomersRequest(customers=[pb.Customer(id="vip", features={"loyalty": 3.0})])
    ingest_key = (("x-matcha-idempotency-key", "run-1/customers/0"),)
    first_reply = await stub.IngestCustomers(customers, metadata=ingest_key)
    assert (await stub.IngestCustomers(customers, metadata=ingest_key)) == first_reply
    assert first_reply.inserted == 1
    assert (await stub.IngestCustomers(customers)).unchanged == 1
